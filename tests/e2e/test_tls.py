# SPDX-License-Identifier: AGPL-3.0-only
"""TLS end to end (interfaces.md §9, §12 items 16, 25, 45): a test CA made
here with openssl, TLS 1.3 only, the certificate swapped by a reload (and
kept when the new pair is broken), failed handshakes that disturb nobody,
the CLI's --tls/--ca-cert/--insecure, and the error model, auth and write
limiter over HTTPS."""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest
import requests

from conftest import need
from lab import in_netns, sh
from test_auth import writes_until_429


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Pki:
    """A throw-away CA and server certificates for 127.0.0.1."""

    def __init__(self, d):
        self.d = str(d)
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
                "ca.pem", "-days", "2", "-subj", "/CN=es-test-ca", cwd=self.d)
        with open(os.path.join(self.d, "san.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        self.ca = os.path.join(self.d, "ca.pem")

    def server(self, name, keytype="rsa"):
        """Issue name.pem/name.key; keytype rsa (PKCS#8), rsa1 (PKCS#1) or ec (SEC1)."""
        key = f"{name}.key"
        if keytype == "ec":
            openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key,
                    cwd=self.d)
        else:
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out",
                    key, cwd=self.d)
            if keytype == "rsa1":
                openssl("rsa", "-in", key, "-traditional", "-out", key, cwd=self.d)
        openssl("req", "-new", "-key", key, "-out", f"{name}.csr", "-subj", f"/CN={name}",
                cwd=self.d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", "san.ext",
                cwd=self.d)
        os.chmod(os.path.join(self.d, key), 0o600)
        return os.path.join(self.d, f"{name}.pem"), os.path.join(self.d, key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    need("openssl")
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.pairs = {n: p.server(n, t) for n, t in
               (("srv1", "rsa"), ("srv2", "rsa"), ("ec", "ec"), ("pkcs1", "rsa1"))}
    return p


def tls_agent(make_agent, pki, tmp_path, extra="", pair="srv1", start=True):
    cert, key = tmp_path / "tls.pem", tmp_path / "tls.key"
    shutil.copy(pki.pairs[pair][0], cert)
    shutil.copy(pki.pairs[pair][1], key)
    os.chmod(key, 0o600)
    a = make_agent(agent_yaml=f"  tls:\n    enabled: true\n    cert_path: {cert}\n"
                              f"    key_path: {key}\n", extra_yaml=extra)
    a.ca = pki.ca
    a.cert_path, a.key_path = cert, key
    return a.start() if start else a


def peer_cn(a):
    """Subject CN of the certificate a new connection is given."""
    ctx = ssl.create_default_context(cafile=a.ca)
    with in_netns(a.ns), socket.create_connection(("127.0.0.1", a.http_port), 5) as s, \
            ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
        subj = dict(x[0] for x in t.getpeercert()["subject"])
        return subj["commonName"], t.version()


def s_client(a, *flags):
    return sh("openssl", "s_client", "-connect", f"127.0.0.1:{a.http_port}", *flags,
              ns=a.ns, check=False, input="", timeout=15)


def test_only_tls13_is_offered(make_agent, pki, tmp_path):
    a = tls_agent(make_agent, pki, tmp_path)
    assert peer_cn(a) == ("srv1", "TLSv1.3")
    r = s_client(a, "-tls1_3", "-CAfile", pki.ca)
    assert r.returncode == 0 and "TLSv1.3" in r.stdout, r.stdout + r.stderr
    assert "Verify return code: 0 (ok)" in r.stdout
    r = s_client(a, "-tls1_2")
    assert r.returncode != 0, r.stdout
    assert "Cipher is (NONE)" in r.stdout or "alert" in r.stderr, r.stdout + r.stderr
    # Plain HTTP on the TLS port is not served.
    with pytest.raises(requests.RequestException):
        with in_netns(a.ns):
            requests.get(f"http://127.0.0.1:{a.http_port}/healthz", timeout=3)
    # No client certificate is asked for.
    assert "Acceptable client certificate CA names" not in \
        s_client(a, "-tls1_3", "-CAfile", pki.ca).stdout
    # curl with the test CA.
    r = sh("curl", "-sS", "--cacert", pki.ca, f"https://127.0.0.1:{a.http_port}/readyz",
           ns=a.ns, check=False)
    assert r.returncode == 0 and '"ebpf_loaded":true' in r.stdout, r.stderr
    assert "file is world-readable" not in a.log()


@pytest.mark.parametrize("pair", ["ec", "pkcs1"])
def test_key_formats(make_agent, pki, tmp_path, pair):
    a = tls_agent(make_agent, pki, tmp_path, pair=pair)
    assert peer_cn(a) == (pair, "TLSv1.3")


def test_bad_material_is_fatal(make_agent, pki, tmp_path):
    a = tls_agent(make_agent, pki, tmp_path, start=False)
    a.cert_path.write_text("no certificate here\n")
    with pytest.raises(AssertionError, match="agent exited with 1"):
        a.start()
    assert "Error: TLS: no certificate in" in a.stderr()
    b = tls_agent(make_agent, pki, tmp_path, start=False)
    shutil.copy(pki.pairs["srv2"][1], b.key_path)  # a key of another certificate
    with pytest.raises(AssertionError, match="agent exited with 1"):
        b.start()
    assert "does not match the certificate" in b.stderr()


def test_reload_swaps_the_certificate_and_keeps_it_when_the_new_pair_fails(
        make_agent, pki, tmp_path):
    a = tls_agent(make_agent, pki, tmp_path)
    with in_netns(a.ns):
        session = requests.Session()
        session.trust_env = False
        assert session.get(a.url("/healthz"), verify=pki.ca, timeout=5).ok
    shutil.copy(pki.pairs["srv2"][0], a.cert_path)
    shutil.copy(pki.pairs["srv2"][1], a.key_path)
    a.send(signal.SIGHUP)
    assert a.wait_log("TLS material reloaded")
    assert peer_cn(a)[0] == "srv2"
    # The connection opened before the reload carries on.
    with in_netns(a.ns):
        assert session.get(a.url("/healthz"), verify=pki.ca, timeout=5).ok
    # A broken pair: logged, the running certificate stays, the rest of the reload applies.
    a.key_path.write_text("garbage\n")
    a.send(signal.SIGHUP)
    assert a.wait_log("TLS material not reloaded; the current certificate stays in use")
    assert peer_cn(a)[0] == "srv2"
    assert a.get("/healthz").ok
    session.close()


def test_failed_handshakes_do_not_disturb_other_connections(make_agent, pki, tmp_path):
    a = tls_agent(make_agent, pki, tmp_path)
    with in_netns(a.ns):
        session = requests.Session()
        session.trust_env = False
        assert session.get(a.url("/healthz"), verify=pki.ca, timeout=5).ok
        stop = threading.Event()
        errors = []

        def abuse():
            while not stop.is_set():
                try:
                    with socket.create_connection(("127.0.0.1", a.http_port), 2) as s:
                        s.sendall(b"\x16\x03\x01\x00\x05hello garbage\r\n\r\n")
                        s.recv(100)
                except OSError:
                    pass
                try:
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
                    with socket.create_connection(("127.0.0.1", a.http_port), 2) as s, \
                            ctx.wrap_socket(s):
                        errors.append("TLS 1.2 accepted")
                except (OSError, ssl.SSLError):
                    pass

        threads = [threading.Thread(target=abuse) for _ in range(4)]
        for t in threads:
            t.start()
        # Half-open connections that never finish a handshake.
        idle = [socket.create_connection(("127.0.0.1", a.http_port), 2) for _ in range(8)]
        t0 = time.time()
        ok = 0
        while time.time() - t0 < 2.0:
            assert session.get(a.url("/api/v1/agent/status"), verify=pki.ca, timeout=5).ok
            assert requests.get(a.url("/healthz"), verify=pki.ca, timeout=5).ok
            ok += 1
        stop.set()
        for t in threads:
            t.join()
        for s in idle:
            s.close()
        session.close()
    assert not errors
    assert ok >= 5
    assert a.proc.poll() is None


def test_cli_over_tls(make_agent, pki, tmp_path):
    a = tls_agent(make_agent, pki, tmp_path)
    port = str(a.http_port)
    r = a.cli("status", "--port", port, "--tls", "--ca-cert", pki.ca)
    assert r.returncode == 0 and "ebpf_loaded" in r.stdout, r.stderr
    r = a.cli("-o", "json", "health", "--port", port, "--ca-cert", pki.ca,
              env={"EBPFSENTINEL_TLS": "1"})
    assert r.returncode == 0, r.stderr
    r = a.cli("health", "--port", port, "--tls")  # unknown CA
    assert r.returncode == 1 and r.stderr.startswith("Error: request to agent at https://"), \
        r.stderr
    r = a.cli("health", "--port", port, "--tls", "--insecure")
    assert r.returncode == 0, r.stderr
    r = a.cli("health", "--port", port)  # plain HTTP to a TLS port
    assert r.returncode == 1


def test_auth_limiter_and_error_model_over_https(make_agent, pki, tmp_path):
    a = tls_agent(make_agent, pki, tmp_path, extra="auth:\n  enabled: true\n  api_keys:\n"
                  "    - {name: ops, key: k-0123456789, role: admin}\n")
    hdr = {"X-API-Key": "k-0123456789"}
    r = a.get("/api/v1/agent/status")
    assert r.status_code == 401 and r.json()["error"]["code"] == "AUTHENTICATION_REQUIRED"
    assert a.get("/api/v1/agent/status", headers=hdr).ok
    r = a.get("/api/v1/nothing", headers=hdr)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    r = a.post("/api/v1/config/reload", headers=dict(hdr, **{"Content-Type":
                                                             "application/json"}),
               data=b"x" * (64 * 1024 + 1))
    assert r.status_code == 413 and r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    # The limiter sees the peer over TLS (the reference answered 500 here); the
    # oversized write above took the first token.
    n, r = writes_until_429(a, hdr)
    assert n >= 59, n
    assert r.text.startswith("Too Many Requests! Wait for ")
    assert r.headers["retry-after"] == r.headers["x-ratelimit-after"]


def test_testssl_reports_only_tls13(make_agent, pki, tmp_path):
    need("testssl")
    a = tls_agent(make_agent, pki, tmp_path)
    r = sh("testssl", "--protocols", "--quiet", "--color", "0", "--warnings", "off",
           "--ip", "one", f"127.0.0.1:{a.http_port}", ns=a.ns, check=False, timeout=300)
    out = r.stdout
    lines = {}
    for l in out.splitlines():
        w = l.split()
        if w and w[0].startswith("SSLv"):
            lines[w[0]] = l
        elif len(w) > 1 and w[0] == "TLS" and w[1][0].isdigit():
            lines[f"TLS {w[1]}"] = l
    offered = [k for k, l in lines.items() if "offered" in l and "not offered" not in l]
    assert offered == ["TLS 1.3"], out
    assert {"SSLv2", "SSLv3", "TLS 1", "TLS 1.1", "TLS 1.2"} <= \
        {k for k, l in lines.items() if "not offered" in l}, out
