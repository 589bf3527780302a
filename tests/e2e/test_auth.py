# SPDX-License-Identifier: AGPL-3.0-only
"""Authentication and RBAC end to end (interfaces.md §4): tokens minted here
with python3-jwt (RS256, and forged HS256/none/expired/wrong-issuer/
wrong-audience variants), a JWKS served from the agent's namespace with key
rotation, API keys in both headers, roles, the write limiter, the acting
identity in the audit trail, and key material reloaded in place."""
import base64
import hashlib
import hmac
import http.server
import json
import signal
import threading
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from lab import in_netns, metric

ISS, AUD = "https://idp.example", "ebpfsentinel"


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_public(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def claims(**kw):
    now = int(time.time())
    c = {"sub": "alice", "iss": ISS, "aud": AUD, "iat": now, "exp": now + 300, "role": "admin"}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def token(key, kid=None, **kw):
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims(**kw), key, algorithm="RS256", headers=headers)


def b64(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forged_hs256(pub_pem, **kw):
    """HS256 keyed with the RSA public key: the algorithm-confusion attack."""
    signing = b64({"alg": "HS256", "typ": "JWT"}) + "." + b64(claims(**kw))
    sig = hmac.new(pub_pem, signing.encode(), hashlib.sha256).digest()
    return signing + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def forged_none(**kw):
    return b64({"alg": "none", "typ": "JWT"}) + "." + b64(claims(**kw)) + "."


def bearer(t):
    return {"Authorization": f"Bearer {t}"}


def error(r):
    return r.status_code, r.json()["error"]["code"], r.json()["error"]["message"]


API_KEYS = """  api_keys:
    - {name: ci-admin, key: adm-0123456789, role: admin}
    - {name: ci-operator, key: op-0123456789, role: operator, namespaces: [prod]}
    - {name: dashboard, key: view-0123456789}
"""


def jwt_auth(tmp_path):
    """A fresh RS256 key pair: (private key, public key path, auth section)."""
    key = new_key()
    kp = tmp_path / "jwt.pem"
    kp.write_bytes(pem_public(key))
    kp.chmod(0o600)
    return key, kp, (f"auth:\n  enabled: true\n  jwt:\n    public_key_path: {kp}\n"
                     f"    issuer: {ISS}\n    audience: {AUD}\n")


@pytest.fixture
def jwt_agent(make_agent, tmp_path):
    key, kp, auth = jwt_auth(tmp_path)
    auth += API_KEYS
    audit = f"audit:\n  storage_path: {tmp_path}/audit.redb\n"
    a = make_agent(extra_yaml=auth + audit).start()
    a.key, a.key_path, a.auth_yaml, a.audit_yaml = key, kp, auth, audit
    return a


def test_public_endpoints_stay_public_and_the_rest_needs_a_credential(jwt_agent):
    a = jwt_agent
    assert a.get("/healthz").status_code == 200
    assert a.get("/readyz").status_code == 200
    assert a.get("/metrics").status_code == 200  # metrics_auth_required is false
    r = a.get("/api/v1/agent/status")
    assert r.status_code == 401
    assert r.json() == {"error": {"code": "AUTHENTICATION_REQUIRED",
                                  "message": "authentication required: no token provided"}}
    # Other schemes are ignored.
    r = a.get("/api/v1/agent/status", headers={"Authorization": "Basic YTpi"})
    assert error(r)[2] == "authentication required: no token provided"


def test_rs256_tokens_and_every_forgery(jwt_agent):
    a = jwt_agent
    pub = pem_public(a.key)
    assert a.get("/api/v1/agent/status", headers=bearer(token(a.key))).status_code == 200
    # A JWT is accepted in X-API-Key as well (§4.2).
    assert a.get("/api/v1/config", headers={"X-API-Key": token(a.key)}).status_code == 200
    now = int(time.time())
    cases = [
        (forged_hs256(pub), "invalid token: unsupported algorithm 'HS256' (only RS256 is "
                            "accepted)"),
        (forged_none(), "invalid token: malformed token"),
        (token(a.key, exp=now - 120), "token expired"),
        (token(a.key, nbf=now + 600), "invalid token: token not yet valid (nbf)"),
        (token(a.key, iss="https://evil.example"), "invalid token: invalid issuer"),
        (token(a.key, aud="someone-else"), "invalid token: invalid audience"),
        (token(a.key, sub=None), "invalid token: missing or invalid 'sub' claim"),
        (token(new_key()), "invalid token: signature verification failed"),
    ]
    for t, msg in cases:
        r = a.get("/api/v1/agent/status", headers=bearer(t))
        assert error(r) == (401, "AUTHENTICATION_REQUIRED", msg), t
    # Within the 60 s leeway, still valid; an audience array containing ours is fine.
    assert a.get("/api/v1/agent/status",
                 headers=bearer(token(a.key, exp=now - 30))).status_code == 200
    assert a.get("/api/v1/agent/status",
                 headers=bearer(token(a.key, aud=["x", AUD]))).status_code == 200
    # A JWT-shaped credential gets the JWT error even though API keys exist (§12 item 27).
    r = a.get("/api/v1/agent/status", headers={"X-API-Key": token(a.key, exp=now - 120)})
    assert error(r)[2] == "token expired"


def test_api_keys_in_both_headers(jwt_agent):
    a = jwt_agent
    for h in (bearer("adm-0123456789"), {"X-API-Key": "adm-0123456789"},
              {"x-api-key": "view-0123456789"}):
        assert a.get("/api/v1/agent/status", headers=h).status_code == 200, h
    r = a.get("/api/v1/agent/status", headers={"X-API-Key": "adm-01234567890"})
    assert error(r) == (401, "AUTHENTICATION_REQUIRED", "invalid token: invalid API key")
    # Bearer wins over X-API-Key.
    r = a.get("/api/v1/agent/status",
              headers={"Authorization": "Bearer nope", "X-API-Key": "adm-0123456789"})
    assert r.status_code == 401


def test_roles_on_write_endpoints_and_the_acting_identity_is_audited(jwt_agent):
    a = jwt_agent
    r = a.post("/api/v1/config/reload", headers={"X-API-Key": "view-0123456789"})
    assert error(r) == (403, "INSUFFICIENT_ROLE", "viewer role cannot perform write operations")
    r = a.post("/api/v1/config/reload", headers=bearer(token(a.key, role="VIEWER")))
    assert r.status_code == 403
    r = a.post("/api/v1/config/reload", headers=bearer(token(a.key, role="unknown")))
    assert r.status_code == 403  # unknown role: viewer
    assert a.post("/api/v1/config/reload",
                  headers={"X-API-Key": "op-0123456789"}).status_code == 200
    assert a.wait_log('"trigger":"api"')
    # The reload's audit records name who asked for it.
    hdr = {"X-API-Key": "view-0123456789"}
    deadline = time.time() + 5
    entries = []
    while time.time() < deadline and not entries:
        entries = a.get("/api/v1/audit/logs", params={"rule_id": "firewall-config"},
                        headers=hdr).json()["entries"]
        time.sleep(0.1)
    assert entries and entries[0]["sub"] == "ci-operator", entries
    hist = a.get("/api/v1/audit/rules/firewall-config/history", headers=hdr).json()
    assert hist["entries"][0]["sub"] == "ci-operator"
    assert hist["entries"][0]["actor"] == "config_reload"
    # Admin by token: allowed, and named by its sub.
    time.sleep(0.3)
    assert a.post("/api/v1/config/reload",
                  headers=bearer(token(a.key, sub="root@example"))).status_code == 200
    deadline = time.time() + 5
    while time.time() < deadline:
        h = a.get("/api/v1/audit/rules/firewall-config/history", headers=hdr).json()
        if len(h["entries"]) == 2:
            break
        time.sleep(0.1)
    assert h["entries"][0]["sub"] == "root@example"


def test_firewall_rule_history_names_each_token_sub(make_agent, tmp_path):
    """Created, changed and deleted through the API: three versions with the
    right before/after documents and the sub of the token that made each."""
    key, _, auth = jwt_auth(tmp_path)
    a = make_agent(extra_yaml=(
        auth +
        f"audit:\n  storage_path: {tmp_path}/audit.redb\n"
        "firewall:\n  mode: block\n  rules: []\n")).start()
    body = {"id": "web", "priority": 7, "action": "deny", "protocol": "tcp", "dst_port": 8081}
    r = a.post("/api/v1/firewall/rules", json=body,
               headers=bearer(token(key, sub="alice")))
    assert r.status_code == 201, r.text
    created = r.json()
    r = a.request("PUT", "/api/v1/firewall/rules/web", json=dict(body, dst_port="8081-8089"),
                  headers=bearer(token(key, sub="bob")))
    assert r.status_code == 200, r.text
    changed = r.json()
    r = a.delete("/api/v1/firewall/rules/web", headers=bearer(token(key, sub="carol")))
    assert r.status_code == 204
    hdr = bearer(token(key, sub="auditor", role="viewer"))
    deadline = time.time() + 5
    while time.time() < deadline:
        h = a.get("/api/v1/audit/rules/web/history", headers=hdr).json()
        if len(h["entries"]) == 3:
            break
        time.sleep(0.1)
    assert h["rule_id"] == "web"
    got = [(e["version"], e["action"], e["actor"], e["sub"], e["component"])
           for e in h["entries"]]
    assert got == [(3, "rule_removed", "api", "carol", "firewall"),
                   (2, "rule_updated", "api", "bob", "firewall"),
                   (1, "rule_added", "api", "alice", "firewall")], got
    v3, v2, v1 = h["entries"]
    assert v1["before"] is None and json.loads(v1["after"]) == created
    assert json.loads(v2["before"]) == created and json.loads(v2["after"]) == changed
    assert json.loads(v2["after"])["dst_port"] == "8081-8089"
    assert json.loads(v3["before"]) == changed and v3["after"] is None


def test_namespace_rule_on_firewall_writes(make_agent, tmp_path):
    """§4.4 NS rule: an operator writes only namespace:<granted> rules; global and
    interface scopes need admin; for delete and replace the stored scope counts."""
    key, _, auth = jwt_auth(tmp_path)
    a = make_agent(extra_yaml=(
        auth +
        "firewall:\n  rules:\n    - {id: dev-rule, priority: 9, action: deny, "
        "protocol: udp, dst_port: 9, scope: \"namespace:dev\"}\n")).start()
    prod = bearer(token(key, sub="op", role="operator", namespaces=["prod"]))
    none = bearer(token(key, sub="op0", role="operator", namespaces=[]))
    viewer = bearer(token(key, sub="v", role="viewer"))
    p = "/api/v1/firewall/rules"

    def body(rid, scope):
        return {"id": rid, "priority": 5, "action": "deny", "protocol": "tcp",
                "dst_port": 7000, "scope": scope}

    assert error(a.post(p, json=body("g", "global"), headers=prod)) == (
        403, "INSUFFICIENT_ROLE", "global and interface scopes require admin role")
    assert error(a.post(p, json=body("i", "interface:lo"), headers=prod))[:2] == (
        403, "INSUFFICIENT_ROLE")
    assert error(a.post(p, json=body("d", "namespace:dev"), headers=prod))[:2] == (
        403, "NAMESPACE_FORBIDDEN")
    assert error(a.post(p, json=body("n", "namespace:prod"), headers=none))[:2] == (
        403, "NAMESPACE_FORBIDDEN"), "an explicit empty array grants none"
    assert error(a.post(p, json=body("v", "namespace:prod"), headers=viewer))[:2] == (
        403, "INSUFFICIENT_ROLE")
    r = a.post(p, json=body("mine", "namespace:prod"), headers=prod)
    assert r.status_code == 201, r.text
    # Moving a rule to a namespace the operator lacks is refused; so is touching dev's.
    assert error(a.request("PUT", p + "/mine", json=body("mine", "namespace:dev"),
                           headers=prod))[:2] == (403, "NAMESPACE_FORBIDDEN")
    assert error(a.delete(p + "/dev-rule", headers=prod))[:2] == (403, "NAMESPACE_FORBIDDEN")
    assert a.delete(p + "/ghost", headers=prod).status_code == 404
    assert a.delete(p + "/mine", headers=prod).status_code == 204
    assert a.delete(p + "/dev-rule", headers=bearer(token(key))).status_code == 204
    ids = [x["id"] for x in a.get(p, headers=viewer).json()]
    assert "mine" not in ids and "dev-rule" not in ids and "g" not in ids


def writes_until_429(a, hdr):
    """POST reloads on one keep-alive connection until the limiter answers 429.
    Returns (writes accepted, the 429 response); the bucket (60) refills one
    token a second, so a slow machine gets a few more through."""
    n = 0
    t0 = time.monotonic()
    with in_netns(a.ns), requests.Session() as s:
        s.trust_env = False
        while True:
            r = s.post(a.url("/api/v1/config/reload"), headers=hdr, verify=a.ca or True,
                       timeout=10)
            if r.status_code == 429:
                break
            assert r.status_code in (200, 500), r.text  # 500: a reload was already queued
            n += 1
            assert n < 200, "the write limiter never answered 429"
    assert n <= 60 + int(time.monotonic() - t0) + 1, (n, time.monotonic() - t0)
    return n, r


def test_write_rate_limit_after_authentication(jwt_agent):
    a = jwt_agent
    hdr = {"X-API-Key": "adm-0123456789"}
    # 401s do not spend the bucket.
    for _ in range(5):
        assert a.post("/api/v1/config/reload").status_code == 401
    n, r = writes_until_429(a, hdr)
    assert 60 <= n, n
    assert r.text == f"Too Many Requests! Wait for {r.headers['retry-after']}s"
    assert r.headers["x-ratelimit-after"] == r.headers["retry-after"] == "1"
    # Reads are not limited.
    assert a.get("/api/v1/agent/status", headers=hdr).status_code == 200
    time.sleep(1.1)
    assert a.post("/api/v1/config/reload", headers=hdr).status_code in (200, 500)


def test_cli_sends_the_token(jwt_agent):
    a = jwt_agent
    port = str(a.http_port)
    r = a.cli("status", "--port", port)
    assert r.returncode == 1
    assert r.stderr.strip() == ("Error: authentication required: no token provided "
                                "(AUTHENTICATION_REQUIRED): 401 Unauthorized")
    r = a.cli("--token", "view-0123456789", "status", "--port", port)
    assert r.returncode == 0, r.stderr
    r = a.cli("-o", "json", "status", "--port", port, env={"EBPFSENTINEL_TOKEN": token(a.key)})
    assert r.returncode == 0 and json.loads(r.stdout)["ebpf_loaded"] is True


def test_key_material_reloads_in_place(jwt_agent):
    a = jwt_agent
    old = a.key
    new = new_key()
    a.key_path.write_bytes(pem_public(new))
    # New API key list: the operator key is gone, a new one appears.
    keys = API_KEYS.replace("    - {name: ci-operator, key: op-0123456789, role: operator, "
                            "namespaces: [prod]}\n",
                            "    - {name: late, key: late-0123456789, role: operator}\n")
    auth = a.auth_yaml.replace(API_KEYS, keys)
    a.write_config(extra_yaml=auth + a.audit_yaml)
    a.send(signal.SIGHUP)
    deadline = time.time() + 5
    while time.time() < deadline and \
            a.get("/api/v1/agent/status", headers=bearer(token(new))).status_code != 200:
        time.sleep(0.1)
    assert a.get("/api/v1/agent/status", headers=bearer(token(new))).status_code == 200
    assert a.get("/api/v1/agent/status", headers=bearer(token(old))).status_code == 401
    assert a.get("/api/v1/agent/status", headers={"X-API-Key": "late-0123456789"}).ok
    assert a.get("/api/v1/agent/status",
                 headers={"X-API-Key": "op-0123456789"}).status_code == 401
    # A broken key file rejects the whole reload; the running key stays.
    a.key_path.write_text("not a key\n")
    a.send(signal.SIGHUP)
    assert a.wait_log("config reload rejected: auth: apply failed")
    assert a.get("/api/v1/agent/status", headers=bearer(token(new))).status_code == 200
    m = a.metrics()
    assert metric(m, "ebpfsentinel_rules_reloads_total", component="auth",
                  result="failure") >= 1


def test_metrics_auth_required(make_agent):
    a = make_agent(extra_yaml="auth:\n  enabled: true\n  metrics_auth_required: true\n"
                   + API_KEYS).start()
    assert a.get("/metrics").status_code == 401
    assert a.get("/metrics", headers={"X-API-Key": "view-0123456789"}).status_code == 200
    assert a.get("/healthz").status_code == 200


def test_unreadable_jwt_key_is_fatal(make_agent, tmp_path):
    a = make_agent(extra_yaml=f"auth:\n  enabled: true\n  jwt:\n    public_key_path: "
                   f"{tmp_path}/missing.pem\n")
    with pytest.raises(AssertionError, match="agent exited with 1"):
        a.start()
    assert "cannot read JWT public key" in a.log()


class Jwks:
    """A JWKS endpoint on loopback inside a namespace, counting fetches."""

    def __init__(self, ns, keys):
        self.keys = dict(keys)  # kid -> private key
        self.hits = 0
        self.fail = False
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                if outer.fail:
                    self.send_error(503)
                    return
                doc = {"keys": []}
                for kid, k in outer.keys.items():
                    j = json.loads(RSAAlgorithm.to_jwk(k.public_key()))
                    j.update(kid=kid, use="sig", alg="RS256")
                    doc["keys"].append(j)
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        with in_netns(ns):
            self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def jwks(lab):
    servers = []

    def make(keys):
        s = Jwks(lab.agent_ns, keys)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def test_oidc_jwks_with_key_rotation(make_agent, jwks, tmp_path):
    k1, k2, k3 = new_key(), new_key(), new_key()
    srv = jwks({"k1": k1})
    a = make_agent(extra_yaml=f"auth:\n  enabled: true\n  oidc:\n    jwks_url: {srv.url}\n"
                   f"    issuer: {ISS}\n    audience: {AUD}\n").start()
    assert srv.hits == 1
    assert a.wait_log("is not https")
    assert a.get("/api/v1/agent/status", headers=bearer(token(k1, kid="k1"))).status_code == 200
    # Wrong kid, missing kid, HS256 with a JWK's material.
    r = a.get("/api/v1/agent/status", headers=bearer(token(k1)))
    assert error(r)[2] == "invalid token: token missing 'kid' header"
    r = a.get("/api/v1/agent/status", headers=bearer(token(k2, kid="k1")))
    assert error(r)[2] == "invalid token: signature verification failed"
    # The IdP rotates to k2: the unknown kid triggers one refetch.
    srv.keys = {"k2": k2}
    assert a.get("/api/v1/agent/status", headers=bearer(token(k2, kid="k2"))).status_code == 200
    assert srv.hits == 2
    assert a.get("/api/v1/agent/status", headers=bearer(token(k1, kid="k1"))).status_code == 401
    # Another unknown kid within 60 s: no new fetch, refused.
    srv.keys = {"k2": k2, "k3": k3}
    r = a.get("/api/v1/agent/status", headers=bearer(token(k3, kid="k3")))
    assert error(r)[2] == "invalid token: no JWK found for kid 'k3'"
    assert srv.hits == 2
    # A reload refetches; a failed refetch keeps the keys in use.
    a.send(signal.SIGHUP)
    assert a.wait_log('"trigger":"reload"')
    assert a.get("/api/v1/agent/status", headers=bearer(token(k3, kid="k3"))).status_code == 200
    srv.fail = True
    a.send(signal.SIGHUP)
    assert a.wait_log("JWKS refresh failed; keeping the current keys")
    assert a.get("/api/v1/agent/status", headers=bearer(token(k3, kid="k3"))).status_code == 200
    assert a.get("/api/v1/agent/status", headers=bearer(token(k2, kid="k2"))).status_code == 200


def test_oidc_startup_fetch_failure_is_fatal(make_agent, jwks):
    srv = jwks({})
    srv.fail = True
    a = make_agent(extra_yaml=f"auth:\n  enabled: true\n  oidc:\n    jwks_url: {srv.url}\n")
    with pytest.raises(AssertionError, match="agent exited with 1"):
        a.start()
    assert "cannot fetch the OIDC key set" in a.log()
