# SPDX-License-Identifier: AGPL-3.0-only
"""Small real peers for end-to-end tests, run in a namespace with lab.Proc:
an HTTP server that reports the addresses it sees, UDP responders, a
long-lived TCP client/server pair and a one-answer DNS server. Plain Python
sockets, no name lookups (a namespace has no resolver to reach)."""
import hashlib

from lab import Proc, sh

BLOB = 300_000

# "/" answers "<peer addr> <peer port> <local addr> <local port>"; /blob a fixed body.
_HTTP = """
import http.server, socket, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == '/blob':
            body = bytes((i * 7 + 3) % 251 for i in range(BLOB))
        else:
            p, l = self.client_address, self.request.getsockname()
            body = f'{p[0]} {p[1]} {l[0]} {l[1]}'.encode()
        self.send_response(200); self.send_header('Content-Length', str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
    def server_bind(self):  # no getfqdn(): it would wait for an unreachable resolver
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = 'peer', self.server_address[1]
S((sys.argv[1], int(sys.argv[2])), H).serve_forever()
""".replace("BLOB", str(BLOB))

# Answers every datagram with "<peer addr> <peer port>" (echo=1: with the datagram).
_UDP = """
import socket, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(d if sys.argv[3] == 'echo' else f'{a[0]} {a[1]}'.encode(), a)
"""

# Sends n datagrams from (src, sport), prints the last answer (or "timeout") and
# how many answers came.
_UDP_ASK = """
import socket, sys
dst, dport, src, sport, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET6 if ':' in dst else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.5); s.bind((src, sport))
last, got = 'timeout', 0
for i in range(n):
    s.sendto(b'q' * 20, (dst, dport))
    try: last = s.recvfrom(2048)[0].decode(errors='replace'); got += 1
    except OSError: pass
print(last); print(got)
"""

# TCP server holding one connection (mode 'rst': reset it after the first read).
_TCP_SERVER = """
import socket, struct, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen()
c, _ = s.accept()
if sys.argv[3] == 'rst':
    c.recv(10)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); c.close()
while True:
    if not c.recv(65536): break
"""

# TCP client (retrying while refused, 5 s) sending n bytes every 0.2 s until its stdin
# closes (or the peer resets).
_TCP_CLIENT = """
import socket, sys, select, time
deadline = time.time() + 5
while True:  # the server may still be starting
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); break
    except ConnectionRefusedError:
        if time.time() > deadline: raise
        time.sleep(0.1)
while not select.select([sys.stdin], [], [], 0.2)[0]:
    try: c.sendall(b'x' * int(sys.argv[3]))
    except OSError: break
"""

# One-answer DNS server: every query gets A 192.0.2.77 (never routed anywhere).
_DNS = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', int(sys.argv[1])))
while True:
    q, a = s.recvfrom(512)
    end = 12
    while q[end]: end += q[end] + 1
    ans = b'\\xc0\\x0c\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x3c\\x00\\x04' + bytes([192, 0, 2, 77])
    s.sendto(q[:2] + b'\\x81\\x80\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x00' + q[12:end + 5] + ans, a)
"""


def http_server(ns, addr, port):
    return Proc(ns, "python3", "-c", _HTTP, addr, str(port))


def udp_server(ns, addr, port, echo=False):
    return Proc(ns, "python3", "-c", _UDP, addr, str(port), "echo" if echo else "who")


def udp_ask(ns, dst, dport, src, sport, n=1):
    """Send n datagrams; returns (last answer or 'timeout', answers received)."""
    out = sh("python3", "-c", _UDP_ASK, dst, str(dport), src, str(sport), str(n), ns=ns,
             timeout=10 + 2 * n).stdout.split("\n")
    return out[0], int(out[1])


def tcp_server(ns, addr, port, mode="hold"):
    return Proc(ns, "python3", "-c", _TCP_SERVER, addr, str(port), mode)


def tcp_client(ns, addr, port, chunk):
    """Stop it by closing p.stdin, then stop()."""
    import subprocess
    return Proc(ns, "python3", "-c", _TCP_CLIENT, addr, str(port), str(chunk),
                stdin=subprocess.PIPE)


def dns_server(ns, port):
    return Proc(ns, "python3", "-c", _DNS, str(port))


def blob_sha():
    return hashlib.sha256(bytes((i * 7 + 3) % 251 for i in range(BLOB))).hexdigest()


def curl(ns, url, timeout=5):
    """Body of a GET, or None."""
    r = sh("curl", "-sS", "-g", "--max-time", str(timeout), url, ns=ns, check=False,
           timeout=timeout + 5)
    return r.stdout if r.returncode == 0 else None


def fetch_sha(ns, url):
    """sha256 of a downloaded body, or None."""
    r = sh("sh", "-c", f"curl -sS -g --max-time 10 '{url}' | sha256sum", ns=ns, check=False,
           timeout=20)
    return r.stdout.split()[0] if r.returncode == 0 and r.stdout else None


# Accepts (and closes) connections on every "addr,port" given; prints "ready".
_TCP_LISTEN = """
import socket, sys, threading
def serve(addr, port):
    s = socket.socket(socket.AF_INET6 if ':' in addr else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if ':' in addr:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, port)); s.listen(64)
    return s
def run(s):
    while True:
        c, _ = s.accept(); c.close()
socks = []
for spec in sys.argv[1:]:
    a, p = spec.rsplit(',', 1)
    socks.append(serve(a, int(p)))
for s in socks:
    threading.Thread(target=run, args=(s,), daemon=True).start()
print('ready', flush=True)
threading.Event().wait()
"""

# Tries each "dst,port[,src]" once (timeout s each); prints one 1/0 per attempt.
_TCP_TRY = """
import socket, sys
t = float(sys.argv[1])
for spec in sys.argv[2:]:
    f = spec.split(',')
    s = socket.socket(socket.AF_INET6 if ':' in f[0] else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(t)
    try:
        if len(f) > 2: s.bind((f[2], 0))
        s.connect((f[0], int(f[1]))); print(1)
    except OSError:
        print(0)
    s.close()
"""


def tcp_listen(ns, endpoints):
    """Listen on [(addr, port)] in ns until stopped; returns the Proc once listening."""
    p = Proc(ns, "python3", "-c", _TCP_LISTEN, *[f"{a},{port}" for a, port in endpoints])
    assert p.p.stdout.readline().strip() == b"ready"
    return p


def tcp_try(ns, attempts, timeout=1.0):
    """Connect once per (dst, port[, src]); returns [True/False] in order."""
    specs = [",".join(str(x) for x in a) for a in attempts]
    out = sh("python3", "-c", _TCP_TRY, str(timeout), *specs, ns=ns,
             timeout=10 + timeout * len(specs)).stdout.split()
    return [x == "1" for x in out]


def ping(ns, addr, count=1, wait=1):
    """True when at least one echo reply came back."""
    argv = ["ping", "-6" if ":" in addr else "-4", "-c", str(count), "-i", "0.2", "-W",
            str(wait), addr]
    return sh(*argv, ns=ns, check=False, timeout=5 + count * (wait + 1)).returncode == 0
