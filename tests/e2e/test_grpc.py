# SPDX-License-Identifier: AGPL-3.0-only
"""gRPC end to end (interfaces.md §5): python grpcio against the agent's
server (stubs generated from proto/ at test time), plus raw HTTP/2 requests
with curl for the framing and error details."""
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time

import pytest

from lab import ROOT, Agent, Proc, metric, sh, wait_until
from sinks import tcp_send, udp_burst

AGENT_IP = "198.51.100.1"
CLIENT = os.path.join(os.path.dirname(__file__), "grpc_client.py")


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    d = tmp_path_factory.mktemp("grpc-stubs")
    os.makedirs(d / "ebpfsentinel" / "v1")
    shutil.copy(os.path.join(ROOT, "proto/ebpfsentinel/v1/alerts.proto"),
                d / "ebpfsentinel" / "v1")
    # Module names that do not shadow the grpc package; the proto packages stay.
    shutil.copy(os.path.join(ROOT, "proto/grpc/health/v1/health.proto"), d / "es_health.proto")
    shutil.copy(os.path.join(ROOT, "proto/grpc/reflection/v1/reflection.proto"),
                d / "es_reflection.proto")
    subprocess.run(["/usr/bin/python3", "-m", "grpc_tools.protoc", f"-I{d}",
                    f"--python_out={d}", f"--grpc_python_out={d}",
                    "ebpfsentinel/v1/alerts.proto", "es_health.proto", "es_reflection.proto"],
                   check=True, capture_output=True)
    return str(d)


def client(agent, stubs, *args, target=None, timeout=20):
    r = sh("/usr/bin/python3", CLIENT, stubs, target or f"127.0.0.1:{agent.grpc_port}", *args,
           ns=agent.ns, timeout=timeout, check=False)
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert lines, r.stderr
    return lines


class Stream:
    """A live StreamAlerts subscription in a background client."""

    def __init__(self, agent, stubs, sev="", comp="", limit=100, timeout=30, token=None):
        args = ["/usr/bin/python3", CLIENT, stubs, f"127.0.0.1:{agent.grpc_port}", "stream",
                sev, comp, str(limit), str(timeout)] + ([f"Bearer {token}"] if token else [])
        self.proc = Proc(agent.ns, *args)
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.q.get(timeout=15)
        assert first.get("subscribed") is True, first

    def _read(self):
        for line in self.proc.p.stdout:
            try:
                self.q.put(json.loads(line))
            except ValueError:
                pass
        self.q.put(None)

    def events(self, n, timeout=10):
        got, deadline = [], time.time() + timeout
        while len(got) < n and time.time() < deadline:
            try:
                x = self.q.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if x is None:
                break
            got.append(x)
        return got

    def close(self):
        self.proc.stop()


def grpc_agent(make_agent, tmp_path, extra="", agent_yaml=""):
    return make_agent(
        agent_yaml=agent_yaml,
        extra_yaml=(f"audit:\n  storage_path: {tmp_path}/audit.db\n"
                    "ids:\n  rules:\n"
                    "    - {id: ssh-probe, severity: high, protocol: tcp, dst_port: 2222}\n"
                    "    - {id: low-one, severity: low, protocol: tcp, dst_port: 2223}\n" + extra)
    ).start()


def test_health_check_watch_and_reflection(lab, make_agent, tmp_path, stubs):
    agent = grpc_agent(make_agent, tmp_path)
    assert client(agent, stubs, "health", "") == [{"status": "SERVING"}]
    assert client(agent, stubs, "health", "ebpfsentinel.v1.AlertStreamService") == \
        [{"status": "SERVING"}]
    r = client(agent, stubs, "health", "no.such.Service")
    assert r[0]["code"] == "NOT_FOUND"
    r = client(agent, stubs, "watch", "", "1.5")
    assert r[0] == {"status": "SERVING"}
    assert r[-1]["code"] == "DEADLINE_EXCEEDED", "Watch stays open until the deadline"
    r = client(agent, stubs, "reflect")
    assert r[0]["services"][:2] == ["ebpfsentinel.v1.AlertStreamService",
                                    "grpc.health.v1.Health"]
    f = r[1]["files"][0]
    assert f["name"] == "ebpfsentinel/v1/alerts.proto" and f["package"] == "ebpfsentinel.v1"
    assert f["services"] == ["AlertStreamService"]
    assert "AlertEvent" in f["messages"] and "StreamAlertsRequest" in f["messages"]
    assert r[2]["files"][0]["services"] == ["Health"]
    assert r[3] == {"error": 5}
    assert agent.wait_log('"message":"gRPC listening"')


def test_stream_alerts_with_filters_before_dedup(lab, make_agent, tmp_path, stubs):
    agent = grpc_agent(make_agent, tmp_path)
    everything = Stream(agent, stubs)
    high_ids = Stream(agent, stubs, sev="HIGH", comp="IDS")
    dlp_only = Stream(agent, stubs, comp="dlp")
    critical = Stream(agent, stubs, sev="critical")
    try:
        tcp_send(lab.peer_ns, AGENT_IP, 2222)
        tcp_send(lab.peer_ns, AGENT_IP, 2222)  # a duplicate: dedup drops it for senders
        tcp_send(lab.peer_ns, AGENT_IP, 2223)
        got = everything.events(3)
        assert [e["alert"]["rule_id"] for e in got] == ["ssh-probe", "ssh-probe", "low-one"]
        a = got[0]["alert"]
        assert a["component"] == "ids" and a["severity"] == "high" and a["action"] == "alert"
        assert a["src_addr"] == [3325256706, 0, 0, 0] and a["dst_port"] == 2222
        assert a["protocol"] == 6 and a["is_ipv6"] is False and a["false_positive"] is False
        assert a["id"].endswith("-ssh-probe") and int(a["timestamp_ns"]) > 0
        # Absent optional data: -1 for scores, confidence and direction, "" and 0 else.
        assert a["src_domain_score"] == -1 and a["confidence"] == -1 and a["direction"] == -1
        assert a["src_domain"] == "" and a["pid"] == 0 and a["peak_pps"] == "0"
        assert [e["alert"]["rule_id"] for e in high_ids.events(2, timeout=3)] == \
            ["ssh-probe", "ssh-probe"]
        assert dlp_only.events(1, timeout=1) == []
        assert critical.events(1, timeout=1) == []
        # Senders saw one ssh-probe (dedup), the stream both.
        logged = [x for x in agent.log().splitlines() if '"alert sent to log"' in x]
        assert sum('"rule_id":"ssh-probe"' in x for x in logged) == 1
    finally:
        for s in (everything, high_ids, dlp_only, critical):
            s.close()


def test_slow_subscriber_loses_overflow_not_memory(lab, make_agent, tmp_path, stubs):
    """A subscriber that stops reading: once HTTP/2 flow control and the socket
    buffers are full, its ring keeps the newest 1000 alerts and the rest are
    counted as lost; the agent's memory does not grow with the backlog."""
    agent = grpc_agent(make_agent, tmp_path,
                       extra="    - {id: flood, severity: low, protocol: udp, dst_port: 9999}\n"
                             "alerting:\n  dedup_window_secs: 0\n  routes: []\n")
    s = Stream(agent, stubs, limit=1000000, timeout=120)
    os.kill(s.proc.p.pid, signal.SIGSTOP)
    try:
        rss0 = metric(agent.metrics(), "ebpfsentinel_memory_usage_bytes")
        for _ in range(40):  # paced so the alert intake keeps up
            udp_burst(lab.peer_ns, AGENT_IP, 9999, 1000, payload=b"x" * 64)
            time.sleep(0.05)
        lagged = wait_until(lambda: metric(agent.metrics(), "ebpfsentinel_alerts_dropped_total",
                                           reason="grpc_subscriber_lagged"), timeout=10)
        m = agent.metrics()
        total = metric(m, "ebpfsentinel_alerts_total", component="ids", severity="low")
        assert total > 10000, total
        assert lagged > 0, total
        time.sleep(5.5)  # next RSS sample
        rss1 = metric(agent.metrics(), "ebpfsentinel_memory_usage_bytes")
        assert rss1 - rss0 < 64 << 20, (rss0, rss1)
    finally:
        os.kill(s.proc.p.pid, signal.SIGCONT)
        s.close()
    assert agent.get("/healthz").status_code == 200


def curl_grpc(agent, path, body=b"", headers=(), timeout=5):
    """A raw gRPC call over h2c with curl; returns (response headers+trailers, body)."""
    argv = ["curl", "-sS", "-v", "--http2-prior-knowledge", "-m", str(timeout),
            "-H", "content-type: application/grpc", "-H", "te: trailers",
            "--data-binary", "@-"]
    for h in headers:
        argv += ["-H", h]
    argv.append(f"http://127.0.0.1:{agent.grpc_port}{path}")
    r = subprocess.run(["nsenter", f"--net=/run/netns/{agent.ns}", *argv], input=body,
                       capture_output=True, timeout=timeout + 5)
    hdrs = {}
    for line in r.stderr.decode(errors="replace").splitlines():
        if line.startswith("< ") and ":" in line[2:]:
            k, _, v = line[2:].partition(":")
            hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    return hdrs, r.stdout


def framed(msg=b"", compressed=False):
    return bytes([1 if compressed else 0]) + len(msg).to_bytes(4, "big") + msg


def test_framing_and_error_details_over_h2c(lab, make_agent, tmp_path):
    agent = grpc_agent(make_agent, tmp_path)
    # Health/Check with an empty request: one framed message, then trailers.
    h, body = curl_grpc(agent, "/grpc.health.v1.Health/Check", framed())
    assert body == framed(b"\x08\x01"), body  # status: SERVING
    assert h["grpc-status"] == ["0"] and h["content-type"] == ["application/grpc"]
    svc = b"ebpfsentinel.v1.AlertStreamService"
    h, body = curl_grpc(agent, "/grpc.health.v1.Health/Check",
                        framed(b"\x0a" + bytes([len(svc)]) + svc))
    assert body == framed(b"\x08\x01")
    # Unknown service: trailers-only NOT_FOUND with a message.
    h, body = curl_grpc(agent, "/grpc.health.v1.Health/Check", framed(b"\x0a\x01x"))
    assert h["grpc-status"] == ["5"] and body == b""
    assert h["grpc-message"] == ["unknown service: x"]
    # Unknown method: UNIMPLEMENTED.
    h, _ = curl_grpc(agent, "/pkg.Nope/Do", framed())
    assert h["grpc-status"] == ["12"]
    # Compression is refused.
    h, _ = curl_grpc(agent, "/grpc.health.v1.Health/Check", framed(), ["grpc-encoding: gzip"])
    assert h["grpc-status"] == ["12"] and h["grpc-accept-encoding"] == ["identity"]
    h, _ = curl_grpc(agent, "/grpc.health.v1.Health/Check", framed(b"\x00", compressed=True))
    assert h["grpc-status"] == ["13"]
    # grpc-timeout ends a stream with DEADLINE_EXCEEDED in its trailers.
    t0 = time.time()
    h, _ = curl_grpc(agent, "/ebpfsentinel.v1.AlertStreamService/StreamAlerts", framed(),
                     ["grpc-timeout: 300m"])
    assert h["grpc-status"] == ["4"] and time.time() - t0 < 4
    # Not gRPC at all.
    r = sh("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--http2-prior-knowledge",
           "-d", "x", f"http://127.0.0.1:{agent.grpc_port}/grpc.health.v1.Health/Check",
           ns=agent.ns, check=False)
    assert r.stdout == "415"
    # A message larger than 4 MiB is refused without buffering it.
    h, _ = curl_grpc(agent, "/grpc.health.v1.Health/Check",
                     b"\x00" + (5 << 20).to_bytes(4, "big") + b"\x00" * 100)
    assert h["grpc-status"] == ["8"]


def test_tls_with_alpn_h2(lab, make_agent, tmp_path, stubs):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    os.chmod(key, 0o600)

    class TlsAgent(Agent):
        def url(self, path):
            return f"https://127.0.0.1:{self.http_port}{path}"

        def request(self, method, path, **kw):
            kw.setdefault("verify", str(cert))
            return super().request(method, path, **kw)

    (tmp_path / "a").mkdir()
    agent = TlsAgent(lab.agent_ns, str(tmp_path / "a"), [lab.agent_if],
                     extra_yaml=f"audit:\n  storage_path: {tmp_path}/audit.db\n",
                     agent_yaml=(f"  tls:\n    enabled: true\n    cert_path: {cert}\n"
                                 f"    key_path: {key}\n"))
    try:
        agent.start()
        tls_checks(agent, stubs, cert)
    finally:
        agent.cleanup()


def tls_checks(agent, stubs, cert):
    r = client(agent, stubs, "health", "", target=f"tls:{cert}:127.0.0.1:{agent.grpc_port}")
    assert r == [{"status": "SERVING"}]
    # TLS 1.2 is refused (1.3 only), and so is a client without ALPN h2.
    r = sh("openssl", "s_client", "-connect", f"127.0.0.1:{agent.grpc_port}", "-tls1_2",
           ns=agent.ns, check=False, input="")
    assert "Cipher is (NONE)" in r.stdout or r.returncode != 0
    r = sh("openssl", "s_client", "-connect", f"127.0.0.1:{agent.grpc_port}", "-alpn", "h2",
           "-tls1_3", ns=agent.ns, check=False, input="")
    assert "ALPN protocol: h2" in r.stdout
    r = sh("openssl", "s_client", "-connect", f"127.0.0.1:{agent.grpc_port}", "-tls1_3",
           ns=agent.ns, check=False, input="")
    assert "ALPN protocol: h2" not in r.stdout


def test_shutdown_ends_streams_and_sends_goaway(lab, make_agent, tmp_path, stubs):
    agent = grpc_agent(make_agent, tmp_path)
    s = Stream(agent, stubs, timeout=60)
    rc, took = agent.stop()
    assert rc == 0 and took < 8, (rc, took)
    end = s.events(1, timeout=5)
    assert end and end[0].get("code") == "UNAVAILABLE", end
    s.close()


def test_grpc_bind_failure_exits_1(lab, make_agent, tmp_path):
    a = make_agent()
    blocker = Proc(lab.agent_ns, "/usr/bin/python3", "-c",
                   "import socket,time; s=socket.socket(); "
                   "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                   f"s.bind(('127.0.0.1', {a.grpc_port})); s.listen(); time.sleep(30)")
    try:
        time.sleep(0.5)
        with pytest.raises(AssertionError, match="exited with 1"):
            a.start()
        assert "cannot start the gRPC listener" in a.log()
    finally:
        blocker.stop()
