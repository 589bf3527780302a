# SPDX-License-Identifier: AGPL-3.0-only
"""Hot reload end to end (interfaces.md §10): the three triggers (file watcher
on the parent directory with atomic renames and ConfigMap-style symlink
swaps, debounced; SIGHUP, also early; the REST queue), whole-file validation,
rollback when a later domain fails, and features switched on and off with
their programs attached and detached without a restart."""
import os
import signal
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from lab import metric, tc_filters, xdp_prog_name
from test_auth import Jwks


def status(a):
    return a.get("/api/v1/agent/status").json()


def wait_until(fn, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn():
            return True
        time.sleep(0.05)
    return fn()


def reloads(a, trigger):
    return sum(1 for l in a.log_lines()
               if l.get("message") == "configuration reload" and l.get("trigger") == trigger)


def test_atomic_rename_reloads_within_2s_and_a_broken_edit_is_rejected(lab, agent):
    t0 = time.monotonic()
    agent.write_config(extra_yaml="firewall:\n  mode: block\n", atomic=True)
    assert wait_until(lambda: status(agent)["firewall_mode"] == "block", timeout=2.0)
    assert time.monotonic() - t0 < 2.0
    assert reloads(agent, "file_watcher") == 1
    # A broken edit: rejected as a whole, the running configuration stays.
    before = metric(agent.metrics(), "ebpfsentinel_rules_reloads_total", component="config",
                    result="failure")
    agent.write_config(extra_yaml="firewall:\n  mode: alert\n  default_policy: maybe\n")
    assert agent.wait_log("config reload rejected: invalid value 'maybe'", timeout=2.0)
    assert status(agent)["firewall_mode"] == "block"
    assert agent.get("/api/v1/config").json()["firewall"]["mode"] == "block"
    assert metric(agent.metrics(), "ebpfsentinel_rules_reloads_total", component="config",
                  result="failure") == before + 1
    assert xdp_prog_name(lab.agent_ns, lab.agent_if) == "xdp_firewall"


def test_watcher_debounces_a_burst_into_one_reload(agent):
    for mode in ("block", "alert", "block"):
        agent.write_config(extra_yaml=f"firewall:\n  mode: {mode}\n", atomic=False)
    assert wait_until(lambda: reloads(agent, "file_watcher") >= 1, timeout=3.0)
    time.sleep(1.0)
    assert reloads(agent, "file_watcher") == 1
    assert status(agent)["firewall_mode"] == "block"


def test_configmap_symlink_swap_is_seen(make_agent, tmp_path):
    """Kubernetes mounts: config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>."""
    a = make_agent()
    d = tmp_path / "cm"
    d.mkdir()
    v1, v2 = d / "..v1", d / "..v2"
    v1.mkdir()
    v2.mkdir()
    text = open(a.config_path).read()
    (v1 / "config.yaml").write_text(text)
    (v2 / "config.yaml").write_text(text + "firewall:\n  mode: block\n")
    os.symlink("..v1", d / "..data")
    os.symlink("..data/config.yaml", d / "config.yaml")
    a.config_path = str(d / "config.yaml")
    a.start()
    assert status(a)["firewall_mode"] == "alert"
    os.symlink("..v2", d / "..data_tmp")
    os.rename(d / "..data_tmp", d / "..data")  # the atomic swap kubelet does
    assert wait_until(lambda: status(a)["firewall_mode"] == "block", timeout=2.0)


def test_early_sighup_is_not_fatal_and_signals_coalesce(make_agent):
    a = make_agent()
    a.start(wait_ready=False)
    a.send(signal.SIGHUP)  # may land before the main loop runs: queued, never fatal
    a.wait_ready()
    for _ in range(5):
        a.send(signal.SIGHUP)
    assert wait_until(lambda: reloads(a, "SIGHUP") >= 2)
    time.sleep(0.5)
    assert a.proc.poll() is None
    assert 2 <= reloads(a, "SIGHUP") <= 6


def test_rest_reload_is_queued_once(make_agent, lab):
    """A reload blocked on a slow JWKS fetch: the next REST request queues, the one
    after it finds the queue full (500, not the standard error shape)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    srv = Jwks(lab.agent_ns, {"k1": key})
    try:
        a = make_agent(extra_yaml=f"auth:\n  enabled: true\n  oidc:\n    jwks_url: {srv.url}\n"
                       "  api_keys:\n    - {name: ops, key: k-0123456789, role: operator}\n")
        a.start()
        hdr = {"X-API-Key": "k-0123456789"}
        orig = srv.srv.RequestHandlerClass.do_GET

        def slow(self):
            time.sleep(2.0)
            orig(self)

        srv.srv.RequestHandlerClass.do_GET = slow
        a.send(signal.SIGHUP)
        assert wait_until(lambda: reloads(a, "SIGHUP") == 1)
        r = a.post("/api/v1/config/reload", headers=hdr)
        assert r.status_code == 200
        assert r.json() == {"status": "ok", "message": "configuration reload triggered"}
        r = a.post("/api/v1/config/reload", headers=hdr)
        assert r.status_code == 500
        assert r.json() == {"status": "error",
                            "message": "reload already in progress or channel unavailable"}
        srv.srv.RequestHandlerClass.do_GET = orig
        assert wait_until(lambda: reloads(a, "api") == 1, timeout=6.0)
        assert a.post("/api/v1/config/reload", headers=hdr).status_code == 200
    finally:
        srv.close()


def test_a_failing_domain_rolls_back_the_ones_applied_before_it(make_agent, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kp = tmp_path / "jwt.pem"
    kp.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    auth = (f"auth:\n  enabled: true\n  jwt:\n    public_key_path: {kp}\n"
            "  api_keys:\n    - {name: ops, key: k-0123456789, role: operator}\n")
    a = make_agent(extra_yaml=auth).start()
    hdr = {"X-API-Key": "k-0123456789"}
    # firewall applies first (mode=block), then auth fails on the unreadable key.
    kp.write_text("broken\n")
    a.write_config(extra_yaml=auth + "firewall:\n  mode: block\n")
    assert a.wait_log("config reload rejected: auth: apply failed", timeout=3.0)
    assert a.get("/api/v1/agent/status", headers=hdr).json()["firewall_mode"] == "alert"
    assert a.get("/api/v1/config", headers=hdr).json()["firewall"]["mode"] == "alert"
    lines = [l.get("message") for l in a.log_lines()]
    assert "domain reload failed; rolling back" in lines
    m = a.metrics()
    assert metric(m, "ebpfsentinel_rules_reloads_total", component="auth",
                  result="failure") == 1
    assert metric(m, "ebpfsentinel_rules_reloads_total", component="config",
                  result="failure") == 1


# tc_ids also serves IPS and L7: all three off to have it detached.
OFF = ("firewall:\n  enabled: false\n  scrub:\n    enabled: false\nids:\n  enabled: false\n"
       "ips:\n  enabled: false\n"
       "l7:\n  enabled: false\nconntrack:\n  enabled: false\nnat:\n  enabled: false\n")
ON = ("firewall:\n  enabled: true\n  scrub:\n    enabled: true\nids:\n  enabled: true\n"
      "conntrack:\n  enabled: true\n"
      "nat:\n  enabled: true\n")


def attached(lab):
    """Our programs attached on the agent's interface: XDP head and TC filters."""
    names = {n for _, n in tc_filters(lab.agent_ns, lab.agent_if, "ingress")}
    names |= {n for _, n in tc_filters(lab.agent_ns, lab.agent_if, "egress")}
    xdp = xdp_prog_name(lab.agent_ns, lab.agent_if)
    if xdp:
        names.add(xdp)
    return {n for n in names if n.startswith(("xdp_", "tc_"))}


def loaded(a):
    return {p["name"] for p in a.get("/api/v1/ebpf/status").json()["programs"] if p["loaded"]}


def test_enabling_features_attaches_their_programs_and_disabling_detaches(lab, make_agent):
    """The domain contract (docs/DEVELOPING.md): every domain with kernel programs
    loads and attaches them when a reload enables it, and detaches them when a
    reload disables it, without a restart."""
    a = make_agent(extra_yaml=OFF)
    a.start(wait_ready=False)
    assert wait_until(a.started)
    assert attached(lab) == set()
    assert loaded(a) == set()
    a.write_config(extra_yaml=ON)
    want = {"xdp_firewall", "tc_ids", "tc_conntrack", "tc_nat_ingress", "tc_nat_egress",
            "tc_scrub"}
    assert wait_until(lambda: want <= attached(lab), timeout=5.0), attached(lab)
    assert any(n.startswith("tc_conntrack_eg") for n in attached(lab)), attached(lab)
    assert want <= loaded(a)
    assert a.get("/readyz").status_code == 200
    m = a.metrics()
    for p in want:
        assert metric(m, "ebpfsentinel_ebpf_program_status", program=p) == 1, p
    # And off again, without a restart.
    a.write_config(extra_yaml=OFF)
    assert wait_until(lambda: attached(lab) == set(), timeout=5.0), attached(lab)
    assert loaded(a) == set()
    m = a.metrics()
    for p in want:
        assert metric(m, "ebpfsentinel_ebpf_program_status", program=p) == 0, p
    assert a.proc.poll() is None
