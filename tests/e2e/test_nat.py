# SPDX-License-Identifier: AGPL-3.0-only
"""NAT end to end (network.md §4.4): the agent routes between a client and a
server namespace with checksum offloads off (router tx, hosts rx), so every
transfer that completes had correct checksums. DNAT and masquerade over IPv4
and IPv6, port forward, redirect to a local resolver (dig), 1:1 both ways,
priorities, port exhaustion, and the conntrack NAT annotation."""
import json
import time

from conftest import need
from lab import metric, sh, wait_until
from peers import (blob_sha, curl, dns_server, fetch_sha, http_server, udp_ask,
                   udp_server)

CLIENT4, CLIENT6 = "198.51.100.2", "2001:db8:1::2"
ROUTER_C4, ROUTER_C6 = "198.51.100.1", "2001:db8:1::1"
ROUTER_S4, ROUTER_S6 = "203.0.113.1", "2001:db8:2::1"
SERVER4, SERVER6 = "203.0.113.2", "2001:db8:2::2"

def nat_agent(make_router_agent, rules, extra=""):
    a = make_router_agent("conntrack:\n  enabled: true\nnat:\n  enabled: true\n" + rules +
                          extra).start()
    assert wait_until(lambda: {p["name"]: p["loaded"] for p in
                               a.get("/api/v1/ebpf/status").json()["programs"]}
                      .get("tc_nat_egress")), a.log()[-2000:]
    return a


def test_dnat_transfers_over_ipv4_and_ipv6(router, make_router_agent):
    a = nat_agent(make_router_agent, f"""  dnat_rules:
    - {{ id: web4, type: dnat, match_dst: "{ROUTER_C4}", match_dst_port: 8080,
        match_protocol: tcp, translated_addr: "{SERVER4}", translated_port: 80 }}
    - {{ id: web6, type: dnat, match_dst: "{ROUTER_C6}", match_dst_port: 8080,
        match_protocol: tcp, translated_addr: "{SERVER6}", translated_port: 80 }}
""")
    s4 = http_server(router.server, SERVER4, 80)
    s6 = http_server(router.server, SERVER6, 80)
    try:
        seen = wait_until(lambda: curl(router.client, f"http://{ROUTER_C4}:8080/"))
        assert seen, a.log()[-2000:]
        peer, _, local, lport = seen.split()
        assert peer == CLIENT4, "DNAT keeps the client's address"
        assert (local, lport) == (SERVER4, "80"), "the server sees dst 203.0.113.2:80"
        assert fetch_sha(router.client, f"http://{ROUTER_C4}:8080/blob") == blob_sha()
        seen6 = wait_until(lambda: curl(router.client, f"http://[{ROUTER_C6}]:8080/"))
        assert seen6 and seen6.split()[0] == CLIENT6 and seen6.split()[2] == SERVER6
        assert fetch_sha(router.client, f"http://[{ROUTER_C6}]:8080/blob") == blob_sha()
        # Conntrack shows the translation on the client-side entry.
        flows = a.get("/api/v1/conntrack/connections?limit=1000").json()
        nat = [f for f in flows if f["dst_port"] == 8080]
        assert nat and all("nat_dst" in f["flags"] for f in nat), flows
        assert any(f.get("nat_addr") == SERVER4 and f.get("nat_port") == 80 for f in nat)
        m = a.metrics()
        assert metric(m, "ebpfsentinel_packets_total", interface="NAT_METRICS",
                      action="dnat_applied") > 100
        assert metric(m, "ebpfsentinel_packets_total", interface="NAT_METRICS",
                      action="errors") == 0
        rules = a.get("/api/v1/nat/rules").json()
        assert [(r["id"], r["nat_type"], r["direction"]) for r in rules] == \
            [("web4", "dnat", "dnat"), ("web6", "dnat", "dnat")]
        assert a.get("/api/v1/nat/status").json() == {"enabled": True, "rule_count": 2}
        sess = a.get("/api/v1/nat/sessions").json()
        assert any(x["direction"] == "reply" and x["new_src_port"] == 8080 for x in sess)
    finally:
        s4.stop()
        s6.stop()


def test_masquerade_over_ipv4_and_ipv6_follows_the_address(router, make_router_agent):
    a = nat_agent(make_router_agent, f"""  snat_rules:
    - {{ id: out4, type: masquerade, interface: {router.r_sif}, match_src: "198.51.100.0/24",
        port_range: "20000-20100" }}
    - {{ id: out6, type: masquerade, interface: {router.r_sif}, match_src: "2001:db8:1::/64",
        port_range: "20000-20100" }}
""")
    s4 = http_server(router.server, SERVER4, 80)
    s6 = http_server(router.server, SERVER6, 80)
    try:
        seen = wait_until(lambda: curl(router.client, f"http://{SERVER4}/"))
        assert seen, a.log()[-2000:]
        peer, port = seen.split()[:2]
        assert peer == ROUTER_S4 and 20000 <= int(port) <= 20100, seen
        assert fetch_sha(router.client, f"http://{SERVER4}/blob") == blob_sha()
        seen6 = wait_until(lambda: curl(router.client, f"http://[{SERVER6}]/"))
        assert seen6, a.log()[-2000:]
        assert seen6.split()[0] == ROUTER_S6 and 20000 <= int(seen6.split()[1]) <= 20100
        assert fetch_sha(router.client, f"http://[{SERVER6}]/blob") == blob_sha()
        m = a.metrics()
        assert metric(m, "ebpfsentinel_packets_total", interface="NAT_METRICS",
                      action="masq_applied") > 100
        # The WAN address changes: new flows follow within 10 s.
        # (Deleting a primary address also deletes its secondaries: delete first.)
        sh("ip", "addr", "del", f"{ROUTER_S4}/24", "dev", router.r_sif, ns=router.router)
        sh("ip", "addr", "add", "203.0.113.3/24", "dev", router.r_sif, ns=router.router)
        t0 = time.time()
        moved = wait_until(lambda: (curl(router.client, f"http://{SERVER4}/", 2) or "")
                           .startswith("203.0.113.3 "), timeout=12)
        assert moved, "masquerade did not follow the new address"
        assert time.time() - t0 <= 12
    finally:
        s4.stop()
        s6.stop()


def test_snat_without_range_keeps_the_port_and_exhaustion_drops(router, make_router_agent):
    sh("ip", "addr", "add", "198.51.100.3/24", "dev", router.cif, ns=router.client)
    a = nat_agent(make_router_agent, f"""  snat_rules:
    - {{ id: keep, type: snat, translated_addr: "{ROUTER_S4}", match_src: "198.51.100.0/24",
        match_dst_port: 5300, match_protocol: udp }}
    - {{ id: one, type: snat, translated_addr: "{ROUTER_S4}", match_src: "198.51.100.0/24",
        match_dst_port: 5301, port_range: "21000-21000" }}
""")
    w0 = udp_server(router.server, SERVER4, 5300)
    w1 = udp_server(router.server, SERVER4, 5301)
    try:
        time.sleep(0.5)
        got, _ = udp_ask(router.client, SERVER4, 5300, CLIENT4, 41234)
        assert got == f"{ROUTER_S4} 41234", "snat without a range keeps the port"
        before = metric(a.metrics(), "ebpfsentinel_packets_total", interface="NAT_METRICS",
                        action="port_alloc_fail")
        got, _ = udp_ask(router.client, SERVER4, 5301, CLIENT4, 42000)
        assert got == f"{ROUTER_S4} 21000"
        # Another host, same peer and port: the single port is taken.
        got, _ = udp_ask(router.client, SERVER4, 5301, "198.51.100.3", 42000)
        assert got == "timeout"
        after = metric(a.metrics(), "ebpfsentinel_packets_total", interface="NAT_METRICS",
                       action="port_alloc_fail")
        assert after >= before + 1
    finally:
        w0.stop()
        w1.stop()


def test_port_forward_priorities_and_disabled_rules(router, make_router_agent):
    a = nat_agent(make_router_agent, f"""  dnat_rules:
    - {{ id: range, type: port_forward, ext_port: "8000-8010", internal_addr: "{SERVER4}",
        int_port: "9000-9010", match_protocol: tcp }}
    - {{ id: low, type: dnat, match_dst_port: 8080, translated_addr: "{SERVER4}",
        translated_port: 9101, priority: 20 }}
    - {{ id: high, type: dnat, match_dst_port: 8080, translated_addr: "{SERVER4}",
        translated_port: 9102, priority: 10 }}
    - {{ id: off, type: dnat, match_dst_port: 8080, translated_addr: "{SERVER4}",
        translated_port: 9103, priority: 5, enabled: false }}
""")
    servers = [http_server(router.server, SERVER4, p)
               for p in (9005, 9101, 9102, 9103)]
    try:
        seen = wait_until(lambda: curl(router.client, f"http://{ROUTER_C4}:8005/"))
        assert seen and seen.split()[3] == "9005", seen
        seen = wait_until(lambda: curl(router.client, f"http://{ROUTER_C4}:8080/"))
        assert seen and seen.split()[3] == "9102", f"the lowest priority number wins: {seen}"
        assert [r["id"] for r in a.get("/api/v1/nat/rules").json()] == \
            ["range", "low", "high", "off"]
    finally:
        for s in servers:
            s.stop()


def test_one_to_one_both_ways_and_redirect_to_a_local_resolver(router, make_router_agent):
    need("dig")
    # The router answers for the external address on the server side.
    sh("ip", "addr", "add", "203.0.113.50/32", "dev", router.r_sif, ns=router.router)
    a = nat_agent(make_router_agent, f"""  snat_rules:
    - {{ id: map, type: one_to_one, external_addr: 203.0.113.50, internal_addr: "{CLIENT4}" }}
  dnat_rules:
    - {{ id: dns, type: redirect, match_dst_port: 53, match_protocol: udp,
        translated_port: 5353 }}
""")
    srv = http_server(router.server, SERVER4, 80)
    cli = http_server(router.client, CLIENT4, 8088)
    dns = dns_server(router.router, 5353)
    try:
        out = wait_until(lambda: curl(router.client, f"http://{SERVER4}/"))
        assert out and out.split()[0] == "203.0.113.50", "outbound: source mapped"
        inbound = wait_until(lambda: curl(router.server, "http://203.0.113.50:8088/"))
        assert inbound and inbound.split()[2] == CLIENT4, "inbound: destination mapped"
        assert inbound.split()[0] == SERVER4
        ans = wait_until(lambda: sh("dig", "+short", "+tries=1", "+time=2", f"@{ROUTER_C4}",
                                    "-p", "53", "example.test", ns=router.client,
                                    check=False).stdout.strip())
        assert ans == "192.0.2.77", "redirect 53 -> 5353 reached the local resolver"
    finally:
        srv.stop()
        cli.stop()
        dns.stop()


def test_disabled_nat_attaches_nothing(router, make_router_agent):
    a = make_router_agent("nat:\n  enabled: false\n  snat_rules:\n"
                          "    - { id: x, type: snat, translated_addr: 203.0.113.1 }\n").start()
    progs = {p["name"]: p["loaded"] for p in a.get("/api/v1/ebpf/status").json()["programs"]}
    assert progs.get("tc_nat_ingress") is False and progs.get("tc_nat_egress") is False
    assert a.get("/api/v1/nat/status").json() == {"enabled": False, "rule_count": 0}
    assert a.get("/api/v1/nat/rules").json() == []
    assert a.get("/api/v1/nat/sessions").json() == []
    out = a.cli("-o", "json", "nat", "--port", str(a.http_port), "status")
    assert out.returncode == 0 and json.loads(out.stdout)["enabled"] is False
