# SPDX-License-Identifier: AGPL-3.0-only
"""OpenAPI document and Swagger UI, served by the real agent."""
import os
import subprocess

from conftest import need
from lab import ROOT, sh


def test_docs_absent_unless_enabled(agent):
    assert agent.get("/api-docs/openapi.json").status_code == 404
    assert agent.get("/swagger-ui/").status_code == 404


def test_openapi_document_validates(make_agent, tmp_path):
    a = make_agent(agent_yaml="  swagger_ui: true\n").start()
    r = a.get("/api-docs/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["info"]["title"] == "eBPFsentinel Agent API"
    assert doc["info"]["version"] == "1.0.0"
    assert doc["info"]["license"]["name"] == "AGPL-3.0-only"
    for path in ("/healthz", "/readyz", "/metrics", "/api/v1/agent/status"):
        assert path in doc["paths"], path
    f = tmp_path / "served.json"
    f.write_bytes(r.content)
    need("node")
    v = subprocess.run(["node", os.path.join(ROOT, "tests", "openapi", "validate.js"), str(f)],
                       capture_output=True, text=True, timeout=60)
    assert v.returncode == 0, v.stdout + v.stderr
    # A bare /swagger-ui redirects.
    r = a.get("/swagger-ui", allow_redirects=False)
    assert r.status_code == 301 and r.headers["Location"] == "/swagger-ui/"


def test_swagger_ui_renders_our_document_in_chromium(make_agent, tmp_path):
    need("chromium")
    a = make_agent(agent_yaml="  swagger_ui: true\n").start()
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    r = sh("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
           "--virtual-time-budget=20000", "--dump-dom", a.url("/swagger-ui/"),
           ns=a.ns, check=False, timeout=120)
    dom = r.stdout
    # Rendered by Swagger UI's JavaScript from our document, not in the HTML we serve.
    assert "eBPFsentinel Agent API" in dom and 'class="title"' in dom, dom[:2000] + r.stderr[-2000:]
    assert "/api/v1/agent/status" in dom
    assert "/api/v1/config/reload" in dom
    assert "AGPL-3.0-only" in dom
