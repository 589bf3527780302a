# SPDX-License-Identifier: AGPL-3.0-only
"""Local receivers for alert deliveries and traffic helpers, all bound inside
a test namespace: an HTTP webhook receiver, an SMTP sink (aiosmtpd) and TCP
listeners/clients."""
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lab import free_port, in_netns


class Webhook:
    """An HTTP server in namespace ns recording every POST; `status` is what it answers."""

    def __init__(self, ns, status=200):
        self.requests = []
        self.status = status
        self.port = free_port(30000)
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                outer.requests.append({"path": self.path, "headers": dict(self.headers),
                                       "body": json.loads(body) if body else None})
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        with in_netns(ns):
            self.server = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def wait(self, n=1, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.requests) < n:
            time.sleep(0.05)
        return self.requests

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class SmtpSink:
    """aiosmtpd in namespace ns (plain SMTP, no STARTTLS) keeping every message."""

    def __init__(self, ns):
        from aiosmtpd.controller import Controller

        self.messages = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                                       "data": envelope.content.decode("utf-8", "replace")})
                return "250 OK"

        self.port = free_port(31000)
        with in_netns(ns):
            self.ctl = Controller(Handler(), hostname="127.0.0.1", port=self.port)
            self.ctl.start()

    def wait(self, n=1, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.messages) < n:
            time.sleep(0.05)
        return self.messages

    def close(self):
        self.ctl.stop()


class Listener:
    """A TCP server in ns on addr:port that reads what clients send."""

    def __init__(self, ns, addr, port):
        self.received = []
        with in_netns(ns):
            self.sock = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((addr, port))
            self.sock.listen(16)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.settimeout(2)
            try:
                self.received.append(c.recv(4096))
            except OSError:
                pass
            c.close()

    def close(self):
        self.sock.close()


def tcp_send(ns, addr, port, data=b"", timeout=2.0):
    """Connect from ns and send data; True when the connection was accepted."""
    with in_netns(ns):
        s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
        if data:
            s.sendall(data)
            time.sleep(0.05)
        return True
    except OSError:
        return False
    finally:
        s.close()


def udp_burst(ns, addr, port, count, payload=b"x"):
    with in_netns(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(count):
            try:
                s.sendto(payload, (addr, port))
            except OSError:
                pass
    finally:
        s.close()
