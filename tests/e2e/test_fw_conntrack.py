# SPDX-License-Identifier: AGPL-3.0-only
"""The stateful firewall end to end (network.md §2.8 behaviours 4, 10, 11 and
the RELATED case): the agent routes between a client and a server namespace
(checksum offloads off, so a transfer that completes had right checksums)
with conntrack on and a default-drop firewall, over IPv4 and IPv6; and an
established flow surviving an agent killed with SIGKILL."""
import os
import signal
import time

from lab import Proc, map_dump, metric, sh, wait_until
from peers import blob_sha, fetch_sha, http_server, ping, tcp_client, tcp_listen, tcp_try

CLIENT = {4: "198.51.100.2", 6: "2001:db8:1::2"}
SERVER = {4: "203.0.113.2", 6: "2001:db8:2::2"}


def url(fam, port, path="/"):
    host = SERVER[fam] if fam == 4 else f"[{SERVER[fam]}]"
    return f"http://{host}:{port}{path}"


# Neighbour discovery (NS 135, NA 136) must pass a default-drop firewall for IPv6.
ND = ("    - {id: nd-ns, priority: 1, action: allow, protocol: icmp, icmp_type: 135}\n"
      "    - {id: nd-na, priority: 1, action: allow, protocol: icmp, icmp_type: 136}\n")


def fw_ct_agent(make_router_agent, rules, ct="", debug=False):
    yaml = ("conntrack:\n  enabled: true\n" + ct +
            "firewall:\n  mode: block\n  default_policy: drop\n"
            "  anti_lockout: {enabled: false}\n  rules:\n" + ND + rules)
    a = make_router_agent(yaml, agent_yaml="  log_level: debug\n" if debug else "").start()
    progs = {p["name"]: p["loaded"] for p in a.get("/api/v1/ebpf/status").json()["programs"]}
    assert progs.get("xdp_firewall") and progs.get("tc_conntrack"), progs
    return a


def tcp_snmp(ns):
    """The namespace's TCP counters from /proc/net/snmp."""
    lines = [l.split() for l in sh("cat", "/proc/net/snmp", ns=ns).stdout.splitlines()
             if l.startswith("Tcp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))


def conns(a, **match):
    return [c for c in a.get("/api/v1/conntrack/connections?limit=1000").json()
            if all(c.get(k) == v for k, v in match.items())]


def test_state_new_lets_ssh_in_and_drops_unsolicited_acks(router, make_router_agent):
    """Behaviour 4: default drop + `allow tcp dport 22 state [new]`: the
    connection works both ways (replies and later packets by the fast path);
    an ACK without a connection is INVALID and dropped."""
    a = fw_ct_agent(make_router_agent, "    - {id: ssh-new, priority: 10, action: allow, "
                    "protocol: tcp, dst_port: 22, state: [new]}\n")
    web4 = http_server(router.server, SERVER[4], 22)
    web6 = http_server(router.server, SERVER[6], 22)
    try:
        for fam in (4, 6):
            assert wait_until(lambda: fetch_sha(router.client, url(fam, 22, "/blob")) ==
                              blob_sha(), 10), f"IPv{fam}: {a.log()[-2000:]}"
        assert metric(a.metrics(), "ebpfsentinel_kernel_reasons_total",
                      program="xdp_firewall", reason="firewall_conntrack_fastpath") > 100, \
            "the transfers went by the fast path"
        # Unsolicited ACKs to 22: the server would answer each with a RST if one arrived.
        before = tcp_snmp(router.server)
        sh("hping3", "-A", "-p", "22", "-c", "3", "-i", "u100000", SERVER[4], ns=router.client,
           check=False, timeout=20)
        sh("hping3", "-A", "-p", "22", "-c", "3", "-i", "u100000", "-6", SERVER[6],
           ns=router.client, check=False, timeout=20)
        time.sleep(0.5)
        after = tcp_snmp(router.server)
        assert after["InSegs"] == before["InSegs"], "no unsolicited ACK reached the server"
        assert after["OutRsts"] == before["OutRsts"]
        # Control: a SYN to 22 from the same tool does reach it (the server answers).
        sh("hping3", "-S", "-p", "22", "-c", "1", SERVER[4], ns=router.client, check=False,
           timeout=10)
        assert wait_until(lambda: tcp_snmp(router.server)["InSegs"] > after["InSegs"], 3)
    finally:
        web4.stop()
        web6.stop()


# UDP client: connected socket, one datagram, "refused" when an ICMP error came back.
_UDP_PROBE = """
import socket, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2); s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b'x' * 16)
try: s.recv(100); print('answer')
except ConnectionRefusedError: print('refused')
except socket.timeout: print('timeout')
"""


def test_icmp_error_about_a_tracked_flow_is_related(router, make_router_agent):
    """The RELATED case: nobody listens on UDP 5400 at the server; its port
    unreachable (no rule allows ICMP errors) passes as RELATED to the tracked
    flow, so the client sees the refusal instead of a timeout."""
    a = fw_ct_agent(make_router_agent, "    - {id: udp-new, priority: 10, action: allow, "
                    "protocol: udp, dst_port: 5400, state: [new]}\n")
    for fam in (4, 6):
        out = sh("python3", "-c", _UDP_PROBE, SERVER[fam], "5400", ns=router.client,
                 timeout=10).stdout.strip()
        assert out == "refused", f"IPv{fam}: {out}"
        assert conns(a, dst_port=5400, protocol=17, dst_ip=SERVER[fam])
        # Control: not allowed out, no flow, so nothing comes back (no RELATED).
        out = sh("python3", "-c", _UDP_PROBE, SERVER[fam], "5401", ns=router.client,
                 timeout=10).stdout.strip()
        assert out == "timeout", f"IPv{fam}: {out}"


# Accepts every connection and holds it until the peer closes.
_HOLD = """
import socket, sys, threading
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
def hold(c):
    while c.recv(65536): pass
    c.close()
print('ready', flush=True)
while True:
    c, _ = s.accept(); threading.Thread(target=hold, args=(c,), daemon=True).start()
"""


def hold_server(ns, addr, port):
    p = Proc(ns, "python3", "-c", _HOLD, addr, str(port))
    assert p.p.stdout.readline().strip() == b"ready"
    return p


def test_max_states_refuses_the_third_connection_until_one_closes(router, make_router_agent):
    """Behaviour 10: `max_states: 2`, default drop: the third concurrent
    connection's SYN is dropped (event rule connection-limit); after one
    closes and a sweep runs, a new one succeeds. IPv4 and IPv6 share the rule."""
    a = fw_ct_agent(make_router_agent, "    - {id: two-conns, priority: 10, action: allow, "
                    "protocol: tcp, dst_port: 9100, max_states: 2}\n",
                    ct="  tcp_fin_timeout_secs: 1\n", debug=True)
    srv = {fam: hold_server(router.server, SERVER[fam], 9100) for fam in (4, 6)}
    clients = []
    try:
        clients.append(tcp_client(router.client, SERVER[4], 9100, 10))
        clients.append(tcp_client(router.client, SERVER[6], 9100, 10))
        assert wait_until(lambda: len([c for c in conns(a, dst_port=9100)
                                       if c["state"] == "established"]) == 2), conns(a)
        assert tcp_try(router.client, [(SERVER[4], 9100), (SERVER[6], 9100)], 1.5) == \
            [False, False]
        assert wait_until(lambda: '"rule_id":"connection-limit"' in a.log(), 3), \
            "drop events name the connection limit"
        rule = next(r for r in a.get("/api/v1/firewall/rules").json()
                    if r["id"] == "two-conns")
        assert rule.get("max_states") == 2
        # The held connections still carry data (their packets are not new flows).
        n = conns(a, dst_port=9100)[0]["packets_fwd"]
        assert wait_until(lambda: conns(a, dst_port=9100) and
                          max(c["packets_fwd"] for c in conns(a, dst_port=9100)) > n)
        # One closes; its entry times out (1 s) and the 10 s sweep recounts.
        clients[0].p.stdin.close()
        clients[0].stop()
        assert wait_until(lambda: tcp_try(router.client, [(SERVER[4], 9100)], 1.0) == [True],
                          timeout=25, interval=1), "a slot was freed"
    finally:
        for c in clients:
            if c.p.stdin and not c.p.stdin.closed:
                c.p.stdin.close()
            c.stop()
        for p in srv.values():
            p.stop()


def test_conn_rate_overloads_the_source_on_every_port(router, make_router_agent):
    """Behaviour 11: `max_src_conn_rate: 5`: the 6th connection within the
    window is dropped and the source lands in the overload set, dropped on
    every port (ping included) until overload_ttl_secs expires."""
    a = fw_ct_agent(make_router_agent,
                    "    - {id: web, priority: 10, action: allow, protocol: tcp, "
                    "dst_port: \"9200-9201\"}\n"
                    "    - {id: echo, priority: 11, action: allow, protocol: icmp}\n",
                    ct="  max_src_conn_rate: 5\n  conn_rate_window_secs: 5\n"
                    "  overload_ttl_secs: 4\n  tcp_fin_timeout_secs: 1\n", debug=True)
    srv = tcp_listen(router.server, [(SERVER[4], 9200), (SERVER[4], 9201),
                                     (SERVER[6], 9200), (SERVER[6], 9201)])
    try:
        # Neighbours resolved on every hop first (a SYN waiting for ND would miss
        # tcp_try's timeout); the echo flows count, so let their window pass.
        for fam in (4, 6):
            # A single IPv6 echo may go while a neighbour is still resolving: retry.
            assert wait_until(lambda: ping(router.client, SERVER[fam], count=1, wait=1), 6), \
                f"IPv{fam} before"
        time.sleep(5.5)
        for fam in (4, 6):
            got = tcp_try(router.client, [(SERVER[fam], 9200)] * 6, 1.0)
            assert got == [True] * 5 + [False], f"IPv{fam}: {got}"
        ov = map_dump(f"{a.pin_dir}/ct_overload")
        assert len(ov) == 2, ov
        # Every port, every protocol, both sources.
        for fam in (4, 6):
            assert tcp_try(router.client, [(SERVER[fam], 9201)], 1.0) == [False]
            assert not ping(router.client, SERVER[fam], count=1, wait=1)
        assert '"rule_id":"connection-limit"' in a.log()
        # The sweeper expires the entries after overload_ttl_secs (4 s + a 10 s sweep).
        assert wait_until(lambda: not map_dump(f"{a.pin_dir}/ct_overload"), 20, 1)
        for fam in (4, 6):
            assert tcp_try(router.client, [(SERVER[fam], 9201)], 1.0) == [True], f"IPv{fam}"
            # An echo request opens a flow too (the 2nd in a fresh window): answered.
            assert ping(router.client, SERVER[fam], count=2, wait=2), f"IPv{fam} after"
    finally:
        srv.stop()


def test_established_flow_survives_a_killed_agent_under_default_drop(router,
                                                                        make_router_agent):
    """A SIGKILLed agent leaves its XDP/TC programs and pins: the flow goes on
    by the fast path while no agent runs, and the successor reuses the pinned
    tables. A clean stop then removes the pins."""
    a = fw_ct_agent(make_router_agent, "    - {id: new-9300, priority: 10, action: allow, "
                    "protocol: tcp, dst_port: 9300, state: [new]}\n")
    srv = hold_server(router.server, SERVER[6], 9300)
    srv4 = hold_server(router.server, SERVER[4], 9300)
    cli = tcp_client(router.client, SERVER[6], 9300, 100)
    cli4 = tcp_client(router.client, SERVER[4], 9300, 100)
    try:
        def both_up():
            up = [c for c in conns(a, dst_port=9300)
                  if c["state"] == "established" and c["packets_fwd"] > 5]
            return up if len(up) == 2 else None
        first = wait_until(both_up)
        assert first and len(first) == 2, conns(a)
        a.stop(signal.SIGKILL)

        def kernel_fwd():
            return sum(e["value"]["packets_fwd"] for t in ("ct_table_v4", "ct_table_v6")
                       for e in map_dump(f"{a.pin_dir}/{t}")
                       if 9300 in (e["key"]["src_port"], e["key"]["dst_port"]))
        n0 = kernel_fwd()
        time.sleep(1.5)
        assert kernel_fwd() > n0 + 5, "packets flow while no agent runs"
        assert cli.p.poll() is None and cli4.p.poll() is None
        a.start()
        again = wait_until(lambda: [c for c in conns(a, dst_port=9300)
                                    if c["state"] == "established" and
                                    c["packets_fwd"] > max(f["packets_fwd"] for f in first)])
        assert len(again) == 2, conns(a)
        assert {c["src_port"] for c in again} == {c["src_port"] for c in first}, \
            "the same flows, in the reused table"
        time.sleep(1)
        assert cli.p.poll() is None and cli4.p.poll() is None, "both connections are up"
        # Nothing else gets in: a new connection elsewhere is still dropped.
        assert tcp_try(router.client, [(SERVER[4], 9301)], 1.0) == [False]
        rc, _ = a.stop()
        assert rc == 0
        assert not os.path.exists(f"{a.pin_dir}/ct_table_v4")
        assert not os.path.exists(f"{a.pin_dir}/fw_ctl")
    finally:
        for c in (cli, cli4):
            c.p.stdin.close()
            c.stop()
        srv.stop()
        srv4.stop()
