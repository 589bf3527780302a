# SPDX-License-Identifier: AGPL-3.0-only
"""gRPC under the control plane's security (interfaces.md §4.2, §4.5, §5.1, §9):
StreamAlerts refused without a valid bearer credential before any message,
health and reflection open, and the same TLS 1.3 certificate as REST,
swapped on both ports by a reload."""
import shutil
import signal
import ssl
import socket
import time

from lab import in_netns, sh
from test_auth import bearer, new_key, pem_public, token  # noqa: F401
from test_grpc import client, stubs  # noqa: F401 (fixture)
from test_tls import pki, tls_agent  # noqa: F401 (fixture)

KEYS = ("auth:\n  enabled: true\n  api_keys:\n"
        "    - {name: watcher, key: view-0123456789}\n")


def stream(agent, stubs, cred=None, target=None):
    args = ["stream", "", "", "1", "1.5"] + ([f"Bearer {cred}"] if cred else [])
    return client(agent, stubs, *args, target=target)


def test_stream_needs_a_valid_identity_health_and_reflection_do_not(make_agent, stubs,
                                                                      tmp_path):
    k = new_key()
    kp = tmp_path / "jwt.pem"
    kp.write_bytes(pem_public(k))
    a = make_agent(extra_yaml=KEYS + f"  jwt:\n    public_key_path: {kp}\n").start()
    r = stream(a, stubs)
    assert r[-1] == {"code": "UNAUTHENTICATED",
                     "details": "authentication required: no Bearer token provided"}, r
    assert not [x for x in r if "alert" in x]
    r = stream(a, stubs, "not-a-key")
    assert r[-1] == {"code": "UNAUTHENTICATED", "details": "invalid token: invalid API key"}
    r = stream(a, stubs, token(k, exp=int(time.time()) - 300))
    assert r[-1] == {"code": "UNAUTHENTICATED", "details": "token expired"}
    r = stream(a, stubs, token(new_key()))
    assert r[-1]["details"] == "invalid token: signature verification failed"
    # A viewer is enough: the stream needs an identity, not a role (§4.4).
    r = stream(a, stubs, "view-0123456789")
    assert r[0] == {"subscribed": True} and r[-1].get("code") == "DEADLINE_EXCEEDED", r
    r = stream(a, stubs, token(k, iss=None, aud=None, role="viewer"))
    assert r[-1].get("code") == "DEADLINE_EXCEEDED", r
    assert client(a, stubs, "health", "") == [{"status": "SERVING"}]
    services = client(a, stubs, "reflect")[0]["services"]
    assert "ebpfsentinel.v1.AlertStreamService" in services


def test_auth_off_streams_without_a_token(make_agent, stubs):
    a = make_agent().start()
    r = stream(a, stubs)
    assert r[0] == {"subscribed": True} and r[-1].get("code") == "DEADLINE_EXCEEDED", r


def fingerprint(ns, port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with in_netns(ns), socket.create_connection(("127.0.0.1", port), 5) as s, \
            ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
        return t.getpeercert(binary_form=True), t.version()


def test_one_certificate_tls13_only_on_both_ports_and_reloaded_on_both(make_agent, pki,
                                                                        stubs, tmp_path):
    a = tls_agent(make_agent, pki, tmp_path, extra=KEYS)
    rest, v1 = fingerprint(a.ns, a.http_port, pki.ca)
    grpc, v2 = fingerprint(a.ns, a.grpc_port, pki.ca)
    assert rest == grpc and v1 == v2 == "TLSv1.3"
    for port in (a.http_port, a.grpc_port):
        r = sh("openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", ns=a.ns,
               check=False, input="", timeout=15)
        assert r.returncode != 0, f"TLS 1.2 accepted on {port}"
        r = sh("openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3", "-alpn",
               "h2,http/1.1", "-CAfile", pki.ca, ns=a.ns, check=False, input="", timeout=15)
        assert r.returncode == 0 and "TLSv1.3" in r.stdout, r.stdout
    target = f"tls:{pki.ca}:127.0.0.1:{a.grpc_port}"
    r = stream(a, stubs, target=target)
    assert r[-1]["code"] == "UNAUTHENTICATED"
    r = stream(a, stubs, "view-0123456789", target=target)
    assert r[0] == {"subscribed": True}, r
    # New pair on disk, SIGHUP: both listeners hand out the new certificate.
    shutil.copy(pki.pairs["srv2"][0], a.cert_path)
    shutil.copy(pki.pairs["srv2"][1], a.key_path)
    a.send(signal.SIGHUP)
    assert a.wait_log("TLS material reloaded")
    rest2, _ = fingerprint(a.ns, a.http_port, pki.ca)
    grpc2, _ = fingerprint(a.ns, a.grpc_port, pki.ca)
    assert rest2 == grpc2 != rest
    assert client(a, stubs, "health", "", target=target) == [{"status": "SERVING"}]
