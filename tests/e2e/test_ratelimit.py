# SPDX-License-Identifier: AGPL-3.0-only
"""Rate limiting end to end: policy CRUD over REST and the CLI, and a real
flood from the peer namespace cut to the policy's rate."""
import json
import os
import signal
import socket
import threading
import time

import pytest

from conftest import need
from lab import in_netns, map_dump, metric, sh, wait_until, xdp_prog_name

RL_ON = "ratelimit:\n  enabled: true\n  default_rate: 0\n"


def wait_prog(agent, name="xdp_ratelimit", timeout=15):
    """/readyz turns ready with the chain head; later programs may still be loading."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        progs = agent.get("/api/v1/ebpf/status").json()["programs"]
        if any(p["name"] == name and p["loaded"] for p in progs):
            return agent
        time.sleep(0.1)
    raise AssertionError(f"{name} not loaded\n" + agent.log()[-3000:])


def test_policy_crud_rest(make_agent):
    a = make_agent(RL_ON + "  rules:\n    - { id: cfg-1, src_ip: 203.0.113.0/24, rate: 50,"
                   " burst: 60, algorithm: sliding_window }\n").start()
    wait_prog(a)
    rules = a.get("/api/v1/ratelimit/rules").json()
    assert rules == [{"id": "cfg-1", "scope": "source_ip", "rate": 50, "burst": 60,
                      "action": "drop", "algorithm": "sliding_window",
                      "src_ip": "203.0.113.0/24", "enabled": True}]
    r = a.post("/api/v1/ratelimit/rules",
               json={"id": "api-1", "rate": 10, "burst": 20, "action": "allow",
                     "scope": "global", "algorithm": "leakybucket", "src_ip": "2001:db8::1"})
    assert r.status_code == 201, r.text
    assert r.json() == {"id": "api-1", "scope": "global", "rate": 10, "burst": 20,
                        "action": "pass", "algorithm": "leaky_bucket",
                        "src_ip": "2001:db8::1/128", "enabled": True}
    r = a.post("/api/v1/ratelimit/rules", json={"id": "api-2", "rate": 10, "burst": 20})
    assert r.status_code == 201 and r.json()["src_ip"] is None
    r = a.post("/api/v1/ratelimit/rules", json={"id": "api-1", "rate": 10, "burst": 20})
    assert r.status_code == 409
    assert r.json() == {"error": {"code": "DUPLICATE_RULE", "message": "duplicate rule: api-1"}}
    r = a.post("/api/v1/ratelimit/rules", json={"id": "bad", "rate": 0, "burst": 20})
    assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR"
    assert "rate" in r.json()["error"]["message"]
    r = a.post("/api/v1/ratelimit/rules", json={"id": "bad", "rate": 5, "burst": 5,
                                                "algorithm": "magic"})
    assert r.status_code == 400
    r = a.post("/api/v1/ratelimit/rules", json={"id": "bad", "rate": 5, "burst": 5,
                                                "src_ip": "10.0.0.0/33"})
    assert r.status_code == 400 and "invalid CIDR notation" in r.json()["error"]["message"]
    r = a.post("/api/v1/ratelimit/rules", json={"id": "bad", "rate": 5})
    assert r.status_code == 422 and r.json()["error"]["code"] == "INVALID_BODY"
    r = a.post("/api/v1/ratelimit/rules", json={"id": "bad", "rate": "x", "burst": 1})
    assert r.status_code == 422
    assert [x["id"] for x in a.get("/api/v1/ratelimit/rules").json()] == \
        ["cfg-1", "api-1", "api-2"]
    m = a.metrics()
    assert metric(m, "ebpfsentinel_rules_loaded", component="ratelimit") == 3
    assert a.delete("/api/v1/ratelimit/rules/api-1").status_code == 204
    r = a.delete("/api/v1/ratelimit/rules/api-1")
    assert r.status_code == 404
    assert r.json()["error"] == {"code": "RULE_NOT_FOUND", "message": "rule not found: api-1"}
    progs = {p["name"]: p["loaded"] for p in a.get("/api/v1/ebpf/status").json()["programs"]}
    assert progs["xdp_ratelimit"] is True


def test_policy_crud_cli(make_agent):
    a = make_agent(RL_ON).start()
    wait_prog(a)
    port = str(a.http_port)
    r = a.cli("ratelimit", "--port", port, "add", "--json",
              '{"id":"cli-1","rate":100,"burst":200,"src_ip":"198.51.100.0/24"}')
    assert r.returncode == 0, r.stderr
    r = a.cli("-o", "json", "ratelimit", "--port", port, "list")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["id"] == "cli-1"
    r = a.cli("ratelimit", "--port", port, "list")
    assert "CLI-1" not in r.stdout and "cli-1" in r.stdout and "ALGORITHM" in r.stdout
    r = a.cli("ratelimit", "--port", port, "add", "--json", "{nope")
    assert r.returncode == 1 and r.stderr.startswith("Error: invalid JSON:")
    r = a.cli("ratelimit", "--port", port, "delete", "cli-1")
    assert r.returncode == 0 and r.stdout.strip() == "Rate limit rule deleted: cli-1"
    r = a.cli("ratelimit", "--port", port, "delete", "cli-1")
    assert r.returncode == 1
    assert r.stderr.strip() == "Error: rule not found: cli-1 (RULE_NOT_FOUND): 404 Not Found"


def udp_counter(ns, addr, port):
    """A UDP sink in ns counting datagrams with first/last arrival times."""
    st = {"n": 0, "first": None, "last": None, "stop": False}
    with in_netns(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((addr, port))
    s.settimeout(0.2)

    def loop():
        while not st["stop"]:
            try:
                s.recv(2048)
            except socket.timeout:
                continue
            now = time.monotonic()
            st["n"] += 1
            st["first"] = st["first"] or now
            st["last"] = now
        s.close()
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return st, t


# Burst 1 below one tick's worth of tokens (4 at 1 000/s and HZ=250): the
# limiter's coarse clock must not make the bucket spill what each tick brings.
@pytest.mark.parametrize("burst", [50, 1])
def test_flood_is_cut_to_the_policy_rate(lab, make_agent, burst):
    need("hping3")
    a = make_agent("firewall:\n  enabled: false\n" + RL_ON +
                   "  rules:\n    - { id: peer, src_ip: 198.51.100.2/32, rate: 1000,"
                   f" burst: {burst} }}\n").start()
    wait_prog(a)
    assert xdp_prog_name(lab.agent_ns, lab.agent_if) == "xdp_ratelimit"
    st, t = udp_counter(lab.agent_ns, "198.51.100.1", 9999)
    before = a.metrics()
    t0 = time.monotonic()
    # ~5000 pps offered for ~3 s, from one CPU (per-CPU buckets: one flow, one CPU).
    sh("taskset", "-c", "0", "hping3", "--udp", "-p", "9999", "-i", "u200", "-c", "15000",
       "-d", "32", "198.51.100.1", ns=lab.peer_ns, check=False, timeout=60)
    elapsed = time.monotonic() - t0
    time.sleep(0.5)
    st["stop"] = True
    t.join(2)
    after = a.metrics()
    rl = dict(interface="RATELIMIT_METRICS")
    seen = (metric(after, "ebpfsentinel_packets_total", action="total_seen", **rl)
            - metric(before, "ebpfsentinel_packets_total", action="total_seen", **rl))
    dropped = (metric(after, "ebpfsentinel_packets_total", action="dropped", **rl)
               - metric(before, "ebpfsentinel_packets_total", action="dropped", **rl))
    offered = seen / elapsed
    assert offered > 2000, f"the generator only offered {offered:.0f} pps"
    assert dropped > 0
    window = st["last"] - st["first"]
    rate = (st["n"] - burst) / window
    assert 800 <= rate <= 1200, \
        f"delivered {st['n']} in {window:.2f}s = {rate:.0f} pps (offered {offered:.0f} pps)"
    m = a.metrics()
    assert metric(m, "ebpfsentinel_packets_total", interface="ratelimit", action="drop") > 0


def test_monitor_policy_never_drops(lab, make_agent):
    a = make_agent(RL_ON + "  rules:\n    - { id: mon, rate: 2, burst: 2, action: pass }\n").start()
    wait_prog(a)
    r = sh("ping", "-c", "10", "-i", "0.05", "-W", "1", "198.51.100.1", ns=lab.peer_ns,
           check=False)
    assert " 0% packet loss" in r.stdout, r.stdout
    m = a.metrics()
    assert metric(m, "ebpfsentinel_kernel_reasons_total", program="xdp_ratelimit",
                  reason="ratelimit_over_limit_monitor") >= 5


def test_firewall_chain_reaches_ratelimit(lab, make_agent):
    """With the firewall on, xdp_ratelimit sits in tail-call slot 0 behind it."""
    a = make_agent("firewall:\n  enabled: true\n" + RL_ON +
                   "  rules:\n    - { id: tight, rate: 1, burst: 3 }\n").start()
    wait_prog(a)
    assert xdp_prog_name(lab.agent_ns, lab.agent_if) == "xdp_firewall"
    assert pings(lab.peer_ns) in (3, 4)


def slot0(agent):
    """Name of the program in tail-call slot 0 of the agent's pinned chain, or None."""
    for e in map_dump(f"{agent.pin_dir}/xdp_prog_array"):
        if e["key"] == 0:
            p = json.loads(sh("bpftool", "-j", "prog", "show", "id", str(e["value"])).stdout)
            return p.get("name")
    return None


def pings(ns, n=8):
    # One CPU: the buckets are per CPU.
    r = sh("taskset", "-c", "0", "ping", "-c", str(n), "-i", "0.05", "-W", "1", "198.51.100.1", ns=ns, check=False)
    return int(r.stdout.split(" received")[0].rsplit(" ", 1)[-1])


def test_chain_follows_reloads(lab, make_agent):
    """Head and slot 0 as the firewall and rate limiting come and go by reload."""
    rl = RL_ON + "  rules:\n    - { id: tight, rate: 1, burst: 3 }\n"
    a = make_agent("firewall:\n  enabled: false\n" + rl).start()
    wait_prog(a)
    assert xdp_prog_name(lab.agent_ns, lab.agent_if) == "xdp_ratelimit"
    assert pings(lab.peer_ns) in (3, 4)
    # Firewall on: it becomes the head and tail-calls xdp_ratelimit in slot 0.
    a.write_config("firewall:\n  enabled: true\n" + rl)
    a.send(signal.SIGHUP)
    assert wait_until(lambda: xdp_prog_name(lab.agent_ns, lab.agent_if) == "xdp_firewall", 10)
    assert slot0(a) == "xdp_ratelimit"
    time.sleep(3)  # three tokens again
    assert pings(lab.peer_ns) in (3, 4), "the limit still applies behind the firewall"
    fw_seen = metric(a.metrics(), "ebpfsentinel_kernel_reasons_total", program="xdp_firewall",
                     reason="firewall_default_pass")
    assert fw_seen >= 8
    # Rate limiting off: slot 0 emptied, the firewall alone passes everything.
    a.write_config("firewall:\n  enabled: true\nratelimit:\n  enabled: false\n")
    a.send(signal.SIGHUP)
    assert wait_until(lambda: slot0(a) is None, 10)
    progs = {p["name"]: p["loaded"] for p in a.get("/api/v1/ebpf/status").json()["programs"]}
    assert progs["xdp_ratelimit"] is False and progs["xdp_firewall"] is True
    assert pings(lab.peer_ns) == 8
    assert xdp_prog_name(lab.agent_ns, lab.agent_if) == "xdp_firewall"


def test_disabled_ratelimit_keeps_only_the_ddos_checks(lab, make_agent):
    """network.md §6.4 item 6: ratelimit disabled + ddos enabled: the program
    stays (it carries the DDoS checks) but no generic policy limits anything."""
    a = make_agent("firewall:\n  enabled: false\n"
                   "ratelimit:\n  enabled: false\n  default_rate: 1\n  default_burst: 1\n"
                   "  rules:\n    - { id: tight, rate: 1, burst: 1 }\n"
                   "ddos:\n  enabled: true\n"
                   "  icmp_protection: { enabled: true, max_pps: 1000, max_payload_size: 64 }\n"
                   ).start()
    wait_prog(a)
    assert pings(lab.peer_ns) == 8, "a disabled ratelimit's policies limit nothing"
    # The DDoS checks are live: an oversized echo request is dropped.
    r = sh("ping", "-c", "2", "-i", "0.2", "-W", "1", "-s", "200", "198.51.100.1",
           ns=lab.peer_ns, check=False)
    assert " 0 received" in r.stdout, r.stdout
    # Enabled by reload: the same policy now limits (a burst of one).
    a.write_config("firewall:\n  enabled: false\n"
                   "ratelimit:\n  enabled: true\n  default_rate: 0\n"
                   "  rules:\n    - { id: tight, rate: 1, burst: 1 }\n"
                   "ddos:\n  enabled: true\n"
                   "  icmp_protection: { enabled: true, max_pps: 1000, max_payload_size: 64 }\n")
    a.send(signal.SIGHUP)
    assert wait_until(lambda: pings(lab.peer_ns, 4) <= 2, 10), "the policy applies once enabled"


def test_pins_of_an_older_build_are_replaced(lab, make_agent):
    """An agent that crashed leaves its pins. A newer build whose maps differ
    (rl_globals grew from 32 to 56 bytes when the default policy moved in) must
    replace them, not fail to load, and its default policy must then apply."""
    a = make_agent("firewall:\n  enabled: false\n"
                   "ratelimit:\n  enabled: true\n  default_rate: 1\n  default_burst: 3\n")
    os.makedirs(a.pin_dir)
    old = f"{a.pin_dir}/rl_globals"
    sh("bpftool", "map", "create", old, "type", "array", "key", "4", "value", "32",
       "entries", "1", "name", "rl_globals")
    gone = f"{a.pin_dir}/rl_default"  # a map this build no longer has
    sh("bpftool", "map", "create", gone, "type", "array", "key", "4", "value", "32",
       "entries", "1", "name", "rl_default")
    a.start()
    wait_prog(a)
    assert a.wait_log("replacing an incompatible pinned map")
    warned = [l for l in a.log_lines() if l["message"] == "replacing an incompatible pinned map"]
    assert [l["path"] for l in warned] == [old]
    info = json.loads(sh("bpftool", "-j", "map", "show", "pinned", old).stdout)
    assert info["bytes_value"] == 56
    assert pings(lab.peer_ns) in (3, 4), "the default policy applies from the new rl_globals"
    rc, _ = a.stop()
    assert rc == 0
    assert not os.path.exists(a.pin_dir), "a clean stop removes every pin, the stale one too"
