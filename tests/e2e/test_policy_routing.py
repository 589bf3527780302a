# SPDX-License-Identifier: AGPL-3.0-only
"""Policy routing through the programs (network.md §2.7): `route_to` (XDP:
FIB lookup of the gateway, MAC rewrite, TTL − 1, redirect through FW_DEVMAP)
and its re-pointing when the gateway's health check fails, `dup_to`
(tc_conntrack mirrors to an interface) and `reply_to` (tc_conntrack_egress
sends the replies back where the flow came from). A fourth namespace `gw`
hangs off the router: it owns the server's addresses too, so where a
connection lands shows which way it was routed."""
import json
import time

import pytest

from conftest import _agent_factory
from lab import Proc, map_dump, sh, wait_until

CLIENT = {4: "198.51.100.2", 6: "2001:db8:1::2"}
SERVER = {4: "203.0.113.2", 6: "2001:db8:2::2"}
GW = {4: "198.18.0.2", 6: "2001:db8:3::2"}


@pytest.fixture
def gwlab(router, tmp_path):
    """router + a namespace `gw` on a third router veth (198.18.0.0/24,
    2001:db8:3::/64) that also answers for the server's addresses; GRO on the
    far ends so XDP-redirected frames are received (KERNEL-NOTES.md)."""
    lb = router
    lb.gw = lb.netns()
    lb.r_gif, lb.gif = lb.link(lb.router, lb.gw, "198.18.0.1/24", "198.18.0.2/24",
                               "2001:db8:3::1/64", "2001:db8:3::2/64")
    sh("ip", "addr", "add", "203.0.113.2/32", "dev", "lo", ns=lb.gw)
    sh("ip", "-6", "addr", "add", "2001:db8:2::2/128", "dev", "lo", ns=lb.gw)
    sh("ip", "route", "add", "default", "via", "198.18.0.1", ns=lb.gw)
    sh("ip", "-6", "route", "add", "default", "via", "2001:db8:3::1", ns=lb.gw)
    sh("ethtool", "-K", lb.r_gif, "tx", "off", ns=lb.router)
    for ns, ifn in ((lb.gw, lb.gif), (lb.server, lb.sif), (lb.client, lb.cif)):
        sh("ethtool", "-K", ifn, "rx", "off", "gro", "on", ns=ns)
    # A frame XDP redirects keeps only its bytes: a veth sender's partial checksum
    # (tx offload) would arrive unfinished. Real wires carry complete ones.
    sh("ethtool", "-K", lb.cif, "tx", "off", ns=lb.client)
    make, agents = _agent_factory(lb.router, [lb.r_cif, lb.r_sif, lb.r_gif], tmp_path)
    lb.make_agent = make
    yield lb
    for a in agents:
        a.cleanup()


# Says who it is to every connection ("<tag>\n"; tag "@peer": the address the
# connection came from), then closes.
_WHO = """
import socket, sys, threading
socks = []
for spec in sys.argv[2:]:
    a, p = spec.rsplit(',', 1)
    s = socket.socket(socket.AF_INET6 if ':' in a else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a, int(p))); s.listen(16); socks.append(s)
def serve(s):
    while True:
        c, peer = s.accept()
        c.sendall((peer[0] if sys.argv[1] == '@peer' else sys.argv[1]).encode() + b'\\n')
        c.close()
for s in socks: threading.Thread(target=serve, args=(s,), daemon=True).start()
print('ready', flush=True)
threading.Event().wait()
"""

# Connects (optionally from a source address) and prints the first line, or "-".
_ASK = """
import socket, sys
a, p = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ':' in a else socket.AF_INET)
s.settimeout(2)
try:
    if len(sys.argv) > 3: s.bind((sys.argv[3], 0))
    s.connect((a, p)); print(s.makefile().readline().strip() or '-')
except OSError: print('-')
"""


def who(ns, tag, endpoints):
    p = Proc(ns, "python3", "-c", _WHO, tag, *[f"{a},{port}" for a, port in endpoints])
    assert p.p.stdout.readline().strip() == b"ready"
    return p


def ask(ns, addr, port, src=None):
    return sh("python3", "-c", _ASK, addr, str(port), *([src] if src else []), ns=ns,
              timeout=10).stdout.strip()


def ifindex(ns, ifn):
    return json.loads(sh("ip", "-j", "link", "show", ifn, ns=ns).stdout)[0]["ifindex"]


HC = "health_check: {protocol: icmp, interval_secs: 1, timeout_secs: 1, " \
     "failure_threshold: 2, recovery_threshold: 2}"


def test_route_to_goes_through_the_gateway_and_fails_over(gwlab):
    lb = gwlab
    yaml = f"""routing:
  enabled: true
  gateways:
    - {{id: 1, name: gw-a, interface: {lb.r_gif}, gateway_ip: {GW[4]}, priority: 10, {HC}}}
    - {{id: 2, name: gw-b, interface: {lb.r_sif}, gateway_ip: {SERVER[4]}, priority: 20, {HC}}}
    - {{id: 3, name: gw-a6, interface: {lb.r_gif}, gateway_ip: "{GW[6]}", priority: 10, {HC}}}
    - {{id: 4, name: gw-b6, interface: {lb.r_sif}, gateway_ip: "{SERVER[6]}", priority: 20,
        {HC}}}
firewall:
  mode: block
  default_policy: pass
  rules:
    - {{id: via-a, priority: 10, action: allow, protocol: tcp, dst_port: 7000,
        dst_ip: {SERVER[4]}, route_to: {{gateway: 1, interface: {lb.r_gif}}}}}
    - {{id: via-a6, priority: 10, action: allow, protocol: tcp, dst_port: 7000,
        dst_ip: "{SERVER[6]}", route_to: {{gateway: "{GW[6]}", interface: {lb.r_gif}}}}}
"""
    eps = [(SERVER[f], p) for f in (4, 6) for p in (7000, 7001)]
    srv = who(lb.server, "server", eps)
    gw = who(lb.gw, "gw", eps)
    a = lb.make_agent(yaml).start()
    try:
        for fam in (4, 6):
            # The rule's traffic takes the gateway; other ports the routing table.
            assert wait_until(lambda: ask(lb.client, SERVER[fam], 7000) == "gw", 8), \
                f"IPv{fam}: {a.log()[-2000:]}"
            assert ask(lb.client, SERVER[fam], 7001) == "server"
        # Redirected at XDP: the router's stack never forwarded them (TTL − 1 by us).
        targets = {e["key"]: e["value"] for e in map_dump(f"{a.pin_dir}/fw_route_targets")}
        assert {t["ifindex"] for t in targets.values()} == {ifindex(lb.router, lb.r_gif)}
        # gw-a and gw-a6 stop answering: route_to is re-pointed to gw-b / gw-b6.
        sh("sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1", ns=lb.gw)
        sh("sysctl", "-qw", "net.ipv6.icmp.echo_ignore_all=1", ns=lb.gw)
        assert wait_until(lambda: {g["id"]: g["status"] for g in
                                   a.get("/api/v1/routing/gateways").json()}.get(1) == "down"
                          and {g["id"]: g["status"] for g in
                               a.get("/api/v1/routing/gateways").json()}.get(3) == "down", 10)
        assert wait_until(lambda: {t["value"]["ifindex"] for t in
                                   map_dump(f"{a.pin_dir}/fw_route_targets")} ==
                          {ifindex(lb.router, lb.r_sif)}, 5)
        for fam in (4, 6):
            assert wait_until(lambda: ask(lb.client, SERVER[fam], 7000) == "server", 5), \
                f"IPv{fam} after failover"
        # Recovery points it back.
        sh("sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=0", ns=lb.gw)
        sh("sysctl", "-qw", "net.ipv6.icmp.echo_ignore_all=0", ns=lb.gw)
        for fam in (4, 6):
            assert wait_until(lambda: ask(lb.client, SERVER[fam], 7000) == "gw", 10), \
                f"IPv{fam} after recovery"
    finally:
        srv.stop()
        gw.stop()


def capture(ns, ifn, bpf_filter):
    """tcpdump in ns (promiscuous: mirrored frames keep the original MACs)."""
    p = Proc(ns, "tcpdump", "-i", ifn, "-n", "-l", "--immediate-mode", "-c", "50", bpf_filter)
    time.sleep(1)
    return p


def captured(p):
    p.stop()
    return [l for l in p.p.stdout.read().decode().splitlines() if l.strip()]


_UDP_ASK = """
import socket, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2); got = 0
for i in range(3):
    s.sendto(b'x' * 16, (sys.argv[1], int(sys.argv[2])))
    try: s.recvfrom(100); got += 1
    except OSError: pass
print(got)
"""


# Echoes UDP on port 5500 of both server addresses.
_UDP_ECHO = """
import socket, threading
def run(fam, a):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((a, 5500))
    while True:
        d, p = s.recvfrom(100); s.sendto(d, p)
for fam, a in ((socket.AF_INET, '203.0.113.2'), (socket.AF_INET6, '2001:db8:2::2')):
    threading.Thread(target=run, args=(fam, a), daemon=True).start()
threading.Event().wait()
"""


@pytest.mark.parametrize("ct", [False, True], ids=["stateless", "conntrack"])
def test_dup_to_mirrors_to_an_interface(gwlab, ct):
    """dup_to mirrors the packets in its rule's direction, not the replies.
    Without conntrack every packet goes through the rules. With it only a
    flow's first one does and the rest take the fast path: the flow keeps its
    rule's dup_to (as a pf state keeps its route options), so they are
    mirrored too."""
    lb = gwlab
    yaml = ("conntrack:\n  enabled: true\n" if ct else "") + f"""firewall:
  mode: block
  default_policy: pass
  rules:
    - {{id: mirror, priority: 10, action: allow, protocol: udp, dst_port: 5500,
        dup_to: {{interface: {lb.r_gif}}}}}
"""
    a = lb.make_agent(yaml).start()
    progs = {p["name"]: p["loaded"] for p in a.get("/api/v1/ebpf/status").json()["programs"]}
    assert progs.get("tc_conntrack"), "dup_to loads the conntrack programs"
    echo = Proc(lb.server, "python3", "-c", _UDP_ECHO)
    cap = capture(lb.gw, lb.gif, "udp and port 5500")
    try:
        time.sleep(0.5)
        for fam in (4, 6):
            out = sh("python3", "-c", _UDP_ASK, SERVER[fam], "5500", ns=lb.client,
                     timeout=15).stdout.strip()
            assert out == "3", f"IPv{fam}: the original still gets its answers ({out})"
        if not ct:  # Control: another port is not mirrored.
            sh("python3", "-c", _UDP_ASK, SERVER[4], "5501", ns=lb.client, timeout=15)
        lines = captured(cap)
        for fam in (4, 6):
            to = [l for l in lines if f"> {SERVER[fam]}.5500" in l]
            back = [l for l in lines if f"{SERVER[fam]}.5500 >" in l]
            assert len(to) == 3, f"IPv{fam}: all three datagrams mirrored: {lines}"
            assert back == [], f"IPv{fam}: replies are not mirrored: {lines}"
        if ct:
            flows = a.get("/api/v1/conntrack/connections?limit=1000").json()
            for fam in (4, 6):
                f = [f for f in flows if f["dst_ip"] == SERVER[fam] and f["dst_port"] == 5500]
                assert len(f) == 1 and f[0]["packets_fwd"] == 3, \
                    f"IPv{fam}: one tracked flow, so datagrams 2 and 3 took the fast path: {f}"
                assert "dup_to" in f[0]["flags"], f
    finally:
        echo.stop()
        if cap.p.poll() is None:
            cap.stop()


def gateways_a(lb):
    """`routing:` with gateways 1 (IPv4) and 3 (IPv6) on gw, and a function
    giving the rules via-a / via-a6 that route port 7000 of the server
    through them (`extra`: more keys for both rules)."""
    routing = f"""routing:
  enabled: true
  gateways:
    - {{id: 1, name: gw-a, interface: {lb.r_gif}, gateway_ip: {GW[4]}, priority: 10, {HC}}}
    - {{id: 3, name: gw-a6, interface: {lb.r_gif}, gateway_ip: "{GW[6]}", priority: 10, {HC}}}
"""

    def via(extra=""):
        return "".join(
            f"    - {{id: via-a{'6' if fam == 6 else ''}, priority: 10, action: allow, "
            f"protocol: tcp, dst_port: 7000, {extra}dst_ip: \"{SERVER[fam]}\", "
            f"route_to: {{gateway: {1 if fam == 4 else 3}, interface: {lb.r_gif}}}}}\n"
            for fam in (4, 6))
    return routing, via


def test_route_to_with_conntrack_tracks_the_flow(gwlab):
    """Conntrack on, default drop, a `state: [new]` route_to rule: the flow is
    tracked (tc_conntrack routes it, not XDP), so the gateway's replies find
    the flow's state and the connection completes through the gateway; every
    packet of the flow in its direction goes that way, not just the first."""
    lb = gwlab
    routing, via = gateways_a(lb)
    yaml = f"""conntrack:
  enabled: true
{routing}firewall:
  mode: block
  default_policy: drop
  rules:
    - {{id: icmp, priority: 1, action: allow, protocol: icmp}}
{via("state: [new], ")}    - {{id: direct, priority: 20, action: allow, protocol: tcp, dst_port: 7001, state: [new]}}
"""
    eps = [(SERVER[f], p) for f in (4, 6) for p in (7000, 7001)]
    srv = who(lb.server, "server", eps)
    gw = who(lb.gw, "gw", eps)
    a = lb.make_agent(yaml).start()
    cap = capture(lb.gw, lb.gif, "tcp and dst port 7000")
    try:
        for fam in (4, 6):
            assert wait_until(lambda: ask(lb.client, SERVER[fam], 7000) == "gw", 8), \
                f"IPv{fam}: {a.log()[-2000:]}"
            # Control: the routing table's way, admitted by state too.
            assert ask(lb.client, SERVER[fam], 7001) == "server"
        flows = a.get("/api/v1/conntrack/connections?limit=1000").json()
        for fam in (4, 6):
            f = [f for f in flows if f["dst_ip"] == SERVER[fam] and f["dst_port"] == 7000]
            assert f and all("route_to" in x["flags"] for x in f), f
            assert any(x["packets_rev"] >= 2 for x in f), f"replies tracked: {f}"
        lines = captured(cap)
        for fam in (4, 6):
            at_gw = [l for l in lines if f"> {SERVER[fam]}.7000" in l]
            assert len([l for l in at_gw if "[S]" in l]) >= 1, lines
            assert len([l for l in at_gw if "[S]" not in l]) >= 2, \
                f"IPv{fam}: the flow's later packets (ACK, FIN) went through the gateway: {lines}"
        m = a.metrics()
        assert sum(v for (n, labels), v in m.items()
                   if n == "ebpfsentinel_kernel_reasons_total" and
                   ("reason", "conntrack_route_to_redirect") in labels) >= 6
    finally:
        srv.stop()
        gw.stop()
        if cap.p.poll() is None:
            cap.stop()


def test_route_to_with_conntrack_goes_through_egress_nat(gwlab):
    """A flow tc_conntrack routes leaves through the target interface's egress
    TC programs: masquerade there gives the gateway the router's address, and
    the replies are translated back to the client."""
    lb = gwlab
    routing, via = gateways_a(lb)
    yaml = f"""conntrack:
  enabled: true
nat:
  enabled: true
  snat_rules:
    - {{id: out4, type: masquerade, interface: {lb.r_gif}, match_src: "198.51.100.0/24"}}
    - {{id: out6, type: masquerade, interface: {lb.r_gif}, match_src: "2001:db8:1::/64"}}
{routing}firewall:
  mode: block
  default_policy: pass
  rules:
{via()}"""
    gw = who(lb.gw, "@peer", [(SERVER[4], 7000), (SERVER[6], 7000)])
    srv = who(lb.server, "server", [(SERVER[4], 7000), (SERVER[6], 7000)])
    a = lb.make_agent(yaml).start()
    router_gw = {4: "198.18.0.1", 6: "2001:db8:3::1"}
    try:
        for fam in (4, 6):
            assert wait_until(lambda: ask(lb.client, SERVER[fam], 7000) == router_gw[fam], 8), \
                f"IPv{fam}: {ask(lb.client, SERVER[fam], 7000)} {a.log()[-2000:]}"
    finally:
        srv.stop()
        gw.stop()


def test_reply_to_sends_replies_back_to_the_ingress(gwlab):
    """A host behind `gw` (198.18.9.9 / 2001:db8:9::9) the router has a wrong
    route for (towards the client): without reply_to the server's replies go
    astray; with `reply_to: true` they leave by the interface the flow came in
    on, to the MAC it came from."""
    lb = gwlab
    # Here gw is a client: it must not own the server's addresses.
    sh("ip", "addr", "del", "203.0.113.2/32", "dev", "lo", ns=lb.gw)
    sh("ip", "-6", "addr", "del", "2001:db8:2::2/128", "dev", "lo", ns=lb.gw)
    sh("ip", "addr", "add", "198.18.9.9/32", "dev", "lo", ns=lb.gw)
    sh("ip", "-6", "addr", "add", "2001:db8:9::9/128", "dev", "lo", ns=lb.gw)
    sh("ip", "route", "add", "198.18.9.0/24", "via", CLIENT[4], ns=lb.router)
    sh("ip", "-6", "route", "add", "2001:db8:9::/64", "via", CLIENT[6], ns=lb.router)
    src = {4: "198.18.9.9", 6: "2001:db8:9::9"}
    srv = who(lb.server, "server", [(SERVER[4], 7100), (SERVER[6], 7100), (SERVER[4], 7101),
                                    (SERVER[6], 7101)])
    yaml = f"""conntrack:
  enabled: true
firewall:
  mode: block
  default_policy: pass
  rules:
    - {{id: back, priority: 10, action: allow, protocol: tcp, dst_port: 7100,
        reply_to: true}}
"""
    a = lb.make_agent(yaml).start()
    try:
        for fam in (4, 6):
            assert wait_until(lambda: ask(lb.gw, SERVER[fam], 7100, src[fam]) == "server", 6), \
                f"IPv{fam}: {a.log()[-2000:]}"
            # Control: without the rule the replies follow the (wrong) route.
            assert ask(lb.gw, SERVER[fam], 7101, src[fam]) == "-"
        m = a.metrics()
        assert sum(v for (n, labels), v in m.items()
                   if n == "ebpfsentinel_kernel_reasons_total" and
                   ("reason", "conntrack_reply_to_redirect") in labels) > 0
    finally:
        srv.stop()
