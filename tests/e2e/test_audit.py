# SPDX-License-Identifier: AGPL-3.0-only
"""The audit trail end to end: SQLite stores under audit.storage_path, reloads
recorded per domain, the query endpoints and their errors, the log mirror and
the CLI."""
import json
import os
import signal
import stat
import time

from lab import metric


def audit_yaml(path, **kw):
    extra = "".join(f"  {k}: {v}\n" for k, v in kw.items())
    return f"audit:\n  enabled: true\n  storage_path: {path}\n{extra}"


def wait_for(fn, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return fn()


def test_reload_is_recorded_per_domain(make_agent, tmp_path):
    store = tmp_path / "data"
    store.mkdir()
    a = make_agent(extra_yaml=audit_yaml(store / "audit.redb")).start()
    assert stat.S_IMODE(os.stat(store / "audit.db").st_mode) == 0o600
    assert (store / "rule_changes.db").exists()
    a.write_config(extra_yaml=audit_yaml(store / "audit.redb")
                   + "firewall:\n  mode: block\n  rules: []\n")
    a.send(signal.SIGHUP)

    def entries():
        r = a.get("/api/v1/audit/logs", params={"component": "config",
                                                "action": "config_changed"})
        assert r.status_code == 200, r.text
        return [e for e in r.json()["entries"] if e["rule_id"] == "firewall-config"]

    got = wait_for(entries)
    assert got, a.log()[-2000:]
    e = got[0]
    assert e["detail"] == "firewall reloaded: 0 rules, mode=block"
    assert e["component"] == "config" and e["action"] == "config_changed"
    assert set(e) >= {"timestamp_ns", "src_ip", "dst_ip", "src_port", "dst_port", "protocol"}
    assert "sub" not in e  # auth is off: nobody to name

    h = a.get("/api/v1/audit/rules/firewall-config/history").json()
    assert h["rule_id"] == "firewall-config"
    v = h["entries"][0]
    assert v["version"] == 1 and v["actor"] == "config_reload"
    assert v["action"] == "rule_updated" and v["component"] == "firewall"
    assert json.loads(v["after"]) == {"rule_count": 0, "mode": "block", "enabled": True}
    assert json.loads(v["before"])["mode"] == "alert"

    # A second reload is version 2, newest first.
    a.send(signal.SIGHUP)
    assert wait_for(lambda: len(a.get("/api/v1/audit/rules/firewall-config/history")
                                .json()["entries"]) == 2)
    h = a.get("/api/v1/audit/rules/firewall-config/history").json()["entries"]
    assert [x["version"] for x in h] == [2, 1]

    # Every entry is mirrored to the log with event_type="audit".
    mirrored = [l for l in a.log_lines() if l.get("event_type") == "audit"]
    assert any(l["message"] == "firewall reloaded: 0 rules, mode=block"
               and l["component"] == "config" and l["action"] == "config_changed"
               for l in mirrored), mirrored
    m = a.metrics()
    assert metric(m, "ebpfsentinel_rules_reloads_total", component="firewall",
                  result="success") == 2


def test_query_parameters_and_errors(make_agent, tmp_path):
    a = make_agent(extra_yaml=audit_yaml(tmp_path / "audit.redb")).start()
    a.post("/api/v1/config/reload")
    assert wait_for(lambda: a.get("/api/v1/audit/logs").json()["total"] >= 1)
    r = a.get("/api/v1/audit/logs", params={"component": "bogus"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_QUERY"
    r = a.get("/api/v1/audit/logs", params={"action": "nope"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_QUERY"
    r = a.get("/api/v1/audit/logs", params={"limit": "abc"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_QUERY"
    r = a.get("/api/v1/audit/logs", params={"limit": 5000, "component": "CONFIG"})
    assert r.status_code == 200
    doc = r.json()
    assert doc["limit"] == 1000 and doc["offset"] == 0 and doc["total"] >= 1
    assert all(e["component"] == "config" for e in doc["entries"])
    r = a.get("/api/v1/audit/logs", params={"from": 1, "to": 2})
    assert r.json()["entries"] == [] and r.json()["total"] >= 1  # total ignores filters
    r = a.get("/api/v1/audit/rules/never-seen/history")
    assert r.status_code == 200 and r.json() == {"rule_id": "never-seen", "entries": []}
    r = a.get("/api/v1/audit/rules/%2A.odd/history", params={"limit": 600})
    assert r.status_code == 200 and r.json()["rule_id"] == "*.odd"


def test_missing_directory_degrades_to_503(make_agent, tmp_path):
    a = make_agent(extra_yaml=audit_yaml(tmp_path / "nowhere" / "audit.redb")).start()
    r = a.get("/api/v1/audit/logs")
    assert r.status_code == 503
    assert r.json() == {"error": {"code": "SERVICE_UNAVAILABLE",
                                  "message": "audit store not configured"}}
    r = a.get("/api/v1/audit/rules/x/history")
    assert r.status_code == 503
    assert r.json()["error"]["message"] == "rule change store not configured"
    assert not (tmp_path / "nowhere").exists()
    # The log mirror still records.
    a.post("/api/v1/config/reload")
    assert a.wait_log('"event_type":"audit"')


def test_disabled_audit_records_nothing_but_answers(make_agent, tmp_path):
    a = make_agent(extra_yaml=f"audit:\n  enabled: false\n  storage_path: {tmp_path}/a.redb\n")
    a.start()
    a.post("/api/v1/config/reload")
    assert a.wait_log('"trigger":"api"')
    time.sleep(0.5)
    r = a.get("/api/v1/audit/logs")
    assert r.status_code == 200 and r.json()["total"] == 0
    assert '"event_type":"audit"' not in a.log()


def test_cli_audit_commands(make_agent, tmp_path):
    a = make_agent(extra_yaml=audit_yaml(tmp_path / "audit.redb")).start()
    a.post("/api/v1/config/reload")
    assert wait_for(lambda: a.get("/api/v1/audit/logs").json()["total"] >= 1)
    port = str(a.http_port)
    r = a.cli("-o", "json", "audit", "--port", port, "logs", "--component", "config",
              "--limit", "5")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["limit"] == 5 and doc["entries"][0]["component"] == "config"
    r = a.cli("audit", "--port", port, "logs", "--action", "config_changed")
    assert r.returncode == 0, r.stderr
    assert "COMPONENT" in r.stdout and "firewall reloaded" in r.stdout
    r = a.cli("audit", "--port", port, "history", "firewall-config")
    assert r.returncode == 0 and "config_reload" in r.stdout, r.stdout + r.stderr
    r = a.cli("audit", "--port", port, "logs", "--component", "nope")
    assert r.returncode == 1
    assert "(INVALID_QUERY): 400 Bad Request" in r.stderr
    r = a.cli("audit", "--port", port, "history")
    assert r.returncode == 2


def test_an_api_rule_change_is_one_audit_entry_and_one_version(make_agent, tmp_path):
    """IPS mode changes (§3.4): audited once as config/rule_updated, versioned with
    before/after; a PATCH that changes nothing records nothing."""
    a = make_agent(extra_yaml=audit_yaml(tmp_path / "audit.redb") +
                   "ips:\n  rules:\n    - {id: vnc, severity: medium, protocol: tcp, "
                   "dst_port: 5900}\n").start()
    assert a.request("PATCH", "/api/v1/ips/rules/vnc", json={"mode": "block"}).ok
    assert a.request("PATCH", "/api/v1/ips/rules/vnc", json={"mode": "enforce"}).ok
    got = wait_for(lambda: a.get("/api/v1/audit/logs", params={"rule_id": "vnc"})
                   .json()["entries"])
    time.sleep(0.3)
    got = a.get("/api/v1/audit/logs", params={"rule_id": "vnc"}).json()["entries"]
    assert [(e["component"], e["action"], e["detail"]) for e in got] == \
        [("config", "rule_updated", "update rule vnc by api")], got
    h = a.get("/api/v1/audit/rules/vnc/history").json()["entries"]
    assert len(h) == 1 and h[0]["component"] == "ips" and h[0]["actor"] == "api"
    assert json.loads(h[0]["before"])["mode"] == "alert"
    assert json.loads(h[0]["after"])["mode"] == "block"
