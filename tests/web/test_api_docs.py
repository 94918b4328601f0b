"""/api/docs is a self-contained page rendered on the server from the app's OpenAPI schema:
every path and method with its summary, parameters and schema names, a link to the schema, no
script or stylesheet from another origin, and the strict CSP of every other page."""

from __future__ import annotations

import re

from grace_pipelines.web.security import CSP

from .conftest import Served


def test_api_docs_lists_every_operation_offline(served: Served) -> None:
    client = served.client()
    schema = client.get("/api/openapi.json").json()
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CSP
    html = page.text
    assert 'href="/api/openapi.json"' in html
    operations = [(m.upper(), p, op) for p, methods in schema["paths"].items() for m, op in methods.items()]
    assert len(operations) >= 10
    for method, path, op in operations:
        assert f'<code class="method">{method}</code> <code class="path">{path}</code>' in html, (method, path)
        assert op["summary"] in html
        for param in op.get("parameters", []):
            assert f"<code>{param['name']}</code>" in html, (path, param["name"])
    assert "<code>q</code>" in html and "SearchResponse" in html and "AskRequest" in html and "GrantRequest" in html
    # nothing from another origin, no inline script
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "swagger" not in html.lower()


def test_api_docs_needs_the_token(served: Served) -> None:
    assert served.client(token=False).get("/api/docs").status_code == 401
