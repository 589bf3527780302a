# SPDX-License-Identifier: AGPL-3.0-only
"""Scrub end to end (network.md §5): the agent routes between a client that
sends with a tiny TTL / hop limit and a server that captures what arrives.
With offloads off on the hosts, a connection that completes proves the
rewritten checksums."""
import re
import signal
import subprocess
import time

from conftest import need
from lab import metric, sh, wait_until
from peers import tcp_client, tcp_server

SERVER4, SERVER6 = "203.0.113.2", "2001:db8:2::2"
SCRUB = ("firewall:\n  scrub: { enabled: true, min_ttl: 64, min_hop_limit: 32, max_mss: 1400,"
         " clear_df: true, random_ip_id: true }\n")


def capture(ns, ifname, bpf_filter, count=1):
    """Start tcpdump; returns a function giving its decoded lines once done."""
    p = subprocess.Popen(["nsenter", f"--net=/run/netns/{ns}", "tcpdump", "-l", "-nn", "-v",
                          "-i", ifname, "-c", str(count), bpf_filter],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # tcpdump says "listening on" once its socket is open.
    deadline = time.time() + 5
    while time.time() < deadline and "listening" not in (p.stderr.readline() or ""):
        pass

    def result(timeout=5):
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        return out
    return result


def syn_seen(router, port, v6=False):
    """Connect client → server:port and return the server's view of the SYN."""
    server = SERVER6 if v6 else SERVER4
    got = capture(router.server, router.sif,
                  f"{'ip6' if v6 else 'ip'} and tcp dst port {port} and tcp[tcpflags] & tcp-syn != 0"
                  if not v6 else f"ip6 and tcp dst port {port}")
    srv = tcp_server(router.server, server, port)
    time.sleep(0.3)
    cli = tcp_client(router.client, server, port, 10)
    try:
        out = got()
        assert wait_until(lambda: cli.p.poll() is None, timeout=1), "the connection failed"
    finally:
        cli.p.stdin.close()
        cli.stop()
        srv.stop()
    return out


def test_scrub_rewrites_what_reaches_the_server(router, make_router_agent):
    need("tcpdump")
    sh("sysctl", "-qw", "net.ipv4.ip_default_ttl=5", ns=router.client)
    sh("sysctl", "-qw", "net.ipv6.conf.all.hop_limit=3", ns=router.client)
    sh("sysctl", "-qw", f"net.ipv6.conf.{router.cif}.hop_limit=3", ns=router.client)
    a = make_router_agent(SCRUB).start()
    assert wait_until(lambda: {p["name"]: p["loaded"] for p in
                               a.get("/api/v1/ebpf/status").json()["programs"]}
                      .get("tc_scrub")), a.log()[-2000:]
    sent = capture(router.client, router.cif, "ip and tcp dst port 9100")
    out = syn_seen(router, 9100)
    orig_id = re.search(r"id (\d+)", sent()).group(1)
    # TTL 5 raised to 64 at the router's ingress, then forwarded (63); DF gone;
    # a new IP ID; the SYN's MSS 1460 clamped to 1400.
    assert "ttl 63" in out, out
    assert "[DF]" not in out, out
    assert "mss 1400" in out, out
    assert f"id {orig_id}," not in out, (orig_id, out)
    out6 = syn_seen(router, 9101, v6=True)
    assert "hlim 31" in out6, out6
    assert "mss 1400" in out6, out6
    m = a.metrics()
    sc = dict(interface="SCRUB_METRICS")
    for action in ("ttl_fixed", "mss_clamped", "df_cleared", "ipid_randomized", "hop_fixed"):
        assert metric(m, "ebpfsentinel_packets_total", action=action, **sc) >= 1, action
    assert metric(m, "ebpfsentinel_packets_total", action="errors", **sc) == 0

    # Disabled by a reload: packets pass unchanged.
    a.write_config("firewall:\n  scrub: { enabled: false, min_ttl: 64 }\n")
    a.send(signal.SIGHUP)
    assert wait_until(lambda: {p["name"]: p["loaded"] for p in
                               a.get("/api/v1/ebpf/status").json()["programs"]}
                      .get("tc_scrub") is False)
    out = syn_seen(router, 9102)
    assert "ttl 4" in out and "mss 1460" in out and "[DF]" in out, out
