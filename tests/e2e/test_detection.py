# SPDX-License-Identifier: AGPL-3.0-only
"""IDS and the alert pipeline end to end: real traffic from the peer
namespace through tc_ids, alerts in the store, the log, a webhook and an SMTP
sink, the circuit breaker, and a burst where every event is accounted for."""
import json
import time

import pytest

from lab import metric, wait_until
from sinks import Listener, SmtpSink, Webhook, tcp_send, udp_burst

AGENT_IP = "198.51.100.1"


def detection_agent(make_agent, tmp_path, alerting="  dedup_window_secs: 0\n", ids="",
                    extra=""):
    yaml = (f"audit:\n  storage_path: {tmp_path}/audit.db\n"
            f"alerting:\n{alerting}ids:\n{ids}{extra}")
    return make_agent(extra_yaml=yaml).start()


def alerts(agent, **q):
    r = agent.get("/api/v1/alerts", params=q)
    assert r.status_code == 200, r.text
    return r.json()


def wait_alerts(agent, n=1, timeout=10, **q):
    return wait_until(lambda: (lambda d: d if len(d["alerts"]) >= n else None)(alerts(agent, **q)),
                    timeout=timeout) or alerts(agent, **q)


def log_lines(agent, message):
    """Log lines whose (first) message is `message`. Alert log lines carry the
    alert's own `message` field too (§7.6), so keep the first one as such."""
    out = []
    for raw in agent.log().splitlines():
        try:
            pairs = json.loads(raw, object_pairs_hook=lambda p: p)
        except ValueError:
            continue
        d = {}
        for k, v in pairs:
            if k == "message" and "message" in d:
                d["alert_message"] = v
            else:
                d[k] = v
        if d.get("message") == message:
            out.append(d)
    return out


def test_tcp_connection_alerts_in_store_log_and_webhook(lab, make_agent, tmp_path):
    hook = Webhook(lab.agent_ns)
    try:
        agent = detection_agent(
            make_agent, tmp_path,
            alerting=("  dedup_window_secs: 0\n  routes:\n"
                      "    - {name: logs, destination: log, min_severity: low}\n"
                      f"    - {{name: hook, destination: webhook, min_severity: high, "
                      f"webhook_url: '{hook.url}', webhook_headers: {{X-Token: s3cret}}}}\n"),
            ids="  rules:\n    - {id: ssh-probe, severity: high, protocol: tcp, dst_port: 2222}\n"
                "    - {id: quiet, severity: low, protocol: tcp, dst_port: 2223}\n")
        assert agent.get("/api/v1/ebpf/status").json()["programs"][2] == \
            {"name": "tc_ids", "loaded": True}
        tcp_send(lab.peer_ns, AGENT_IP, 2222)
        doc = wait_alerts(agent)
        assert doc["total"] == 1 and len(doc["alerts"]) == 1
        a = doc["alerts"][0]
        assert a["component"] == "ids" and a["rule_id"] == "ssh-probe"
        assert a["severity"] == "high" and a["action"] == "alert"
        assert a["src_addr"] == [3325256706, 0, 0, 0] and a["dst_addr"] == [3325256705, 0, 0, 0]
        assert a["dst_port"] == 2222 and a["protocol"] == 6 and a["is_ipv6"] is False
        assert a["false_positive"] is False
        assert a["id"] == f"{a['timestamp_ns']}-ssh-probe"
        assert a["message"].startswith("IDS rule ssh-probe matched: 198.51.100.2:")
        assert list(a)[:14] == ["id", "timestamp_ns", "component", "severity", "rule_id",
                                "action", "src_addr", "dst_addr", "src_port", "dst_port",
                                "protocol", "is_ipv6", "message", "false_positive"]
        # Log sink
        assert wait_until(lambda: log_lines(agent, "alert sent to log"))
        line = log_lines(agent, "alert sent to log")[0]
        assert line["alert_id"] == a["id"] and line["route"] == "logs"
        assert line["src_ip"] == "198.51.100.2" and line["dst_ip"] == AGENT_IP
        assert line["level"] == "INFO" and line["action"] == "alert"
        assert line["message"] == "alert sent to log"
        assert line["alert_message"] == a["message"]
        # Webhook: capitalised severity/action, headers sent
        reqs = hook.wait(1)
        assert len(reqs) == 1
        body = reqs[0]["body"]
        assert body["severity"] == "High" and body["action"] == "Alert"
        assert body["id"] == a["id"] and body["src_addr"] == a["src_addr"]
        assert reqs[0]["headers"]["X-Token"] == "s3cret"
        assert reqs[0]["headers"]["Content-Type"] == "application/json"
        # A low alert goes to the log only (route severity).
        tcp_send(lab.peer_ns, AGENT_IP, 2223)
        wait_alerts(agent, 2)
        time.sleep(0.5)
        assert len(hook.requests) == 1
        # Filters and metrics
        assert [x["rule_id"] for x in alerts(agent, min_severity="high")["alerts"]] == ["ssh-probe"]
        assert alerts(agent, component="IDS")["total"] == 2
        assert alerts(agent, component="dlp")["alerts"] == []
        assert alerts(agent, rule_id="quiet")["alerts"][0]["severity"] == "low"
        assert alerts(agent, limit=5000)["limit"] == 1000
        assert agent.get("/api/v1/alerts", params={"limit": "abc"}).json()["error"]["code"] == \
            "INVALID_QUERY"
        m = agent.metrics()
        assert metric(m, "ebpfsentinel_alerts_total", component="ids", severity="high") == 1
        assert metric(m, "ebpfsentinel_alerts_by_rule_total", component="ids",
                      rule_id="ssh-probe") == 1
        assert metric(m, "ebpfsentinel_packets_total", interface="IDS_METRICS",
                      action="matched") >= 2
        assert metric(m, "ebpfsentinel_rules_loaded", component="ids") == 2
        # False positive: REST + CLI
        r = agent.post(f"/api/v1/alerts/{a['id']}/false-positive")
        assert r.status_code == 200 and r.json() == {"alert_id": a["id"], "marked": True}
        out = agent.cli("alerts", "--port", str(agent.http_port), "mark-fp", a["id"])
        assert out.returncode == 0, out.stderr
        assert metric(agent.metrics(), "ebpfsentinel_false_positives_total", component="ids",
                      rule_id="ssh-probe") == 1
        assert alerts(agent, false_positive="true")["alerts"][0]["id"] == a["id"]
        r = agent.post("/api/v1/alerts/nope/false-positive")
        assert r.status_code == 404 and r.json()["error"] == \
            {"code": "ALERT_NOT_FOUND", "message": "alert nope not found"}
        out = agent.cli("-o", "json", "alerts", "--port", str(agent.http_port), "list",
                        "--severity", "high")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["alerts"][0]["rule_id"] == "ssh-probe"
        out = agent.cli("alerts", "--port", str(agent.http_port), "list")
        assert "198.51.100.2" in out.stdout and "ssh-probe" in out.stdout
        assert agent.cli("alerts", "--port", str(agent.http_port), "list", "--severity",
                         "loud").returncode == 2
        ids_rules = agent.get("/api/v1/ids/rules").json()
        assert ids_rules[0] == {"id": "ssh-probe", "description": "", "severity": "High",
                                "mode": "Alert", "protocol": "Tcp", "dst_port": 2222,
                                "pattern": "", "enabled": True}
        assert agent.get("/api/v1/ids/status").json() == \
            {"enabled": True, "mode": "Alert", "rule_count": 2}
    finally:
        hook.close()


def test_pattern_rule_alerts_only_on_matching_payload(lab, make_agent, tmp_path):
    agent = detection_agent(make_agent, tmp_path, ids=(
        "  mode: block\n  rules:\n"
        "    - {id: sqli, severity: critical, protocol: tcp, dst_port: 8080, "
        "pattern: '(?i)union\\s+select'}\n"))
    srv = Listener(lab.agent_ns, AGENT_IP, 8080)
    try:
        assert tcp_send(lab.peer_ns, AGENT_IP, 8080, b"GET /?q=hello HTTP/1.0\r\n\r\n")
        assert tcp_send(lab.peer_ns, AGENT_IP, 8080, b"GET /?q=1 UNION  select pw HTTP/1.0\r\n\r\n"),\
            "pattern rules are never dropped in the kernel"
        doc = wait_alerts(agent)
        time.sleep(0.5)
        doc = alerts(agent)
        assert [x["rule_id"] for x in doc["alerts"]] == ["sqli"]
        assert doc["alerts"][0]["action"] == "alert"
        assert len(srv.received) == 2
    finally:
        srv.close()


def test_block_mode_drops_and_alert_mode_passes(lab, make_agent, tmp_path):
    agent = detection_agent(make_agent, tmp_path, ids=(
        "  mode: block\n  rules:\n"
        "    - {id: no-telnet, severity: medium, protocol: tcp, dst_port: 2323}\n"
        "    - {id: watch, severity: low, protocol: tcp, dst_port: 2324, mode: alert}\n"))
    l1, l2 = Listener(lab.agent_ns, AGENT_IP, 2323), Listener(lab.agent_ns, AGENT_IP, 2324)
    try:
        assert not tcp_send(lab.peer_ns, AGENT_IP, 2323, timeout=1.0), "dropped at TC ingress"
        assert tcp_send(lab.peer_ns, AGENT_IP, 2324)
        # A dropped SYN may be retransmitted: wait for both rules, not two alerts.
        acts = wait_until(lambda: (lambda a: a if {"no-telnet", "watch"} <= set(a) else None)(
            {x["rule_id"]: x["action"] for x in alerts(agent)["alerts"]}), timeout=10)
        assert acts["no-telnet"] == "block" and acts["watch"] == "alert"
        m = agent.metrics()
        assert metric(m, "ebpfsentinel_packets_total", interface="IDS_METRICS",
                      action="dropped") >= 1
        assert metric(m, "ebpfsentinel_kernel_reasons_total", program="tc_ids",
                      reason="ids_rule_drop") >= 1
        # Section back to alert mode: the same rule passes and still alerts (reload).
        cfg = open(agent.config_path).read().replace("  mode: block\n", "  mode: alert\n")
        with open(agent.config_path + ".tmp", "w") as f:
            f.write(cfg)
        import os
        os.replace(agent.config_path + ".tmp", agent.config_path)
        assert wait_until(lambda: agent.get("/api/v1/ids/status").json()["mode"] == "Alert")
        assert tcp_send(lab.peer_ns, AGENT_IP, 2323)
    finally:
        l1.close()
        l2.close()


def test_webhook_500_opens_breaker_while_log_continues(lab, make_agent, tmp_path):
    hook = Webhook(lab.agent_ns, status=500)
    try:
        agent = detection_agent(
            make_agent, tmp_path,
            alerting=("  dedup_window_secs: 0\n  retry_delays_ms: [50, 50, 50]\n  routes:\n"
                      "    - {name: logs, destination: log, min_severity: low}\n"
                      f"    - {{name: hook, destination: webhook, min_severity: low, "
                      f"webhook_url: '{hook.url}'}}\n"),
            ids="  rules:\n    - {id: probe, severity: high, protocol: tcp}\n")
        for i in range(7):
            tcp_send(lab.peer_ns, AGENT_IP, 3000 + i, timeout=0.5)
        # 5 deliveries x (1 + 3 retries) attempts, then the breaker opens.
        assert wait_until(lambda: metric(agent.metrics(), "ebpfsentinel_alert_sender_circuit_state",
                                       destination="webhook") == 2, timeout=15)
        n = len(hook.requests)
        assert n >= 20, f"each failed delivery is retried 3 times ({n} requests)"
        for i in range(3):
            tcp_send(lab.peer_ns, AGENT_IP, 3100 + i, timeout=0.5)
        assert wait_until(lambda: len(log_lines(agent, "alert sent to log")) >= 10)
        assert agent.wait_log("circuit breaker open for destination 'webhook'")
        time.sleep(0.5)
        assert len(hook.requests) <= n + 8, "open breaker rejects deliveries at once"
        m = agent.metrics()
        assert metric(m, "ebpfsentinel_alert_deliveries_total", destination="webhook",
                      result="rejected") >= 1
        assert metric(m, "ebpfsentinel_alert_deliveries_total", destination="log",
                      result="success") >= 10
    finally:
        hook.close()


def test_email_delivered_to_smtp_sink(lab, make_agent, tmp_path):
    smtp = SmtpSink(lab.agent_ns)
    try:
        agent = detection_agent(
            make_agent, tmp_path,
            alerting=("  dedup_window_secs: 0\n"
                      f"  smtp: {{host: 127.0.0.1, port: {smtp.port}, "
                      "from_address: sentinel@example.org, tls: false}\n  routes:\n"
                      "    - {name: mail, destination: email, min_severity: high, "
                      "email_to: soc@example.org}\n"),
            ids="  rules:\n    - {id: ids-001, severity: high, protocol: tcp, dst_port: 2222}\n")
        assert agent.get("/api/v1/config").json()["alerting"]["smtp"]["password"] is None
        tcp_send(lab.peer_ns, AGENT_IP, 2222)
        msgs = smtp.wait(1)
        assert len(msgs) == 1
        m = msgs[0]
        assert m["from"] == "sentinel@example.org" and m["to"] == ["soc@example.org"]
        assert "Subject: [eBPFsentinel] High alert: ids-001 (ids)" in m["data"]
        body = m["data"].split("\n\n", 1)[1] if "\n\n" in m["data"] else \
            m["data"].split("\r\n\r\n", 1)[1]
        doc = json.loads(body)
        assert doc["rule_id"] == "ids-001" and doc["severity"] == "High"
        assert '\n  "id"' in body.replace("\r\n", "\n"), "pretty-printed with 2 spaces"
    finally:
        smtp.close()


def test_burst_of_10000_events_is_fully_accounted_for(lab, make_agent, tmp_path):
    agent = detection_agent(
        make_agent, tmp_path,
        alerting="  dedup_window_secs: 0\n  throttle_max: 1000000\n",
        ids="  rules:\n    - {id: flood, severity: low, protocol: udp, dst_port: 9999}\n",
        extra="ips:\n  enabled: false\n")  # one event, one alert: nothing else alerts
    udp_burst(lab.peer_ns, AGENT_IP, 9999, 10000)

    def settled():
        m = agent.metrics()
        ids = lambda a: metric(m, "ebpfsentinel_packets_total", interface="IDS_METRICS", action=a)
        ev = lambda s: metric(m, "ebpfsentinel_events_total", stage=s)
        drop = lambda r: metric(m, "ebpfsentinel_events_dropped_total", reason=r)
        v = dict(matched=ids("matched"), ring=ids("events_dropped"), received=ev("received"),
                 dispatched=ev("dispatched"), queue=drop("event_queue_full"),
                 channel=drop("alert_channel_full"),
                 ids_alerts=metric(m, "ebpfsentinel_alerts_total", component="ids",
                                   severity="low"),
                 # every alert, IPS's own blacklisting alert included
                 alerts=sum(v for (n, _), v in m.items() if n == "ebpfsentinel_alerts_total"),
                 logged=metric(m, "ebpfsentinel_alert_deliveries_total", destination="log",
                               result="success"),
                 no_route=metric(m, "ebpfsentinel_alerts_dropped_total", reason="no_route"))
        done = (v["matched"] == v["ring"] + v["received"] and
                v["received"] == v["queue"] + v["dispatched"] and
                v["dispatched"] == v["ids_alerts"] + v["channel"] and
                v["alerts"] == v["logged"] + v["no_route"])
        settled.last = v
        # The veth may shed some of the burst before TC: only packets tc_ids saw count.
        return v if done and v["matched"] >= 1000 else None

    v = wait_until(settled, timeout=90, interval=0.5)
    assert v, f"not every event is accounted for: {settled.last}"
    assert v["alerts"] > 0
