# SPDX-License-Identifier: AGPL-3.0-only
"""Policy routing gateways end to end (network.md §2.7): real ICMP and TCP
health checks from the agent's router namespace, failure and recovery
thresholds, a target that stops answering, REST and CLI views."""
import json

from lab import sh, wait_until
from peers import tcp_listen

ROUTING = """routing:
  enabled: true
  gateways:
    - {{ id: 1, name: wan-a, interface: {sif}, gateway_ip: 203.0.113.2, priority: 10,
        health_check: {{ protocol: icmp, interval_secs: 1, timeout_secs: 1,
                        failure_threshold: 2, recovery_threshold: 2 }} }}
    - {{ id: 2, name: lan-tcp, interface: {cif}, gateway_ip: 198.51.100.2, priority: 20,
        health_check: {{ protocol: "tcp:9", interval_secs: 1, timeout_secs: 1,
                        failure_threshold: 2 }} }}
    - {{ id: 3, name: wan6, interface: {sif}, gateway_ip: "2001:db8:2::2",
        health_check: {{ interval_secs: 1, timeout_secs: 1, failure_threshold: 2 }} }}
    - {{ id: 4, name: web, interface: {sif}, gateway_ip: 203.0.113.2,
        health_check: {{ protocol: "tcp:9200", interval_secs: 1, timeout_secs: 1,
                        failure_threshold: 2 }} }}
    - {{ id: 5, name: spare, interface: {sif}, gateway_ip: 203.0.113.9, enabled: false }}
"""


def statuses(a):
    return {g["id"]: g["status"] for g in a.get("/api/v1/routing/gateways").json()}


def test_health_checks_mark_gateways_down_and_back(router, make_router_agent):
    # Listening before the agent starts, and for every probe (not just the first).
    web = tcp_listen(router.server, [("203.0.113.2", 9200)])
    a = make_router_agent(ROUTING.format(sif=router.r_sif, cif=router.r_cif)).start()
    try:
        assert a.get("/api/v1/routing/status").json() == {"enabled": True, "gateway_count": 5}
        gws = {g["id"]: g for g in a.get("/api/v1/routing/gateways").json()}
        assert gws[1] == {"id": 1, "name": "wan-a", "interface": router.r_sif,
                          "gateway_ip": "203.0.113.2", "priority": 10, "enabled": True,
                          "status": "healthy"}
        assert gws[5]["status"] == "down" and gws[5]["enabled"] is False
        # Nothing listens on the client's port 9: refused twice → down.
        assert wait_until(lambda: statuses(a)[2] == "down", timeout=8), statuses(a)
        st = statuses(a)
        assert st[1] == "healthy" and st[3] == "healthy" and st[4] == "healthy", st
        # The IPv4 target stops answering pings: degraded, then down.
        sh("sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1", ns=router.server)
        assert wait_until(lambda: statuses(a)[1] == "down", timeout=10), statuses(a)
        assert statuses(a)[3] == "healthy", "IPv6 echo still answered"
        sh("sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=0", ns=router.server)
        assert wait_until(lambda: statuses(a)[1] == "healthy", timeout=10), statuses(a)
        out = a.cli("-o", "json", "routing", "--port", str(a.http_port), "gateways")
        assert out.returncode == 0, out.stderr
        assert {g["id"]: g["status"] for g in json.loads(out.stdout)}[2] == "down"
        assert "gateway status" in a.log()
    finally:
        web.stop()


def test_routing_disabled_answers_empty(make_router_agent):
    a = make_router_agent("routing:\n  enabled: false\n  gateways:\n"
                          "    - { id: 1, interface: lo, gateway_ip: 198.51.100.9 }\n").start()
    assert a.get("/api/v1/routing/status").json() == {"enabled": False, "gateway_count": 0}
    assert a.get("/api/v1/routing/gateways").json() == []
