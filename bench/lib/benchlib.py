# SPDX-License-Identifier: AGPL-3.0-only
"""Shared pieces of the benchmark topics (bench/<topic>/run).

The method (ARCHITECTURE §7, issue 8): generator and system under test on one
CPU; two systems compared by alternating short bursts A B B A across two
pre-built veth pairs, each adjacent A/B pair giving one ratio; the median ratio
and its interquartile range are reported, and a comparison whose range exceeds
10 % of the median is flagged as noisy. Every raw sample goes to the topic's
JSON so the ratios can be recomputed.

Namespaces, veths and the agent come from tests/e2e/lab.py; everything is torn
down by name/PID, even on failure.
"""
import contextlib
import datetime
import fcntl
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import lab  # noqa: E402  (after the path change)

ESGEN = os.path.join(ROOT, "build", "bench-bin", "esgen")
AGENT = lab.AGENT
SMOKE = os.environ.get("BENCH_SMOKE") == "1"
OUT = os.environ.get("BENCH_OUT") or os.path.join(ROOT, "build", "bench", "manual")
CPU = int(os.environ.get("BENCH_CPU", str(max(0, (os.cpu_count() or 1) - 1))))
NOISY_IQR = 0.10
# Frames are addressed to this MAC: receiving veths take it, so the IP stack
# does not discard them as PACKET_OTHERHOST before netfilter hooks.
SUT_MAC = "02:00:00:00:00:02"
LOCK = "/run/lock/ebpfsentinel-bench.lock"


def log(msg):
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def sh(*cmd, ns=None, check=True, timeout=120, **kw):
    return lab.sh(*[str(c) for c in cmd], ns=ns, check=check, timeout=timeout, **kw)


@contextlib.contextmanager
def bench_lock():
    """One benchmark at a time on this machine: concurrent runs would skew
    each other, and xdp-filter keeps its maps in one global pin directory."""
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    with open(LOCK, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


# ---- statistics ----------------------------------------------------------------

def quartiles(values):
    v = sorted(values)
    if not v:
        return None, None, None
    if len(v) == 1:
        return v[0], v[0], v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[0], statistics.median(v), q[2]


def summary(values):
    """Median, quartiles, IQR relative to the median, and the noisy flag."""
    q1, med, q3 = quartiles(values)
    if med is None:
        return {"n": 0}
    rel = (q3 - q1) / abs(med) if med else None
    return {"n": len(values), "median": med, "q1": q1, "q3": q3,
            "iqr_rel": rel, "noisy": rel is None or rel > NOISY_IQR}


def paired_ratios(bursts, a, b, key="pps"):
    """Bursts in A B B A order: each consecutive (A, B) or (B, A) couple gives
    one ratio A/B."""
    out = []
    for i in range(0, len(bursts) - 1, 2):
        x, y = bursts[i], bursts[i + 1]
        ra = x if x["target"] == a else y
        rb = y if ra is x else x
        if ra["target"] == a and rb["target"] == b and rb[key]:
            out.append(ra[key] / rb[key])
    return out


def block_ratios(runs, a, b, block, key="pps"):
    """Runs in palindromic blocks (e.g. A B C C B A) of `block` runs: one
    ratio mean(A)/mean(B) per block; drift cancels within a block."""
    out = []
    for i in range(0, len(runs) - block + 1, block):
        blk = runs[i:i + block]
        va = [r[key] for r in blk if r["target"] == a]
        vb = [r[key] for r in blk if r["target"] == b]
        if va and vb and sum(vb):
            out.append((sum(va) / len(va)) / (sum(vb) / len(vb)))
    return out


# ---- machine description --------------------------------------------------------

def _first_line(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def machine():
    cpu = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    try:
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    except OSError:
        debian = None
    git = _first_line(["git", "-C", ROOT, "rev-parse", "HEAD"])
    return {
        "hostname": platform.node(), "kernel": platform.release(), "arch": platform.machine(),
        "cpu_model": cpu, "cpus": os.cpu_count(), "mem_kib": mem_kb, "debian": debian,
        "loadavg": os.getloadavg(), "bench_cpu": CPU, "git_commit": git,
        "tools": {
            "clang": _first_line(["clang", "--version"]),
            "xdp-filter": _first_line(["xdp-filter", "--version"]),
            "nft": _first_line(["nft", "--version"]),
            "iptables-legacy": _first_line(["iptables-legacy", "--version"]),
            "iperf3": _first_line(["iperf3", "--version"]),
            "valgrind": _first_line(["valgrind", "--version"]),
        },
    }


# ---- results ---------------------------------------------------------------------

class Topic:
    """Collects a topic's parameters, raw samples and derived rows, writes
    $BENCH_OUT/<name>.json and prints the table."""

    def __init__(self, name, params=None):
        self.name = name
        self.started = time.time()
        self.doc = {"topic": name, "smoke": SMOKE,
                    "started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                    "machine": machine(), "params": params or {}, "comparisons": [],
                    "notes": []}

    def note(self, text):
        log(text)
        self.doc["notes"].append(text)

    def add(self, group, what, unit, stats, raw, **extra):
        """One row: stats is summary() output; raw holds every sample."""
        row = {"group": group, "what": what, "unit": unit, **stats, "raw": raw, **extra}
        self.doc["comparisons"].append(row)
        return row

    def write(self):
        self.doc["seconds"] = round(time.time() - self.started, 1)
        self.doc["loadavg_end"] = os.getloadavg()
        os.makedirs(OUT, exist_ok=True)
        path = os.path.join(OUT, f"{self.name}.json")
        with open(path, "w") as f:
            json.dump(self.doc, f, indent=1)
        self.print_table()
        print(f"  ({self.name}: {self.doc['seconds']} s, raw samples in {path})")

    def print_table(self):
        rows = self.doc["comparisons"]
        print(f"\n== {self.name}" + (" (smoke: figures meaningless)" if SMOKE else ""))
        if not rows:
            print("  (no figures)")
        width = max([len(r["what"]) for r in rows] + [20])
        group = None
        for r in rows:
            if r["group"] != group:
                group = r["group"]
                print(f"  -- {group}")
            print("  " + fmt_row(r, width))
        for n in self.doc["notes"]:
            print(f"  note: {n}")


def fmt_num(v, unit):
    if v is None:
        return "-"
    if unit == "ratio":
        return f"{v:.3f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}"


def fmt_row(r, width):
    if not r.get("n"):
        return f"{r['what']:<{width}}  {'n/a':>12}  {r.get('why', '')}"
    iqr = r.get("iqr_rel")
    spread = f"IQR {100 * iqr:5.1f}%" if iqr is not None else ""
    flag = "  NOISY" if r.get("noisy") and r["n"] > 1 and r["unit"] == "ratio" else ""
    extra = f"  {r['info']}" if r.get("info") else ""
    return (f"{r['what']:<{width}}  {fmt_num(r['median'], r['unit']):>12} {r['unit']:<7}"
            f" [{fmt_num(r['q1'], r['unit'])} .. {fmt_num(r['q3'], r['unit'])}]"
            f" {spread} n={r['n']}{flag}{extra}")


# ---- esgen -------------------------------------------------------------------------

def esgen(*args, timeout=600):
    """Run esgen and return its JSON lines."""
    r = subprocess.run([ESGEN, *[str(a) for a in args]], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"esgen {' '.join(map(str, args))} failed: {r.stderr.strip()}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def live(gen_ns, devs, burst, rounds, **shape):
    """Bursts from gen_ns out of devs (one or two veths), A B B A order."""
    args = ["live", "--netns", gen_ns, "--dev", ",".join(devs), "--cpu", CPU,
            "--burst", burst, "--rounds", rounds]
    return esgen(*args, *shape_args(**shape))


def shape_args(v6=False, tcp=False, size=64, flows=1):
    out = ["--size", size, "--flows", flows]
    if v6:
        out.append("--v6")
    if tcp:
        out.append("--tcp")
    return out


# ---- namespaces and interfaces --------------------------------------------------

def veth_to(lb, gen_ns, sut_ns, mac=SUT_MAC, gro=False):
    """A veth pair gen_ns <-> sut_ns; the SUT end takes the frames' MAC."""
    g, s = lb.link(gen_ns, sut_ns)
    sh("ip", "link", "set", s, "address", mac, ns=sut_ns)
    if gro:
        sh("ethtool", "-K", s, "gro", "on", ns=sut_ns)
    return g, s


def xdp_attach_sink(ns, dev):
    esgen("attach", "--netns", ns, "--dev", dev)


def if_stats(ns, dev):
    """rx/tx counters and XDP counters of dev (ethtool -S of veth)."""
    out = {}
    r = sh("ethtool", "-S", dev, ns=ns, check=False)
    for line in r.stdout.splitlines():
        k, _, v = line.strip().partition(":")
        if v.strip().isdigit():
            out[k] = int(v)
    j = json.loads(sh("ip", "-s", "-j", "link", "show", "dev", dev, ns=ns).stdout)[0]
    out["rx_packets"] = j["stats64"]["rx"]["packets"]
    out["rx_dropped"] = j["stats64"]["rx"]["dropped"]
    return out


def snmp(ns, proto="Udp"):
    """Counters of /proc/net/snmp (or snmp6 for 'Udp6') in namespace ns."""
    if proto.endswith("6"):
        r = sh("cat", "/proc/net/snmp6", ns=ns)
        return {k: int(v) for k, v in (line.split() for line in r.stdout.splitlines())
                if k.startswith(proto)}
    lines = [line.split() for line in sh("cat", "/proc/net/snmp", ns=ns).stdout.splitlines()
             if line.startswith(proto + ":")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))


# ---- the agent ------------------------------------------------------------------

class BenchAgent(lab.Agent):
    """The real agent in a namespace, with generous timeouts (thousands of
    rules take a while to compile) and startup timing."""

    def start_timed(self, timeout=60, wrapper=()):
        """Start (under wrapper, e.g. valgrind, when given) and wait for /readyz."""
        env = dict(os.environ)
        self.out = open(self.log_path, "ab")
        self.err = open(self.err_path, "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.ns}", *wrapper, AGENT, "--config",
             self.config_path],
            stdout=self.out, stderr=self.err, env=env)
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self.proc.returncode}: "
                                   f"{self.stderr()[-2000:]}\n{self.log()[-2000:]}")
            try:
                if self.get("/readyz", timeout=2).status_code == 200:
                    self.startup_s = time.monotonic() - t0
                    return self
            except Exception:  # noqa: BLE001 - any failure means not up yet
                pass
            time.sleep(0.01)
        raise RuntimeError("agent not ready in time\n" + self.log()[-3000:])

    def rss_kib(self):
        """RSS of the agent process (nsenter execs it, so the PID is the agent's)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def bpf_map_kib(self):
        """Kernel memory of the BPF maps the agent holds (memlock of each map fd)."""
        total, seen = 0, set()
        fd_dir = f"/proc/{self.proc.pid}/fd"
        for fd in os.listdir(fd_dir):
            try:
                if os.readlink(os.path.join(fd_dir, fd)) != "anon_inode:bpf-map":
                    continue
                info = {}
                with open(f"/proc/{self.proc.pid}/fdinfo/{fd}") as f:
                    for line in f:
                        k, _, v = line.partition(":")
                        info[k.strip()] = v.strip()
                if info.get("map_id") in seen:
                    continue
                seen.add(info.get("map_id"))
                total += int(info.get("memlock", 0))
            except OSError:
                continue
        return total // 1024


def shipped_sections(skip=("agent", "firewall")):
    """The top-level sections of config/ebpfsentinel.yaml (the configuration
    as shipped), minus those in skip, as YAML text."""
    out, keep = [], False
    with open(os.path.join(ROOT, "config", "ebpfsentinel.yaml")) as f:
        for line in f:
            if line[:1].isalpha():
                keep = line.split(":", 1)[0] not in skip
            if keep and not line.startswith("#"):
                out.append(line)
    return "".join(out)


RL_UNLIMITED = 1_000_000_000  # the largest default_rate accepted


def agent_config(rules_yaml="", firewall=True, others=False, mode="block"):
    """YAML after the agent section: the firewall with the given rules, and
    the other domains off, or as shipped in config/ebpfsentinel.yaml when
    others is set."""
    text = (f"firewall:\n  enabled: {'true' if firewall else 'false'}\n  mode: {mode}\n"
            f"  default_policy: pass\n  anti_lockout:\n    enabled: false\n")
    text += "  rules:\n" + rules_yaml if rules_yaml else "  rules: []\n"
    if others:
        # As shipped, except that the default rate limit (1 000 pps per source,
        # network.md §6.1) would measure the policy, not the cost: every packet
        # still goes through a per-source token bucket, one that never runs dry.
        return (text + shipped_sections(skip=("agent", "firewall", "ratelimit")) +
                f"ratelimit:\n  enabled: true\n  default_rate: {RL_UNLIMITED}\n"
                f"  default_burst: {RL_UNLIMITED}\n")
    for d in ("ids", "ips", "dlp", "ratelimit", "threatintel", "dns", "ddos", "conntrack",
              "nat", "l7", "loadbalancer", "alerting", "audit"):
        text += f"{d}:\n  enabled: false\n"
    return text


@contextlib.contextmanager
def cleanup_stack():
    """An ExitStack whose callbacks run even on SIGTERM."""
    stack = contextlib.ExitStack()
    old = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        with stack:
            yield stack
    finally:
        signal.signal(signal.SIGTERM, old)
