# SPDX-License-Identifier: AGPL-3.0-only
"""The foundation end to end: a namespace lab, the real agent on its veth,
real packets and real clients."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import need
from lab import AGENT, Agent, metric, sh, xdp_prog_name


def test_health_ready_and_xdp_attached(lab, agent):
    r = agent.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = agent.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "ebpf_loaded": True}
    assert xdp_prog_name(lab.agent_ns, lab.agent_if) == "xdp_firewall"
    # What an operator sees with bpftool in that namespace.
    out = sh("bpftool", "net", "show", ns=lab.agent_ns).stdout
    assert lab.agent_if in out and "xdp" in out
    progs = agent.get("/api/v1/ebpf/status").json()["programs"]
    names = [p["name"] for p in progs]
    assert names == sorted(names) and len(names) == 11
    assert {p["name"]: p["loaded"] for p in progs}["xdp_firewall"] is True
    # ids and ips are enabled by default: tc_ids runs beside the firewall.
    assert {p["name"]: p["loaded"] for p in progs}["tc_ids"] is True


def test_ping_raises_kernel_counters(lab, agent):
    before = agent.metrics()
    sh("ping", "-c", "5", "-i", "0.2", "-W", "1", "198.51.100.1", ns=lab.peer_ns)
    sh("ping", "-6", "-c", "3", "-i", "0.2", "-W", "1", "2001:db8:1::1", ns=lab.peer_ns)
    after = agent.metrics()
    fw = dict(interface="FIREWALL_METRICS")
    seen = (metric(after, "ebpfsentinel_packets_total", action="total_seen", **fw)
            - metric(before, "ebpfsentinel_packets_total", action="total_seen", **fw))
    passed = (metric(after, "ebpfsentinel_packets_total", action="passed", **fw)
              - metric(before, "ebpfsentinel_packets_total", action="passed", **fw))
    assert seen >= 8, f"only {seen} packets counted"
    assert passed == seen
    assert metric(after, "ebpfsentinel_packets_total", action="errors", **fw) == 0
    reasons_pass = metric(after, "ebpfsentinel_kernel_reasons_total", program="xdp_firewall",
                          reason="firewall_default_pass")
    assert reasons_pass >= 8
    assert metric(after, "ebpfsentinel_ebpf_program_status", program="xdp_firewall") == 1


def test_metrics_formats(agent, tmp_path):
    r = agent.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE ebpfsentinel_packets_total counter" in r.text
    assert "ebpfsentinel_memory_usage_bytes " in r.text
    need("promtool")
    f = tmp_path / "metrics.txt"
    f.write_text(r.text)
    chk = subprocess.run(["promtool", "check", "metrics"], stdin=open(f), capture_output=True,
                         text=True)
    assert chk.returncode == 0, chk.stdout + chk.stderr

    r = agent.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.headers["Content-Type"] == \
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert "# TYPE ebpfsentinel_packets counter" in r.text
    assert r.text.endswith("# EOF\n")


def test_agent_status_and_config(agent):
    st = agent.get("/api/v1/agent/status").json()
    assert st["version"] == open(os.path.join(os.path.dirname(AGENT), "..", "VERSION")).read().strip()
    assert st["ebpf_loaded"] is True and st["firewall_enabled"] is True
    assert st["firewall_mode"] == "alert"
    assert isinstance(st["uptime_seconds"], int) and isinstance(st["rule_count"], int)
    inactive = {d["name"]: d["active"] for d in st["domains"]}
    assert inactive["firewall"] is True and inactive["ids"] is True
    cfg = agent.get("/api/v1/config").json()
    assert cfg["agent"]["http_port"] == agent.http_port
    assert cfg["agent"]["grpc_port"] == agent.grpc_port
    assert cfg["firewall"]["mode"] == "alert"


def test_error_model_over_http(agent):
    r = agent.get("/api/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    r = agent.request("PUT", "/api/v1/agent/status")
    assert r.status_code == 405 and r.headers["Allow"] == "GET"
    assert r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    r = agent.post("/api/v1/config/reload", data=b"x" * (64 * 1024 + 10),
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_invalid_config_exits_1_with_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent:\n  interfaces: []\n")
    r = subprocess.run([AGENT, "--config", str(bad)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert r.stderr == ("Error: validation error: agent.interfaces: at least one interface is "
                        "required at line 2 column 3\n")
    assert r.stdout == ""  # nothing is logged before the configuration loads
    r = subprocess.run([AGENT, "--config", str(tmp_path / "missing.yaml")], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 1
    assert r.stderr.startswith("Error: I/O error reading config: No such file or directory")
    r = subprocess.run([AGENT, "--bogus"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2


def test_sighup_with_broken_file_keeps_old_config(agent):
    good = open(agent.config_path).read()
    with open(agent.config_path, "w") as f:
        f.write(good + "firewall:\n  mode: sideways\n")
    agent.send(signal.SIGHUP)
    assert agent.wait_log("config reload rejected: invalid value 'sideways'"), agent.log()[-2000:]
    assert agent.proc.poll() is None
    assert agent.get("/readyz").status_code == 200
    assert agent.get("/api/v1/config").json()["firewall"]["mode"] == "alert"
    m = agent.metrics()
    assert metric(m, "ebpfsentinel_rules_reloads_total", component="config",
                  result="failure") >= 1
    # A good edit is applied.
    with open(agent.config_path, "w") as f:
        f.write(good + "firewall:\n  mode: block\n")
    agent.send(signal.SIGHUP)
    deadline = time.time() + 5
    while time.time() < deadline and \
            agent.get("/api/v1/agent/status").json()["firewall_mode"] != "block":
        time.sleep(0.1)
    assert agent.get("/api/v1/agent/status").json()["firewall_mode"] == "block"


def test_rest_reload_and_file_watcher(agent):
    r = agent.post("/api/v1/config/reload")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "message": "configuration reload triggered"}
    assert agent.wait_log('"trigger":"api"')
    # An atomic-rename save is seen by the watcher.
    agent.write_config(extra_yaml="firewall:\n  mode: block\n", atomic=True)
    assert agent.wait_log('"trigger":"file_watcher"', timeout=5), agent.log()[-2000:]
    deadline = time.time() + 3
    while time.time() < deadline and \
            agent.get("/api/v1/config").json()["firewall"]["mode"] != "block":
        time.sleep(0.1)
    assert agent.get("/api/v1/config").json()["firewall"]["mode"] == "block"


def test_sigterm_detaches_and_removes_pins(lab, agent):
    assert os.path.isdir(agent.pin_dir)
    rc, took = agent.stop(signal.SIGTERM)
    assert rc == 0
    assert took < 2.0, f"shutdown took {took:.2f}s"
    assert xdp_prog_name(lab.agent_ns, lab.agent_if) is None
    assert not os.path.exists(agent.pin_dir)
    tc = sh("tc", "filter", "show", "dev", lab.agent_if, "ingress", ns=lab.agent_ns).stdout
    assert tc.strip() == ""
    lines = agent.log_lines()
    assert lines[0]["message"] == "eBPFsentinel agent starting"
    assert lines[-1]["message"] == "agent stopped"


def test_stale_attachment_of_a_killed_agent_is_replaced(lab, make_agent):
    first = make_agent().start()
    first.proc.kill()
    first.proc.wait()
    # Attached through netlink: the program outlives the agent.
    assert xdp_prog_name(lab.agent_ns, lab.agent_if) == "xdp_firewall"
    old_id = json.loads(sh("ip", "-j", "-d", "link", "show", lab.agent_if,
                           ns=lab.agent_ns).stdout)[0]["xdp"]["prog"]["id"]
    second = make_agent()
    second.pin_dir = first.pin_dir  # same pins, as a restarted agent would use
    second.write_config()
    second.start()
    assert second.wait_log("replaced a stale XDP program")
    new_id = json.loads(sh("ip", "-j", "-d", "link", "show", lab.agent_if,
                           ns=lab.agent_ns).stdout)[0]["xdp"]["prog"]["id"]
    assert new_id != old_id
    sh("ping", "-c", "2", "-i", "0.2", "198.51.100.1", ns=lab.peer_ns)
    rc, _ = second.stop()
    assert rc == 0
    assert xdp_prog_name(lab.agent_ns, lab.agent_if) is None


def test_foreign_xdp_program_is_left_alone(lab, make_agent):
    # A program that is not ours: the agent must not replace it and stays unready.
    sh("ip", "link", "set", "dev", lab.agent_if, "xdpgeneric", "obj",
       os.path.join(os.path.dirname(__file__), "..", "..", "build", "bpf", "parse_probe.bpf.o"),
       "sec", "xdp", ns=lab.agent_ns, check=False)
    before = xdp_prog_name(lab.agent_ns, lab.agent_if)
    if before is None:
        pytest.skip("could not attach a foreign test program with ip link")
    a = make_agent().start(wait_ready=False)
    assert a.wait_log("foreign XDP program")
    assert a.get("/readyz").status_code == 503
    assert xdp_prog_name(lab.agent_ns, lab.agent_if) == before
    a.stop()
    assert xdp_prog_name(lab.agent_ns, lab.agent_if) == before
    sh("ip", "link", "set", "dev", lab.agent_if, "xdpgeneric", "off", ns=lab.agent_ns)


def test_cli_status_table_and_json(agent):
    r = agent.cli("status", "--port", str(agent.http_port))
    assert r.returncode == 0, r.stderr
    assert "firewall_mode" in r.stdout and "ebpf_loaded" in r.stdout
    r = agent.cli("-o", "json", "status", "--port", str(agent.http_port))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ebpf_loaded"] is True and doc["firewall_mode"] == "alert"
    assert r.stdout.startswith("{\n  \"")  # pretty, 2-space indent
    r = agent.cli("health", "--port", str(agent.http_port), "-o", "json")
    assert json.loads(r.stdout) == {"health": {"status": "ok"},
                                    "ready": {"status": "ready", "ebpf_loaded": True}}
    r = agent.cli("metrics", env={"EBPFSENTINEL_PORT": str(agent.http_port)})
    assert r.returncode == 0 and "ebpfsentinel_packets_total" in r.stdout
    r = agent.cli("status", "--port", "1")
    assert r.returncode == 1
    assert "cannot connect to agent at http://127.0.0.1:1" in r.stderr


def test_log_level_precedence(make_agent):
    a = make_agent(agent_yaml="  log_level: warn\n")
    a.start(args=("--log-level", "info"))
    assert any(l.get("message") == "agent ready, waiting for shutdown signal"
               for l in a.log_lines())
    a.stop()
    b = make_agent(agent_yaml="  log_level: info\n", env={"RUST_LOG": "error"})
    b.start(args=("--log-level", "debug"))
    b.stop()
    levels = {l["level"] for l in b.log_lines()}
    assert levels <= {"ERROR"}, levels
    c = make_agent(log_format="json")
    c.start(args=("--log-format", "text"))
    c.stop()
    assert "INFO" in c.log() and not c.log().lstrip().startswith("{")
