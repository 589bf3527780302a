# SPDX-License-Identifier: AGPL-3.0-only
"""Connection tracking end to end (network.md §3.4): the agent as a router
between a client and a server namespace, real TCP, UDP and ICMP, the REST
listing, flush, metrics, and flows surviving an agent killed with SIGKILL."""
import json
import signal
import time

from lab import map_dump, metric, sh, tc_filters, wait_until
from peers import curl, http_server, tcp_client, tcp_server, udp_ask, udp_server

CT = "conntrack:\n  enabled: true\n"
SERVER4, SERVER6 = "203.0.113.2", "2001:db8:2::2"
CLIENT4 = "198.51.100.2"

def conns(agent, **match):
    out = []
    for c in agent.get("/api/v1/conntrack/connections?limit=1000").json():
        if all(c.get(k) == v for k, v in match.items()):
            out.append(c)
    return out


def start(make_router_agent, router, yaml=CT):
    a = make_router_agent(yaml).start()
    assert wait_until(lambda: ("1", "tc_conntrack") in
                      [(str(p), n) for p, n in tc_filters(a.ns, router.r_cif, "ingress")]), \
        "tc_conntrack not attached"
    return a


def test_tcp_flow_established_with_growing_counters(router, make_router_agent):
    a = start(make_router_agent, router)
    # Filters on both interfaces at the spec's priorities.
    for ifn in (router.r_cif, router.r_sif):
        assert (1, "tc_conntrack") in tc_filters(a.ns, ifn, "ingress")
        assert (2, "tc_conntrack_eg") in tc_filters(a.ns, ifn, "egress") or \
            (2, "tc_conntrack_egress") in tc_filters(a.ns, ifn, "egress")
    progs = {p["name"]: p["loaded"] for p in a.get("/api/v1/ebpf/status").json()["programs"]}
    assert progs["tc_conntrack"] is True
    srv = tcp_server(router.server, SERVER4, 9000, "hold")
    time.sleep(0.5)
    cli = tcp_client(router.client, SERVER4, 9000, 500)
    try:
        c1 = wait_until(lambda: [c for c in conns(a, dst_port=9000, protocol=6)
                                 if c["state"] == "established" and c["bytes_fwd"] > 1000])
        assert c1, conns(a)
        assert len(conns(a, dst_port=9000)) == 1, "one entry for one connection"
        c1 = c1[0]
        assert c1["src_ip"] == CLIENT4 and c1["dst_ip"] == SERVER4
        assert c1["packets_fwd"] > 0 and c1["packets_rev"] > 0
        assert "assured" in c1["flags"] and "seen_reply" in c1["flags"]
        time.sleep(0.6)
        c2 = conns(a, dst_port=9000)[0]
        assert c2["bytes_fwd"] > c1["bytes_fwd"] and c2["packets_fwd"] > c1["packets_fwd"]
        st = a.get("/api/v1/conntrack/status").json()
        assert st["enabled"] is True and st["connection_count"] >= 1
        m = a.metrics()
        ct = dict(interface="CT_METRICS")
        assert metric(m, "ebpfsentinel_packets_total", action="new", **ct) >= 1
        assert metric(m, "ebpfsentinel_packets_total", action="established", **ct) >= 1
        assert metric(m, "ebpfsentinel_packets_total", action="lookups", **ct) >= \
            metric(m, "ebpfsentinel_packets_total", action="hits", **ct) > 0
        # CLI view of the same table.
        out = a.cli("-o", "json", "conntrack", "--port", str(a.http_port), "connections",
                    "--limit", "5")
        assert out.returncode == 0, out.stderr
        assert any(c["dst_port"] == 9000 for c in json.loads(out.stdout))
    finally:
        cli.p.stdin.close()
        cli.stop()
        srv.stop()


def test_udp_counted_once_per_packet_and_unanswered_flows_expire(router, make_router_agent):
    a = start(make_router_agent, router, CT + "  udp_timeout_secs: 2\n")
    echo = udp_server(router.server, SERVER4, 5300, echo=True)
    time.sleep(0.5)
    try:
        _, got = udp_ask(router.client, SERVER4, 5300, CLIENT4, 41000, n=3)
        assert got == 3
        c = conns(a, dst_port=5300)
        assert len(c) == 1 and c[0]["state"] == "established"
        # Forwarded between two agent interfaces: counted once, not twice.
        assert c[0]["packets_fwd"] == 3 and c[0]["packets_rev"] == 3, c
        assert c[0]["bytes_fwd"] == c[0]["bytes_rev"] == 3 * (14 + 20 + 8 + 20)
        # Nobody answers on 5301 (the port unreachable is no reply): NEW, then gone.
        udp_ask(router.client, SERVER4, 5301, CLIENT4, 41001)
        c = conns(a, dst_port=5301)
        assert len(c) == 1 and c[0]["state"] == "new", c
        assert wait_until(lambda: not conns(a, dst_port=5301), timeout=4)
        # ... and the sweeper removes it from the kernel table (2 s + one 10 s sweep).
        def in_kernel():
            return any(5301 in (e["key"]["dst_port"], e["key"]["src_port"])
                       for e in map_dump(f"{a.pin_dir}/ct_table_v4"))
        assert wait_until(lambda: not in_kernel(), timeout=14)
    finally:
        echo.stop()


def test_rst_removes_and_orderly_close_waits(router, make_router_agent):
    a = start(make_router_agent, router)
    before = metric(a.metrics(), "ebpfsentinel_packets_total", interface="CT_METRICS",
                    action="closed")
    srv = tcp_server(router.server, SERVER4, 9001, "rst")
    time.sleep(0.5)
    cli = tcp_client(router.client, SERVER4, 9001, 10)
    try:
        # The server resets after its first read: the entry goes at once.
        assert wait_until(lambda: not conns(a, dst_port=9001) and
                          metric(a.metrics(), "ebpfsentinel_packets_total",
                                 interface="CT_METRICS", action="closed") >= before + 1)
    finally:
        cli.p.stdin.close()
        cli.stop()
        srv.stop()
    web = http_server(router.server, SERVER4, 8000)
    try:
        assert wait_until(lambda: curl(router.client, f"http://{SERVER4}:8000/"))
        c = wait_until(lambda: [c for c in conns(a, dst_port=8000) if c["state"] == "time_wait"])
        assert c, conns(a)
    finally:
        web.stop()


def test_icmp_and_ipv6_flows_then_flush(router, make_router_agent):
    a = start(make_router_agent, router)
    # -w: until two replies came (neighbour discovery may eat the first request).
    sh("ping", "-c", "2", "-i", "0.2", "-w", "5", SERVER4, ns=router.client)
    sh("ping", "-6", "-c", "2", "-i", "0.2", "-w", "5", SERVER6, ns=router.client)
    c4 = conns(a, protocol=1)
    c6 = conns(a, protocol=58)
    assert len(c4) == 1 and c4[0]["state"] == "established" and c4[0]["packets_fwd"] >= 2
    assert len(c6) == 1 and c6[0]["state"] == "established"
    assert c6[0]["src_ip"] == "2001:db8:1::2" and c6[0]["dst_ip"] == SERVER6
    v6 = map_dump(f"{a.pin_dir}/ct_table_v6")
    assert any(e["key"]["protocol"] == 58 for e in v6), "IPv6 flows live in the IPv6 table"
    r = a.post("/api/v1/conntrack/flush")
    assert r.status_code == 200 and r.json()["flushed"] >= 2
    assert conns(a) == []
    assert a.get("/api/v1/conntrack/status").json()["connection_count"] == 0


def test_disabled_attaches_nothing(router, make_router_agent):
    a = make_router_agent("conntrack:\n  enabled: false\n").start()
    time.sleep(0.3)
    assert not [n for _, n in tc_filters(a.ns, router.r_cif, "ingress") if "conntrack" in n]
    assert not [n for _, n in tc_filters(a.ns, router.r_cif, "egress") if "conntrack" in n]
    assert a.get("/api/v1/conntrack/status").json() == {"enabled": False,
                                                         "connection_count": 0}
    assert a.get("/api/v1/conntrack/connections").json() == []
    # Turned on by a reload, off again by the next.
    a.write_config(CT)
    a.send(signal.SIGHUP)
    assert wait_until(lambda: [n for _, n in tc_filters(a.ns, router.r_cif, "ingress")
                               if n == "tc_conntrack"])
    sh("ping", "-c", "1", "-w", "5", SERVER4, ns=router.client)
    assert wait_until(lambda: conns(a, protocol=1))
    a.write_config("conntrack:\n  enabled: false\n")
    a.send(signal.SIGHUP)
    assert wait_until(lambda: not tc_filters(a.ns, router.r_cif, "ingress") or not
                      [n for _, n in tc_filters(a.ns, router.r_cif, "ingress") if n == "tc_conntrack"])
    assert a.get("/api/v1/conntrack/status").json()["enabled"] is False


def test_flows_survive_a_killed_agent(router, make_router_agent):
    a = start(make_router_agent, router)
    srv = tcp_server(router.server, SERVER4, 9002, "hold")
    time.sleep(0.5)
    cli = tcp_client(router.client, SERVER4, 9002, 100)
    try:
        first = wait_until(lambda: [c for c in conns(a, dst_port=9002)
                                    if c["state"] == "established"])
        assert first
        a.stop(signal.SIGKILL)
        time.sleep(0.5)
        # Killed: filters and pinned tables stay; a successor reuses them.
        assert (1, "tc_conntrack") in tc_filters(a.ns, router.r_cif, "ingress")
        a.start()
        again = wait_until(lambda: [c for c in conns(a, dst_port=9002)
                                    if c["state"] == "established" and
                                    c["packets_fwd"] > first[0]["packets_fwd"]])
        assert again, conns(a)
        assert again[0]["src_port"] == first[0]["src_port"]
        assert cli.p.poll() is None, "the connection is still up"
        # A clean stop detaches our filters and removes the pins.
        rc, _ = a.stop()
        assert rc == 0
        assert not [n for _, n in tc_filters(a.ns, router.r_cif, "ingress") if "conntrack" in n]
        assert not __import__("os").path.exists(f"{a.pin_dir}/ct_table_v4")
    finally:
        cli.p.stdin.close()
        cli.stop()
        srv.stop()
