# SPDX-License-Identifier: AGPL-3.0-only
"""IPS end to end (detection.md §2.6): detections blacklist a source, tc_ids
drops it, the entry expires, the whitelist wins, manual entries, rule modes."""
import time

from lab import metric, sh, wait_until
from sinks import Listener, tcp_send

AGENT_IP = "198.51.100.1"
PEER_IP = "198.51.100.2"


def ips_agent(make_agent, tmp_path, ips):
    return make_agent(extra_yaml=(
        f"audit:\n  storage_path: {tmp_path}/audit.db\n"
        "alerting:\n  dedup_window_secs: 0\n"
        "ids:\n  rules:\n    - {id: ssh-probe, severity: high, protocol: tcp, dst_port: 2222}\n"
        f"ips:\n{ips}")).start()


def blacklist(agent):
    return agent.get("/api/v1/ips/blacklist").json()


def test_three_detections_blacklist_then_drop_then_expire(lab, make_agent, tmp_path):
    agent = ips_agent(make_agent, tmp_path,
                      "  mode: block\n  auto_blacklist_threshold: 3\n"
                      "  max_blacklist_duration_secs: 3\n")
    web = Listener(lab.agent_ns, AGENT_IP, 8080)
    try:
        assert tcp_send(lab.peer_ns, AGENT_IP, 8080)
        for _ in range(2):
            tcp_send(lab.peer_ns, AGENT_IP, 2222)
        time.sleep(0.5)
        assert blacklist(agent) == [], "two detections are below the threshold"
        tcp_send(lab.peer_ns, AGENT_IP, 2222)
        entries = wait_until(lambda: blacklist(agent), timeout=5)
        assert len(entries) == 1
        e = entries[0]
        assert e["ip"] == PEER_IP and e["auto_generated"] is True
        assert e["reason"] == "auto-blacklisted: detection threshold reached"
        assert 0 <= e["ttl_remaining_secs"] <= 3
        assert not tcp_send(lab.peer_ns, AGENT_IP, 8080, timeout=1.0), "dropped at TC ingress"
        al = wait_until(lambda: agent.get("/api/v1/alerts",
                                          params={"rule_id": "ips-auto-blacklist"}).json()[
            "alerts"], timeout=5)
        assert al[0]["component"] == "ips" and al[0]["severity"] == "high"
        assert al[0]["action"] == "block" and al[0]["src_addr"][0] == 3325256706
        m = agent.metrics()
        assert metric(m, "ebpfsentinel_ips_blacklist_size") == 1
        assert metric(m, "ebpfsentinel_ips_blocks_total") >= 1
        # TTL: the kernel stops dropping at expiry, the listing forgets it.
        assert wait_until(lambda: tcp_send(lab.peer_ns, AGENT_IP, 8080, timeout=0.5),
                          timeout=8, interval=0.5), "unblocked after the TTL"
        assert blacklist(agent) == []
    finally:
        web.close()


def test_whitelisted_source_is_never_blacklisted(lab, make_agent, tmp_path):
    agent = ips_agent(make_agent, tmp_path,
                      "  mode: block\n  auto_blacklist_threshold: 1\n"
                      "  whitelist: ['198.51.100.0/24', '2001:db8::/32']\n")
    for _ in range(3):
        tcp_send(lab.peer_ns, AGENT_IP, 2222)
    wait_until(lambda: len(agent.get("/api/v1/alerts").json()["alerts"]) >= 3, timeout=5)
    time.sleep(0.3)
    assert blacklist(agent) == []
    r = agent.post("/api/v1/ips/blacklist", json={"ip": PEER_IP})
    assert r.status_code == 400 and "whitelisted" in r.json()["error"]["message"]


def test_alert_mode_lists_without_dropping_and_manual_entries(lab, make_agent, tmp_path):
    agent = ips_agent(make_agent, tmp_path, "  auto_blacklist_threshold: 1\n  rules:\n"
                      "    - {id: vnc, severity: medium, protocol: tcp, dst_port: 5900}\n")
    web = Listener(lab.agent_ns, AGENT_IP, 8080)
    try:
        tcp_send(lab.peer_ns, AGENT_IP, 2222)
        assert wait_until(lambda: blacklist(agent), timeout=5)
        assert tcp_send(lab.peer_ns, AGENT_IP, 8080), "alert mode: listed, not dropped"
        # IPS rules, their mode and the CLI
        rules = agent.get("/api/v1/ips/rules").json()
        assert rules == [{"id": "vnc", "description": "", "severity": "medium", "mode": "alert",
                          "protocol": "tcp", "dst_port": 5900, "pattern": "", "enabled": True}]
        r = agent.request("PATCH", "/api/v1/ips/rules/nope", json={"mode": "block"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "RULE_NOT_FOUND"
        r = agent.request("PATCH", "/api/v1/ips/rules/vnc", json={"mode": "sideways"})
        assert r.status_code == 400
        out = agent.cli("ips", "--port", str(agent.http_port), "set-mode", "vnc", "--mode",
                        "enforce")
        assert out.returncode == 0 and out.stdout == "IPS rule vnc mode set to: block\n", \
            out.stderr
        out = agent.cli("ips", "--port", str(agent.http_port), "blacklist")
        assert PEER_IP in out.stdout
        # Manual entries: IPv6, permanent, removed again.
        r = agent.post("/api/v1/ips/blacklist",
                       json={"ip": "2001:db8:1::2", "reason": "manual test"})
        assert r.status_code == 201
        assert agent.post("/api/v1/ips/blacklist", json={"ip": "2001:db8:1::2"}).status_code \
            == 409
        assert {"ip": "2001:db8:1::2", "reason": "manual test", "auto_generated": False,
                "ttl_remaining_secs": 0} in blacklist(agent)
        assert agent.delete("/api/v1/ips/blacklist/2001:db8:1::2").status_code == 204
        assert agent.delete("/api/v1/ips/blacklist/2001:db8:1::2").status_code == 404
        assert agent.get("/api/v1/ips/domain-blocks").json() == []
    finally:
        web.close()


def test_block_mode_drops_manual_ipv6_entry(lab, make_agent, tmp_path):
    agent = ips_agent(make_agent, tmp_path, "  mode: block\n")
    sh("ping", "-6", "-c", "1", "-W", "2", "2001:db8:1::1", ns=lab.peer_ns)
    assert agent.post("/api/v1/ips/blacklist",
                      json={"ip": "2001:db8:1::2", "ttl_secs": 60}).status_code == 201
    r = sh("ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "2001:db8:1::1", ns=lab.peer_ns,
           check=False)
    assert r.returncode != 0, "blacklisted IPv6 source dropped"
    assert agent.delete("/api/v1/ips/blacklist/2001:db8:1::2").status_code == 204
    sh("ping", "-6", "-c", "1", "-W", "2", "2001:db8:1::1", ns=lab.peer_ns)
