# SPDX-License-Identifier: AGPL-3.0-only
"""The L3/L4 firewall end to end (network.md §2.8 without conntrack): the real
agent on a veth in a namespace, real traffic from a peer namespace over IPv4
and IPv6, the REST API and the CLI."""
import json
import os
import signal
import subprocess
import time

from lab import Proc, metric, sh, wait_until
from peers import ping, tcp_listen, tcp_try

A4, P4, P4B = "198.51.100.1", "198.51.100.2", "198.51.100.200"
A6, P6 = "2001:db8:1::1", "2001:db8:1::2"


def fw_yaml(rules, mode="block", policy="pass", extra=""):
    return (f"firewall:\n  mode: {mode}\n  default_policy: {policy}\n{extra}"
            f"  rules:\n{rules}")


def fw_counts(a):
    m = a.metrics()
    fw = {k: metric(m, "ebpfsentinel_packets_total", interface="FIREWALL_METRICS", action=k)
          for k in ("passed", "dropped", "errors", "total_seen")}
    ev = {k: metric(m, "ebpfsentinel_packets_total", interface="firewall", action=k)
          for k in ("drop", "log")}
    return fw, ev


def rule(a, rid):
    return next(r for r in a.get("/api/v1/firewall/rules").json() if r["id"] == rid)


def static_neighbours(lab):
    """Permanent ND entries both ways, so IPv6 works when a test drops ICMPv6."""
    for ns, ifn, peer, other_if in ((lab.agent_ns, lab.agent_if, P6, lab.peer_if),
                                    (lab.peer_ns, lab.peer_if, A6, lab.agent_if)):
        other_ns = lab.peer_ns if ns == lab.agent_ns else lab.agent_ns
        mac = json.loads(sh("ip", "-j", "link", "show", other_if, ns=other_ns).stdout)[0]["address"]
        sh("ip", "-6", "neigh", "replace", peer, "lladdr", mac, "dev", ifn, "nud", "permanent",
           ns=ns)


def test_deny_by_port_range_cidr_and_protocol_on_both_families(lab, make_agent):
    rules = """    - {id: range, priority: 10, action: deny, protocol: tcp, dst_port: "9990-9999"}
    - {id: scan, priority: 20, action: deny, protocol: tcp, src_ip: 198.51.100.0/25, dst_port: 2222}
    - {id: v6only, priority: 30, action: deny, protocol: tcp, src_ip: "2001:db8::/32", dst_port: 7000}
    - {id: mdns, priority: 40, action: deny, protocol: udp, dst_port: 5353}
"""
    a = make_agent(fw_yaml(rules)).start()
    sh("ip", "addr", "add", f"{P4B}/24", "dev", lab.peer_if, ns=lab.peer_ns)
    srv = tcp_listen(lab.agent_ns, [("0.0.0.0", p) for p in (9995, 9989, 2222, 7000)] +
                     [("::", p) for p in (9995, 9989, 7000)])
    try:
        fw0, ev0 = fw_counts(a)
        got = tcp_try(lab.peer_ns, [
            (A4, 9995), (A4, 9989), (A6, 9999), (A6, 9989),        # range, both families
            (A4, 2222, P4), (A4, 2222, P4B),                         # CIDR and its near miss
            (A4, 7000), (A6, 7000)])                                 # IPv6-only rule
        assert got == [False, True, False, True, False, True, True, False], got
        fw1, ev1 = fw_counts(a)
        assert fw1["dropped"] - fw0["dropped"] >= 4
        assert ev1["drop"] - ev0["drop"] >= 4, "each drop is an event"
        assert rule(a, "range")["hits"] >= 2 and rule(a, "scan")["hits"] >= 1
        # UDP to 5353 without addresses: dropped for both families.
        for dst in (A4, A6):
            before = rule(a, "mdns")["hits"]
            fam = "-6" if ":" in dst else "-4"
            sh("python3", "-c", f"import socket;s=socket.socket(socket.AF_INET{'6' if fam == '-6' else ''},"
               f"socket.SOCK_DGRAM);[s.sendto(b'x',('{dst}',5353)) for _ in range(3)]",
               ns=lab.peer_ns)
            assert wait_until(lambda: rule(a, "mdns")["hits"] >= before + 3, 3), dst
    finally:
        srv.stop()
    fw, _ = fw_counts(a)
    assert fw["passed"] + fw["dropped"] + fw["errors"] == fw["total_seen"]


def test_priority_order_and_runtime_changes_within_a_second(lab, make_agent):
    rules = """    - {id: allow-5, priority: 5, action: allow, protocol: icmp, src_ip: 198.51.100.0/24, dst_ip: 198.51.100.1}
    - {id: deny-10, priority: 10, action: deny, protocol: icmp}
"""
    static_neighbours(lab)  # the deny of ICMP drops neighbour discovery too
    static_neighbours(lab)  # denying ICMP drops neighbour discovery too
    a = make_agent(fw_yaml(rules)).start()
    assert ping(lab.peer_ns, A4), "allow at 5 beats deny at 10"
    assert not ping(lab.peer_ns, A6), "the allow names IPv4 addresses only"
    assert a.delete("/api/v1/firewall/rules/allow-5").status_code == 204
    r = a.post("/api/v1/firewall/rules", json={
        "id": "allow-15", "priority": 15, "action": "allow", "protocol": "icmp",
        "src_ip": "198.51.100.0/24", "dst_ip": "198.51.100.1"})
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "allow-15" and r.json()["priority"] == 15
    assert not ping(lab.peer_ns, A4), "now the deny at 10 comes first"

    # Runtime add of a deny through REST blocks new connections within 1 s.
    srv = tcp_listen(lab.agent_ns, [("0.0.0.0", 6666), ("::", 6666)])
    try:
        assert tcp_try(lab.peer_ns, [(A4, 6666), (A6, 6666)]) == [True, True]
        t0 = time.monotonic()
        r = a.post("/api/v1/firewall/rules", json={"id": "deny-6666", "priority": 1,
                                                   "action": "deny", "protocol": "tcp",
                                                   "dst_port": 6666})
        assert r.status_code == 201
        assert wait_until(lambda: tcp_try(lab.peer_ns, [(A4, 6666), (A6, 6666)], 0.3)
                          == [False, False], 1.0)
        assert time.monotonic() - t0 < 2.0
        # ... and delete through the CLI restores them.
        r = a.cli("firewall", "--port", str(a.http_port), "delete", "deny-6666")
        assert r.returncode == 0 and r.stdout.strip() == "Rule deleted: deny-6666"
        assert tcp_try(lab.peer_ns, [(A4, 6666), (A6, 6666)]) == [True, True]
    finally:
        srv.stop()

    # Through the CLI: add with --json, list, refusals.
    r = a.cli("firewall", "--port", str(a.http_port), "add", "--json",
              '{"id":"cli-rule","priority":99,"action":"log","protocol":"udp","dst_port":"53"}')
    assert r.returncode == 0, r.stderr
    r = a.cli("-o", "json", "firewall", "--port", str(a.http_port), "list")
    ids = [x["id"] for x in json.loads(r.stdout)]
    assert ids[:3] == ["anti-lockout-22", "anti-lockout-8080", "anti-lockout-50051"]
    assert ids[3:] == ["deny-10", "allow-15", "cli-rule"], "system rules first, then by priority"
    r = a.cli("firewall", "--port", str(a.http_port), "delete", "anti-lockout-22")
    assert r.returncode == 1
    assert "permission denied: cannot delete system rule: anti-lockout-22 (PERMISSION_DENIED)" \
        in r.stderr


def test_rest_errors_and_reads(lab, make_agent):
    a = make_agent(fw_yaml("    - {id: a, priority: 1, action: log, protocol: udp}\n",
                           extra="  aliases:\n    lan: {type: ip_set, values: [198.51.100.0/24]}\n"
                                 "    web: {type: port_set, values: [80, \"8000-8080\"]}\n"
                                 "  schedules:\n    always: {entries: [{days: [mon, tue, wed, thu, "
                                 "fri, sat, sun], time: \"00:00-24:00\"}]}\n")).start()
    p = "/api/v1/firewall/rules"
    r = a.post(p, json={"id": "x", "priority": 0, "action": "allow"})
    assert r.status_code == 400 and r.json() == {"error": {
        "code": "VALIDATION_ERROR", "message": "invalid rule: invalid priority: must be > 0"}}
    r = a.post(p, json={"id": "a", "priority": 3, "action": "deny"})
    assert r.status_code == 409 and r.json()["error"] == {"code": "DUPLICATE_RULE",
                                                          "message": "duplicate rule: a"}
    r = a.post(p, json={"id": "x", "priority": 3, "action": "deny", "src_alias": "nope"})
    assert r.status_code == 400 and r.json()["error"]["message"] == \
        "invalid rule: unknown alias 'nope'"
    r = a.post(p, json={"id": "x" * 257, "priority": 3, "action": "deny"})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "id exceeds maximum length of 256 characters (got 257)"
    r = a.post(p, json={"id": "x", "priority": "3", "action": "deny"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "INVALID_BODY"
    r = a.post(p, data="{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    r = a.delete(p + "/ghost")
    assert r.status_code == 404 and r.json()["error"] == {"code": "RULE_NOT_FOUND",
                                                          "message": "rule not found: ghost"}
    r = a.delete(p + "/anti-lockout-8080")
    assert r.status_code == 403 and r.json()["error"]["code"] == "PERMISSION_DENIED"
    r = a.post(p, json={"id": "s", "priority": 4, "action": "allow", "schedule": "always",
                        "src_alias": "lan", "dst_port_alias": "web", "protocol": "tcp"})
    assert r.status_code == 201
    assert a.get("/api/v1/aliases/status").json() == {"alias_count": 2}
    al = {x["name"]: x for x in a.get("/api/v1/aliases").json()}
    assert al["lan"]["active"] and al["lan"]["entry_count"] == 1 and al["web"]["kind"] == "port"
    sc = a.get("/api/v1/firewall/schedules").json()
    assert sc == [{"name": "always", "active": True, "rules": ["s"], "entries": [
        {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "time": "00:00-24:00"}]}]
    st = a.get("/api/v1/agent/status").json()
    assert st["rule_count"] == 5 and st["firewall_mode"] == "block"
    m = a.metrics()
    assert metric(m, "ebpfsentinel_rules_loaded", component="firewall") == 5


def test_put_replaces_a_rule_in_the_kernel(lab, make_agent):
    """PUT /api/v1/firewall/rules/{id} (beyond the reference): the new rule
    enforces within a second, the old one no longer does; refusals."""
    a = make_agent(fw_yaml("    - {id: d, priority: 5, action: deny, protocol: tcp, "
                           "dst_port: 6601}\n")).start()
    p = "/api/v1/firewall/rules/d"
    srv = tcp_listen(lab.agent_ns, [("0.0.0.0", 6601), ("0.0.0.0", 6602), ("::", 6602)])
    try:
        assert tcp_try(lab.peer_ns, [(A4, 6601), (A4, 6602)], 0.3) == [False, True]
        r = a.request("PUT", p, json={"priority": 5, "action": "deny", "protocol": "tcp",
                                      "dst_port": 6602})
        assert r.status_code == 200, r.text
        assert r.json()["id"] == "d" and r.json()["dst_port"] == "6602"
        assert wait_until(lambda: tcp_try(lab.peer_ns, [(A4, 6601), (A4, 6602), (A6, 6602)],
                                          0.3) == [True, False, False], 1.0)
        assert [x["id"] for x in a.get("/api/v1/firewall/rules").json()].count("d") == 1
    finally:
        srv.stop()
    r = a.request("PUT", p, json={"id": "other", "priority": 5, "action": "deny"})
    assert r.status_code == 400 and r.json()["error"]["message"] == \
        "invalid rule: id: must equal the rule id in the path (d)"
    r = a.request("PUT", p, json={"priority": 0, "action": "deny"})
    assert r.status_code == 400 and r.json()["error"]["message"] == \
        "invalid rule: invalid priority: must be > 0"
    r = a.request("PUT", "/api/v1/firewall/rules/ghost", json={"priority": 1, "action": "deny"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "RULE_NOT_FOUND"
    r = a.request("PUT", "/api/v1/firewall/rules/anti-lockout-22",
                  json={"priority": 1, "action": "deny"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "PERMISSION_DENIED"
    assert rule(a, "d")["dst_port"] == "6602", "refused changes leave the rule as it was"


def test_default_drop_keeps_anti_lockout_ssh_reachable(lab, make_agent):
    static_neighbours(lab)
    rules = "    - {id: deny-any, priority: 1, action: deny}\n"
    a = make_agent(fw_yaml(rules, policy="drop",
                           extra="  anti_lockout: {enabled: true, ports: [22]}\n")).start()
    srv = tcp_listen(lab.agent_ns, [("0.0.0.0", 22), ("::", 22), ("0.0.0.0", 23)])
    try:
        # ARP passes under default drop; TCP to 22 passes before the deny-any.
        assert tcp_try(lab.peer_ns, [(A4, 22), (A6, 22), (A4, 23)]) == [True, True, False]
        assert not ping(lab.peer_ns, A4)
        assert rule(a, "anti-lockout-22")["hits"] >= 2
        assert rule(a, "anti-lockout-22")["system"] is True
    finally:
        srv.stop()


def test_alert_mode_passes_traffic_and_logs(lab, make_agent):
    rules = '    - {id: would-drop, priority: 5, action: deny, protocol: tcp, dst_port: "9990-9999"}\n'
    a = make_agent(fw_yaml(rules, mode="alert")).start()
    srv = tcp_listen(lab.agent_ns, [("0.0.0.0", 9995), ("::", 9995)])
    try:
        fw0, ev0 = fw_counts(a)
        assert tcp_try(lab.peer_ns, [(A4, 9995), (A6, 9995)]) == [True, True]
        fw1, ev1 = fw_counts(a)
        assert fw1["dropped"] == fw0["dropped"]
        assert wait_until(lambda: fw_counts(a)[1]["log"] - ev0["log"] >= 2, 3), \
            "log events for the rule in alert mode"
        assert rule(a, "would-drop")["action"] == "deny", "the rule keeps its configured action"
    finally:
        srv.stop()


def test_icmp_type_rules(lab, make_agent):
    rules = "    - {id: no-echo4, priority: 5, action: deny, protocol: icmp, icmp_type: 8}\n"
    a = make_agent(fw_yaml(rules)).start()
    assert not ping(lab.peer_ns, A4), "echo request (type 8) dropped"
    assert ping(lab.peer_ns, A6), "ICMPv6 echo is type 128, not 8"
    assert ping(lab.agent_ns, P4), "echo replies coming back (type 0) pass"
    r = a.post("/api/v1/firewall/rules", json={"id": "no-echo6", "priority": 6, "action": "deny",
                                               "protocol": "icmp", "icmp_type": 128})
    assert r.status_code == 201, r.text
    assert not ping(lab.peer_ns, A6)
    assert ping(lab.agent_ns, P6), "ND and echo replies are other ICMPv6 types"


def test_vlan_tagged_frames_from_scapy(lab, make_agent):
    rules = "    - {id: vid200, priority: 1, action: deny, vlan_id: 200}\n"
    a = make_agent(fw_yaml(rules)).start()
    amac = json.loads(sh("ip", "-j", "link", "show", lab.agent_if, ns=lab.agent_ns).stdout)[0]["address"]
    send = (
        "from scapy.all import Ether, Dot1Q, IP, UDP, sendp, conf\n"
        "conf.verb = 0\n"
        f"base = IP(src='{P4}', dst='{A4}')/UDP(sport=4000, dport=4001)/(b'x'*20)\n"
        f"e = Ether(dst='{amac}')\n"
        f"sendp([e/Dot1Q(vlan=200)/base]*5 + [e/Dot1Q(vlan=100)/base]*4 + [e/base]*3,"
        f" iface='{lab.peer_if}')\n")
    before = a.get("/api/v1/firewall/rules").json()
    fw0, ev0 = fw_counts(a)
    sh("/usr/bin/python3", "-c", send, ns=lab.peer_ns, timeout=60)
    assert wait_until(lambda: rule(a, "vid200")["hits"] >= 5, 3)
    assert rule(a, "vid200")["hits"] == 5, "only the VID 200 frames"
    fw1, ev1 = fw_counts(a)
    assert fw1["dropped"] - fw0["dropped"] == 5
    assert fw1["passed"] - fw0["passed"] >= 7, "VID 100 and untagged frames pass"
    assert wait_until(lambda: fw_counts(a)[1]["drop"] - ev0["drop"] >= 5, 3)
    assert any(r["id"] == "vid200" and r.get("vlan_id") == 200 for r in before)


def test_dscp_mark_rewrites_tos_with_a_valid_checksum(lab, make_agent):
    rules = "    - {id: ef, priority: 1, action: allow, protocol: udp, dst_port: 5004, dscp_mark: 46}\n"
    make_agent(fw_yaml(rules)).start()
    # The receiving stack drops IPv4 packets with a bad header checksum before the
    # socket sees them; the socket reports the TOS it received.
    recv = ("import socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)\n"
            f"s.bind(('{A4}', 5004)); s.settimeout(5)\n"
            "d, anc, fl, ad = s.recvmsg(64, 64)\n"
            "print(hex(anc[0][2][0]))\n")
    p = subprocess.Popen(["nsenter", f"--net=/run/netns/{lab.agent_ns}", "python3", "-c", recv],
                         stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    sh("python3", "-c", "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
       "s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x01)\n"
       f"for _ in range(3): s.sendto(b'x', ('{A4}', 5004)); time.sleep(0.1)\n", ns=lab.peer_ns)
    out, _ = p.communicate(timeout=10)
    assert out.strip() == "0xb9", f"DSCP 46 with ECN kept, got {out!r}"


def test_alias_membership_follows_its_url_table(lab, make_agent, tmp_path):
    listed = tmp_path / "list.txt"
    listed.write_text(f"# blocked\n{P4}\n{P6}\n")
    # A one-file HTTP server (404 when the file is gone), no name lookups.
    serve = ("import http.server, sys\n"
             "class H(http.server.BaseHTTPRequestHandler):\n"
             "    def do_GET(self):\n"
             "        try: body = open(sys.argv[1], 'rb').read()\n"
             "        except OSError: self.send_error(404); return\n"
             "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
             "        self.end_headers(); self.wfile.write(body)\n"
             "    def log_message(self, *a): pass\n"
             "http.server.HTTPServer.server_bind = http.server.socketserver.TCPServer.server_bind\n"
             "http.server.HTTPServer(('127.0.0.1', 18098), H).serve_forever()\n")
    web = Proc(lab.agent_ns, "python3", "-c", serve, str(listed))
    try:
        extra = ("  aliases:\n    blocked: {type: url_table, url: 'http://127.0.0.1:18098/list.txt',"
                 " refresh_interval: 1}\n")
        rules = "    - {id: feed, priority: 1, action: deny, protocol: icmp, src_alias: blocked}\n"
        a = make_agent(fw_yaml(rules, extra=extra)).start()
        assert wait_until(lambda: not ping(lab.peer_ns, A4), 5), "listed: dropped"
        assert not ping(lab.peer_ns, A6)
        listed.write_text("# emptied\n203.0.113.99\n")
        assert wait_until(lambda: ping(lab.peer_ns, A4), 6), "removed from the list: passes"
        assert ping(lab.peer_ns, A6)
        al = a.get("/api/v1/aliases").json()[0]
        assert al["name"] == "blocked" and al["entry_count"] == 1 and al["active"]
        # A failing refresh keeps the last good contents.
        listed.write_text(f"{P4}\n")
        assert wait_until(lambda: not ping(lab.peer_ns, A4), 6)
        os.unlink(listed)
        time.sleep(2.5)
        assert not ping(lab.peer_ns, A4), "404 from the server: contents kept"
        al = a.get("/api/v1/aliases").json()[0]
        assert "last_error" in al and al["entry_count"] == 1
    finally:
        web.stop()


def test_scheduled_rule_follows_the_injected_clock(lab, make_agent, tmp_path):
    clock = tmp_path / "clock"
    # 2026-01-07 is a Wednesday; the agent runs in UTC.
    clock.write_text("1767779940\n")  # 09:59:00
    rules = "    - {id: biz, priority: 1, action: deny, protocol: icmp, schedule: biz-hours}\n"
    extra = ("  schedules:\n    biz-hours: {entries: [{days: [wed], time: '10:00-11:00'}]}\n")
    a = make_agent(fw_yaml(rules, extra=extra),
                   env={"TZ": "UTC", "EBPFSENTINEL_FAKE_TIME_FILE": str(clock),
                        "EBPFSENTINEL_SCHEDULE_INTERVAL_SECS": "1"}).start()
    assert ping(lab.peer_ns, A4), "09:59: outside the window"
    assert rule(a, "biz")["schedule_active"] is False
    clock.write_text("1767780030\n")  # 10:00:30
    assert wait_until(lambda: not ping(lab.peer_ns, A4), 5), "10:00: the rule applies"
    assert a.get("/api/v1/firewall/schedules").json()[0]["active"] is True
    clock.write_text("1767783600\n")  # 11:00:00
    assert wait_until(lambda: ping(lab.peer_ns, A4), 5), "11:00: the window closed"


def test_zone_policy_between_two_forwarded_networks(router, make_router_agent):
    zones = f"""zones:
  enabled: true
  zones:
    - {{id: lan, interfaces: [{router.r_cif}]}}
    - {{id: wan, interfaces: [{router.r_sif}]}}
  policies:
    - {{from: lan, to: wan, policy: allow}}
"""
    a = make_router_agent("firewall:\n  mode: block\n" + zones).start()
    z = a.get("/api/v1/zones").json()
    assert z["active"] is True and [x["id"] for x in z["zones"]] == ["lan", "wan"]
    assert {m["interface"]: m["zone"] for m in z["interface_map"]} == \
        {router.r_cif: "lan", router.r_sif: "wan"}
    # lan → wan allowed, but the replies (wan → lan) have no pair: denied.
    assert not ping(router.client, "203.0.113.2")
    assert ping(router.client, "198.51.100.1"), "traffic to the router itself is not gated"
    assert ping(router.server, "203.0.113.1")
    m = a.metrics()
    assert metric(m, "ebpfsentinel_kernel_reasons_total", program="xdp_firewall",
                  reason="firewall_zone_drop") >= 1
    # Allow wan → lan as well (a reload): forwarding works both ways.
    a.write_config("firewall:\n  mode: block\n" + zones +
                   "    - {from: wan, to: lan, policy: accept}\n")
    a.send(signal.SIGHUP)
    assert wait_until(lambda: len(a.get("/api/v1/zones").json()["policies"]) == 2, 5)
    assert wait_until(lambda: ping(router.client, "203.0.113.2"), 5)
    assert wait_until(lambda: ping(router.client, "2001:db8:2::2"), 5)
