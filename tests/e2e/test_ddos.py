# SPDX-License-Identifier: AGPL-3.0-only
"""DDoS protection end to end: policy CRUD, an ICMP flood limited at XDP, and
a SYN flood answered with real SYN cookies at XDP while genuine clients still
reach a service on the agent's host and a server routed behind it."""
import json
import re
import threading
import time

import pytest

from conftest import need
from lab import Proc, attach_pass_xdp, metric, sh, wait_tcp, wait_until, xdp_prog_name
from test_ratelimit import wait_prog

DDOS_ON = "ddos:\n  enabled: true\n"


def test_policy_crud_rest(make_agent):
    a = make_agent(DDOS_ON + "  policies:\n    - { id: syn-guard, attack_type: syn_flood,"
                   " detection_threshold_pps: 500, mitigation_action: block }\n").start()
    wait_prog(a)
    assert a.get("/api/v1/ddos/status").json() == \
        {"enabled": True, "active_attacks": 0, "total_mitigated": 0, "policy_count": 1}
    assert a.get("/api/v1/ddos/policies").json() == [
        {"id": "syn-guard", "attack_type": "synflood", "detection_threshold_pps": 500,
         "mitigation_action": "block", "auto_block_duration_secs": 300, "enabled": True}]
    r = a.post("/api/v1/ddos/policies", json={"id": "icmp-1", "attack_type": "icmpflood",
                                              "detection_threshold_pps": 50,
                                              "mitigation_action": "ratelimit",
                                              "country_thresholds": {"fr": 10}})
    assert r.status_code == 201, r.text
    assert r.json() == {"id": "icmp-1", "attack_type": "icmpflood",
                        "detection_threshold_pps": 50, "mitigation_action": "throttle",
                        "auto_block_duration_secs": 0, "enabled": True}
    r = a.post("/api/v1/ddos/policies", json={"id": "icmp-1", "attack_type": "icmp_flood",
                                              "detection_threshold_pps": 5})
    assert r.status_code == 409 and r.json()["error"]["code"] == "DUPLICATE_RULE"
    for bad in ({"id": "x", "attack_type": "teardrop", "detection_threshold_pps": 5},
                {"id": "x", "attack_type": "syn_flood", "detection_threshold_pps": 0},
                {"id": "x", "attack_type": "syn_flood", "detection_threshold_pps": 5,
                 "mitigation_action": "pray"},
                {"id": "x", "attack_type": "syn_flood", "detection_threshold_pps": 5,
                 "country_thresholds": {"XYZ": 3}},
                {"id": "", "attack_type": "syn_flood", "detection_threshold_pps": 5}):
        r = a.post("/api/v1/ddos/policies", json=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["code"] == "VALIDATION_ERROR"
    r = a.post("/api/v1/ddos/policies", json={"id": "x", "detection_threshold_pps": 5})
    assert r.status_code == 422
    assert a.get("/api/v1/ddos/status").json()["policy_count"] == 2
    assert a.delete("/api/v1/ddos/policies/icmp-1").status_code == 204
    r = a.delete("/api/v1/ddos/policies/icmp-1")
    assert r.status_code == 404 and r.json()["error"]["code"] == "RULE_NOT_FOUND"
    assert a.get("/api/v1/ddos/attacks").json() == []
    assert a.get("/api/v1/ddos/attacks/history?limit=5").json() == []
    assert a.get("/api/v1/ddos/attacks/history?limit=x").status_code == 400


def test_policy_crud_cli(make_agent):
    a = make_agent(DDOS_ON).start()
    wait_prog(a)
    port = str(a.http_port)
    r = a.cli("ddos", "--port", port, "add", "--json",
              '{"id":"p1","attack_type":"rst_flood","detection_threshold_pps":20}')
    assert r.returncode == 0, r.stderr
    r = a.cli("-o", "json", "ddos", "--port", port, "policies")
    assert json.loads(r.stdout)[0]["attack_type"] == "rstflood"
    r = a.cli("ddos", "--port", port, "status")
    assert r.returncode == 0 and re.search(r"policy_count\s+1", r.stdout), r.stdout
    r = a.cli("ddos", "--port", port, "attacks")
    assert r.returncode == 0 and "No active attacks found." in r.stdout
    r = a.cli("-o", "json", "ddos", "--port", port, "history", "--limit", "3")
    assert r.returncode == 0 and json.loads(r.stdout) == []
    r = a.cli("ddos", "--port", port, "history", "--limit", "-1")
    assert r.returncode == 2
    r = a.cli("ddos", "--port", port, "delete", "p1")
    assert r.returncode == 0 and r.stdout.strip() == "DDoS policy deleted: p1"
    r = a.cli("ddos", "--port", port, "add", "--json",
              '{"id":"p2","attack_type":"nope","detection_threshold_pps":20}')
    assert r.returncode == 1 and "(VALIDATION_ERROR): 400 Bad Request" in r.stderr


def test_icmp_flood_is_limited(lab, make_agent):
    a = make_agent(DDOS_ON + "  icmp_protection: { enabled: true, max_pps: 10,"
                   " max_payload_size: 64 }\n").start()
    wait_prog(a)
    # 100 echo requests per second against 10 per second (one CPU: per-CPU windows).
    r = sh("taskset", "-c", "0", "ping", "-c", "200", "-i", "0.01", "-W", "1", "-q",
           "198.51.100.1", ns=lab.peer_ns, check=False, timeout=30)
    got = int(re.search(r"(\d+) received", r.stdout).group(1))
    secs = int(re.search(r"time (\d+)ms", r.stdout).group(1)) / 1000
    assert 10 <= got <= 10 * (secs + 1.5), r.stdout
    time.sleep(1.1)
    r = sh("ping", "-c", "2", "-i", "0.2", "-W", "1", "-s", "100", "198.51.100.1",
           ns=lab.peer_ns, check=False)
    assert " 0 received" in r.stdout, "oversized echo requests must be dropped"
    r = sh("ping", "-c", "2", "-i", "0.2", "-W", "1", "198.51.100.1", ns=lab.peer_ns,
           check=False)
    assert " 2 received" in r.stdout, "default-size pings pass"
    m = a.metrics()
    dd = dict(interface="DDOS_METRICS")
    assert metric(m, "ebpfsentinel_packets_total", action="icmp_drop", **dd) >= 150
    assert metric(m, "ebpfsentinel_packets_total", action="icmp_oversized", **dd) == 2
    assert metric(m, "ebpfsentinel_kernel_reasons_total", program="xdp_ratelimit",
                  reason="ddos_icmp_drop") >= 152


def count_state(ns, state):
    out = sh("ss", "-Htn", "state", state, ns=ns, check=False).stdout
    return len([x for x in out.splitlines() if x.strip()])


def nstat(ns, name):
    out = sh("nstat", "-az", name, ns=ns, check=False).stdout
    m = re.search(rf"^{name}\s+(\d+)", out, re.M)
    return int(m.group(1)) if m else 0


# The detector's test tick (EBPFSENTINEL_DDOS_TICK_MS): the state machine's
# tick counts (3 to Active, 30 to Mitigated, 300 to Expired) in 40 ms ticks,
# so Mitigated comes 1.2 s and Expired 12 s after a flood, rates still per second.
FAST_TICK = {"EBPFSENTINEL_DDOS_TICK_MS": "40"}


def alert_store(tmp_path):
    """An alert store (GET /api/v1/alerts), every alert kept (no dedup)."""
    return (f"audit:\n  storage_path: {tmp_path}/audit.db\n"
            "alerting:\n  dedup_window_secs: 0\n")


class Sampler:
    """Calls fn every interval seconds on a thread; keeps every value seen."""

    def __init__(self, fn, interval=0.1):
        self.fn, self.interval, self.seen = fn, interval, []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop_ev.is_set():
            self.seen.append(self.fn())
            self.stop_ev.wait(self.interval)

    def stop(self):
        self.stop_ev.set()
        self.t.join(5)
        return self.seen


@pytest.mark.parametrize("firewall", [False, True], ids=["ratelimit-head", "behind-firewall"])
def test_syn_flood_cookies_keep_clients_connecting(router, make_router_agent, tmp_path,
                                                   firewall):
    need("hping3")
    lb = router
    procs = []
    # XDP_TX from the router's native XDP reaches the client only if its veth runs XDP.
    attach_pass_xdp(lb.client, lb.cif)
    a = make_router_agent(
        alert_store(tmp_path) + f"firewall:\n  enabled: {str(firewall).lower()}\n" + DDOS_ON +
        "  syn_protection: { enabled: true, threshold_pps: 20 }\n"
        "  policies:\n    - { id: syn-guard, attack_type: syn_flood,"
        " detection_threshold_pps: 200, mitigation_action: alert }\n", env=FAST_TICK)
    try:
        procs.append(Proc(lb.router, "python3", "-m", "http.server", "--bind", "198.51.100.1",
                          "--directory", str(tmp_path), "8080"))
        procs.append(Proc(lb.server, "python3", "-m", "http.server", "--bind", "203.0.113.2",
                          "--directory", str(tmp_path), "8080"))
        wait_tcp(lb.router, "198.51.100.1", 8080)
        wait_tcp(lb.server, "203.0.113.2", 8080)
        a.start()
        wait_prog(a)
        head = "xdp_firewall" if firewall else "xdp_ratelimit"
        assert xdp_prog_name(lb.router, lb.r_cif) == head
        st = a.get("/api/v1/agent/status").json()
        ddos = {d["name"]: d for d in st["domains"]}["ddos"]
        assert ddos["syncookies"] and ddos["synproxy"], ddos
        assert sh("sysctl", "-n", "net.ipv4.tcp_syncookies", ns=lb.router).stdout.strip() == "2"
        assert "ES_SYNPROXY" in sh("iptables", "-S", "FORWARD", ns=lb.router).stdout
        cookies_before = nstat(lb.router, "TcpExtSyncookiesSent")

        # The listeners' SYN backlog (half-open connections), sampled every 100 ms.
        backlog = Sampler(lambda: count_state(lb.router, "syn-recv") +
                          count_state(lb.server, "syn-recv"))
        statuses = Sampler(lambda: [x["status"] for x in a.get("/api/v1/ddos/attacks").json()],
                           0.05)
        # ~2000 SYN/s for ~6 s at the local service, from one source (bounded count).
        flood = Proc(lb.client, "taskset", "-c", "0", "hping3", "-S", "-p", "8080", "-i",
                     "u500", "-c", "12000", "-q", "198.51.100.1")
        procs.append(flood)
        time.sleep(1.5)
        ok = {"local": 0, "routed": 0}
        for _ in range(4):
            for name, url in (("local", "http://198.51.100.1:8080/"),
                              ("routed", "http://203.0.113.2:8080/")):
                r = sh("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", url,
                       ns=lb.client, check=False)
                ok[name] += r.stdout == "200"
            time.sleep(0.5)
        out, err = flood.p.communicate(timeout=30)
        samples = backlog.stop()
        syn_recv_max = max(samples)
        seen = {x for v in statuses.stop() for x in v}
        assert ok == {"local": 4, "routed": 4}, f"clients failed during the flood: {ok}"
        assert len(samples) >= 20 and syn_recv_max <= 5, \
            f"{syn_recv_max} half-open connections on a listener ({len(samples)} samples)"

        m = a.metrics()
        xdp_cookies = metric(m, "ebpfsentinel_kernel_reasons_total", program="xdp_ratelimit",
                             reason="ddos_syncookie_sent")
        assert xdp_cookies >= 8000, f"only {xdp_cookies} SYN-ACKs sent by XDP"
        stack_cookies = nstat(lb.router, "TcpExtSyncookiesSent") - cookies_before
        assert stack_cookies < xdp_cookies / 10, \
            f"the stack answered {stack_cookies} SYNs, XDP {xdp_cookies}"
        # ... and they reached the flooder: hping3 counts the SYN-ACKs it got back.
        got = re.search(rb"(\d+) packets received", out + err)
        assert got and int(got.group(1)) >= 8000, (out + err)[-300:]
        assert metric(m, "ebpfsentinel_packets_total", interface="DDOS_METRICS",
                      action="syn_rcv") >= 11000

        # The detector: Active during the flood, Mitigated once it stopped, then
        # Expired (into the history), on the 40 ms test tick.
        assert "active" in seen, f"the attack was never reported active: {seen}"
        atk = wait_until(lambda: [x for x in a.get("/api/v1/ddos/attacks").json()
                                  if x["status"] == "mitigated"], timeout=5, interval=0.1)
        assert atk, a.get("/api/v1/ddos/attacks").json()
        atk = atk[0]
        assert atk["attack_type"] == "synflood" and atk["peak_pps"] >= 1000
        assert atk["current_pps"] < 200 and atk["source_count"] >= 1
        assert atk["total_packets"] >= 8000
        assert a.get("/api/v1/ddos/status").json()["active_attacks"] == 1
        hist = wait_until(lambda: a.get("/api/v1/ddos/attacks/history").json(), timeout=20,
                          interval=0.5)
        assert [(h["id"], h["status"]) for h in hist] == [(atk["id"], "expired")], hist
        assert a.get("/api/v1/ddos/attacks").json() == []
        assert a.get("/api/v1/ddos/status").json()["total_mitigated"] == 1
        seq = [al["mitigation_status"] for al in reversed(
            a.get("/api/v1/alerts", params={"rule_id": "syn-guard"}).json()["alerts"])]
        assert seq == ["active", "mitigated", "expired"], seq
    finally:
        for p in procs:
            p.stop()
        a.stop()
    # Stopping the agent restores the namespace.
    assert sh("sysctl", "-n", "net.ipv4.tcp_syncookies", ns=lb.router).stdout.strip() == "1"
    assert "ES_SYNPROXY" not in sh("iptables", "-S", ns=lb.router).stdout
    assert "ES_SYNPROXY" not in sh("iptables", "-t", "raw", "-S", ns=lb.router).stdout


def test_auto_block_goes_through_the_firewall_lpm_list(lab, make_agent, tmp_path):
    """A blocking policy puts the flood's source into the firewall's LPM block
    list (owner "ddos"), where xdp_firewall drops it before the chain goes on;
    the block expires after auto_block_duration_secs."""
    a = make_agent(alert_store(tmp_path) + "firewall:\n  enabled: true\n" + DDOS_ON +
                   "  icmp_protection: { enabled: true, max_pps: 10 }\n"
                   "  policies:\n    - { id: icmp-block, attack_type: icmp_flood,"
                   " detection_threshold_pps: 30, mitigation_action: block,"
                   " auto_block_duration_secs: 3 }\n", env=FAST_TICK).start()
    wait_prog(a)
    assert xdp_prog_name(lab.agent_ns, lab.agent_if) == "xdp_firewall"
    assert a.get("/api/v1/firewall/lpm").json() == []
    # ~100-200 echo requests per second against 10: the drops are the attack's events.
    flood = Proc(lab.peer_ns, "ping", "-q", "-c", "600", "-i", "0.005", "-W", "1",
                 "198.51.100.1")
    try:
        lpm = wait_until(lambda: a.get("/api/v1/firewall/lpm", params={"owner": "ddos"}).json(),
                         timeout=5, interval=0.1)
        assert lpm == [{"cidr": "198.51.100.2/32", "direction": "src", "action": "drop",
                        "owners": ["ddos"]}], lpm
        st = {d["name"]: d for d in a.get("/api/v1/agent/status").json()["domains"]}["ddos"]
        assert st["auto_blocks"] == 1
        m0 = metric(a.metrics(), "ebpfsentinel_kernel_reasons_total", program="xdp_firewall",
                    reason="firewall_lpm_drop")
        time.sleep(0.5)
        m1 = metric(a.metrics(), "ebpfsentinel_kernel_reasons_total", program="xdp_firewall",
                    reason="firewall_lpm_drop")
        assert m1 - m0 >= 20, "the firewall drops the blocked source"
        al = a.get("/api/v1/alerts", params={"rule_id": "icmp-block"}).json()["alerts"]
        act = [x for x in al if x["mitigation_status"] == "active"]
        assert act and act[0]["action"] == "block" and act[0]["attack_type"] == "icmpflood"
        assert act[0]["peak_pps"] >= 30 and act[0]["current_pps"] >= 30
    finally:
        flood.stop()
    # Expiry: out of the list (and the kernel) after 3 s; pings pass again.
    assert wait_until(lambda: a.get("/api/v1/firewall/lpm").json() == [], timeout=6,
                      interval=0.2)
    r = sh("ping", "-c", "2", "-i", "0.2", "-W", "1", "198.51.100.1", ns=lab.peer_ns,
           check=False)
    assert " 2 received" in r.stdout, r.stdout
