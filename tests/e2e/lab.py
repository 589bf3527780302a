# SPDX-License-Identifier: AGPL-3.0-only
"""Namespace labs and the real agent, for end-to-end tests.

Everything here stays inside network namespaces the test creates (unique
names per run, deleted in teardown even on failure) and uses only
198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15 and 2001:db8::/32.
Processes are ended by PID only.
"""
import contextlib
import ctypes
import itertools
import json
import os
import shutil
import signal
import subprocess
import time

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
AGENT = os.path.join(ROOT, "build", "ebpfsentinel-agent")
_counter = itertools.count()
_libc = ctypes.CDLL("libc.so.6", use_errno=True)
CLONE_NEWNET = 0x40000000


def uniq(prefix="es"):
    """A short unique name (interface names are limited to 15 bytes)."""
    return f"{prefix}{os.getpid() % 100000}{next(_counter)}"


def sh(*cmd, check=True, ns=None, timeout=30, **kw):
    """Run a command (in namespace ns when given) and return CompletedProcess."""
    argv = list(cmd)
    if ns:
        argv = ["nsenter", f"--net=/run/netns/{ns}"] + argv
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=timeout, **kw)


@contextlib.contextmanager
def in_netns(ns):
    """Switch this thread into namespace ns for the duration (sockets keep it)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns failed")
        yield
    finally:
        _libc.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)


class Lab:
    """Two or more namespaces joined by veth pairs."""

    def __init__(self):
        self.namespaces = []

    def netns(self, name=None):
        name = name or uniq("esn")
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "link", "set", "lo", "up", ns=name)
        return name

    def link(self, ns_a, ns_b, addr_a=None, addr_b=None, addr6_a=None, addr6_b=None):
        """A veth pair between two namespaces; returns (if_a, if_b)."""
        a, b = uniq("eva"), uniq("evb")
        sh("ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b)
        for ns, ifn, v4, v6 in ((ns_a, a, addr_a, addr6_a), (ns_b, b, addr_b, addr6_b)):
            if v4:
                sh("ip", "addr", "add", v4, "dev", ifn, ns=ns)
            if v6:
                sh("ip", "-6", "addr", "add", v6, "dev", ifn, "nodad", ns=ns)
            sh("ip", "link", "set", ifn, "up", ns=ns)
        return a, b

    def router_topology(self):
        """client — router — server on two veth pairs, the router forwarding both
        families. Checksum offloads are off where a wrong checksum would
        otherwise be trusted (KERNEL-NOTES.md): tx on the router's veths, rx on
        the end hosts. Sets client, router, server (namespaces), r_cif/cif
        (router/client ends of the client link), r_sif/sif (server link)."""
        self.client, self.router, self.server = self.netns(), self.netns(), self.netns()
        self.r_cif, self.cif = self.link(self.router, self.client, "198.51.100.1/24",
                                         "198.51.100.2/24", "2001:db8:1::1/64", "2001:db8:1::2/64")
        self.r_sif, self.sif = self.link(self.router, self.server, "203.0.113.1/24",
                                         "203.0.113.2/24", "2001:db8:2::1/64", "2001:db8:2::2/64")
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=self.router)
        sh("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", ns=self.router)
        for ns, gw4, gw6 in ((self.client, "198.51.100.1", "2001:db8:1::1"),
                             (self.server, "203.0.113.1", "2001:db8:2::1")):
            sh("ip", "route", "add", "default", "via", gw4, ns=ns)
            sh("ip", "-6", "route", "add", "default", "via", gw6, ns=ns)
        for ns, ifn, direction in ((self.router, self.r_cif, "tx"), (self.router, self.r_sif, "tx"),
                                   (self.client, self.cif, "rx"), (self.server, self.sif, "rx")):
            sh("ethtool", "-K", ifn, direction, "off", ns=ns)
        return self

    def close(self):
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces.clear()


def free_port(base=18000):
    """Ports are per namespace; a counter keeps concurrent agents apart anyway."""
    return base + (os.getpid() * 7 + next(_counter)) % 20000


class Agent:
    """The real ebpfsentinel-agent, started in a namespace with nsenter (which
    keeps the host's bpffs, unlike `ip netns exec`)."""

    def __init__(self, ns, workdir, interfaces, extra_yaml="", http_port=None, agent_yaml="",
                 env=None, log_format="json"):
        self.ns = ns
        self.workdir = workdir
        self.http_port = http_port or free_port()
        self.grpc_port = self.http_port + 1
        self.pin_dir = f"/sys/fs/bpf/{uniq('est')}"
        self.config_path = os.path.join(workdir, "config.yaml")
        self.log_path = os.path.join(workdir, "agent.log")
        self.err_path = os.path.join(workdir, "agent.err")
        self.interfaces = interfaces
        self.env = env
        self.ca = None  # CA file: talk HTTPS and verify with it (TLS tests)
        self.write_config(extra_yaml, agent_yaml, log_format)
        self.proc = None

    def agent_section(self, agent_yaml="", log_format="json"):
        ifs = ", ".join(self.interfaces)
        return (f"agent:\n  interfaces: [{ifs}]\n  http_port: {self.http_port}\n"
                f"  grpc_port: {self.grpc_port}\n  metrics_port: {self.http_port + 2}\n"
                f"  bpffs_dir: {self.pin_dir}\n  log_format: {log_format}\n{agent_yaml}")

    def write_config(self, extra_yaml="", agent_yaml="", log_format="json", atomic=True):
        text = self.agent_section(agent_yaml, log_format) + extra_yaml
        if not atomic:  # rewritten in place, as a plain editor save does
            with open(self.config_path, "w") as f:
                f.write(text)
            return text
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.config_path)
        return text

    def start(self, wait_ready=True, args=()):
        env = dict(os.environ)
        env.pop("RUST_LOG", None)
        if self.env:
            env.update(self.env)
        self.out = open(self.log_path, "ab")
        self.err = open(self.err_path, "ab")
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.ns}", AGENT, "--config", self.config_path,
             *args],
            stdout=self.out, stderr=self.err, env=env)
        self.wait_http()
        if wait_ready:
            self.wait_ready()
        return self

    def wait_http(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}: {self.stderr()}"
                                     f"\n{self.log()[-3000:]}")
            try:
                if self.get("/healthz").status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError("agent HTTP API did not come up\n" + self.log()[-3000:])

    def wait_ready(self, timeout=15):
        """/readyz says ready once the XDP firewall is attached; tests also wait for
        the end of startup (every domain started, the event reader running)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.get("/readyz").status_code == 200:
                r = self.get("/api/v1/ebpf/status")
                # Behind auth the list is not visible: the startup log line then.
                if r.status_code == 200 and r.json()["programs"]:
                    return
                if r.status_code != 200 and self.started():
                    return
            time.sleep(0.1)
        raise AssertionError("agent not ready\n" + self.log()[-3000:])

    def started(self):
        """Startup is over (every domain started, reload triggers running)."""
        return "agent ready, waiting for shutdown signal" in self.log()

    def url(self, path):
        return f"{'https' if self.ca else 'http'}://127.0.0.1:{self.http_port}{path}"

    def request(self, method, path, **kw):
        with in_netns(self.ns), requests.Session() as s:
            s.trust_env = False
            kw.setdefault("timeout", 10)
            if self.ca:
                kw.setdefault("verify", self.ca)
            return s.request(method, self.url(path), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def cli(self, *args, check=False, env=None):
        """Run the binary as a client inside the agent's namespace."""
        e = dict(os.environ)
        e.update(env or {})
        return sh(AGENT, *args, ns=self.ns, check=check, env=e)

    def metrics(self):
        return parse_metrics(self.get("/metrics").text)

    def send(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signal and wait; returns (exit status, seconds taken)."""
        if not self.proc or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else None), 0.0
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        return rc, time.monotonic() - t0

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_lines(self):
        out = []
        for line in self.log().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def stderr(self):
        try:
            with open(self.err_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, needle, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.log():
                return True
            time.sleep(0.1)
        return False

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in ("out", "err"):
            if hasattr(self, f):
                getattr(self, f).close()
        # Anything a killed agent left behind: its XDP programs and pins.
        for ifn in self.interfaces:
            subprocess.run(["nsenter", f"--net=/run/netns/{self.ns}", "ip", "link", "set", "dev",
                            ifn, "xdp", "off"], capture_output=True)
        if os.path.isdir(self.pin_dir):
            shutil.rmtree(self.pin_dir, ignore_errors=True)


class Proc:
    """A background process in a namespace (a server, a long-lived client),
    ended by PID."""

    def __init__(self, ns, *argv, stdin=None):
        self.p = subprocess.Popen(["nsenter", f"--net=/run/netns/{ns}", *argv],
                                  stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def stop(self, timeout=5):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


def wait_until(fn, timeout=10, interval=0.2):
    """Poll fn until it returns a truthy value; return that value (or the last)."""
    deadline = time.time() + timeout
    v = fn()
    while not v and time.time() < deadline:
        time.sleep(interval)
        v = fn()
    return v


def tc_filters(ns, ifname, direction):
    """Names of the BPF programs attached as TC filters on ifname/direction."""
    r = sh("tc", "-j", "filter", "show", "dev", ifname, direction, ns=ns, check=False)
    out = []
    for f in json.loads(r.stdout or "[]"):
        name = (f.get("options") or {}).get("bpf_name")
        if name:
            out.append((f.get("pref"), name.split(":")[0].removesuffix(".o")))
    return out


def map_dump(pin_path):
    """Entries of a pinned map as bpftool formats them with BTF: [{key, value}]."""
    out = json.loads(sh("bpftool", "-j", "map", "dump", "pinned", pin_path).stdout)
    return [e.get("formatted", e) for e in out]


def parse_metrics(text):
    """Prometheus text into {(name, frozenset(labels)): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        if "{" in name_labels:
            name, _, rest = name_labels.partition("{")
            labels = {}
            for part in rest.rstrip("}").split('",'):
                if not part:
                    continue
                k, _, v = part.partition("=")
                labels[k] = v.strip('"')
            key = (name, frozenset(labels.items()))
        else:
            key = (name_labels, frozenset())
        out[key] = float(value)
    return out


def metric(m, name, **labels):
    return m.get((name, frozenset(labels.items())), 0.0)


def xdp_prog_name(ns, ifname):
    """Name of the XDP program attached to ifname in ns, or None."""
    r = sh("ip", "-d", "-j", "link", "show", "dev", ifname, ns=ns)
    info = json.loads(r.stdout)[0]
    xdp = info.get("xdp")
    if not xdp:
        return None
    prog = xdp.get("prog") or (xdp.get("attached") or [{}])[0].get("prog") or {}
    pid = prog.get("id")
    if not pid:
        return None
    p = json.loads(sh("bpftool", "-j", "prog", "show", "id", str(pid)).stdout)
    return p.get("name")


XDP_PASS_OBJ = os.path.join(ROOT, "build", "bpf", "xdp_pass.bpf.o")


def attach_pass_xdp(ns, ifname):
    """A pass-through XDP program (native mode) on a lab veth, so XDP_TX frames
    its peer sends are received (KERNEL-NOTES.md: veth drops them otherwise)."""
    if not os.path.exists(XDP_PASS_OBJ):
        subprocess.run(["make", "-C", ROOT, "--no-print-directory", "build/bpf/xdp_pass.bpf.o"],
                       check=True, capture_output=True)
    sh("ip", "link", "set", "dev", ifname, "xdpdrv", "obj", XDP_PASS_OBJ, "sec", "xdp", ns=ns)


def wait_tcp(ns, addr, port, timeout=10):
    """Until something accepts connections on addr:port inside ns."""
    import socket

    def accepts():
        with in_netns(ns):
            s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
        s.settimeout(0.5)
        try:
            s.connect((addr, port))
            return True
        except OSError:
            return False
        finally:
            s.close()
    if not wait_until(accepts, timeout=timeout):
        raise AssertionError(f"nothing listens on {addr}:{port} in {ns}")
