"""Secure by default: the token (file 0600, reused), 401 that says nothing, the token URL
turned into an HttpOnly SameSite=Strict cookie, CSRF and same-origin for cookie-borne changes,
the Host check against DNS rebinding, security headers on every response."""

from __future__ import annotations

import stat

from grace_pipelines.web.security import csrf_for, load_or_create_token

from .conftest import BASE, Served

SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def _secured(response) -> None:
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value, (name, response.status_code)
    assert response.headers["content-security-policy"].startswith("default-src 'self'")


def test_token_file_is_private_and_reused(served: Served) -> None:
    path = served.home / "web" / "token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(served.token) >= 40 and load_or_create_token(served.home) == served.token


def test_missing_or_wrong_token_is_401_and_says_nothing(served: Served) -> None:
    anonymous = served.client(token=False)
    attempts = [
        anonymous.get("/api/v1/health"),
        anonymous.get("/api/v1/health", headers={"Authorization": "Bearer " + served.token[:-1] + "x"}),
        anonymous.get("/api/v1/health", headers={"Authorization": served.token}),  # not a bearer
        anonymous.get("/api/v1/sources", headers={"Cookie": "grace_token=guess"}),
        anonymous.get("/?token=guess"),
        anonymous.get("/api/openapi.json"),
    ]
    for response in attempts:
        assert response.status_code == 401
        assert response.json() == {"detail": "unauthorized"}
        _secured(response)
        assert served.token not in response.text


def test_the_token_url_sets_a_strict_httponly_cookie_and_drops_the_token(served: Served) -> None:
    browser = served.client(token=False)
    opened = browser.get(f"/?token={served.token}")
    assert opened.status_code == 303 and opened.headers["location"] == "/"
    cookies = opened.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("grace_token="))
    assert "HttpOnly" in session and "SameSite=Strict" in session
    page = browser.get("/")  # the cookie from now on
    assert page.status_code == 200 and "Grace" in page.text
    assert csrf_for(served.token) in page.text  # pages carry the CSRF token for their forms
    assert served.token not in page.text
    assert browser.get("/api/v1/health").json()["status"] == "ok"
    kept = browser.get(f"/api/v1/sources?token={served.token}&x=1")
    assert kept.status_code == 303 and kept.headers["location"] == "/api/v1/sources?x=1"


def test_cookie_state_changes_need_same_origin_and_the_csrf_token(served: Served) -> None:
    browser = served.client(token=False)
    browser.get(f"/?token={served.token}")
    csrf = csrf_for(served.token)
    ask = {"question": "when is the quarterly report due?"}
    # a cross-site form post (the attacker's page submits to us; the browser adds the cookie)
    evil = browser.post(
        "/api/v1/consent/grant",
        data={"source": "standup.mp3", "party": "me", "scope": "all"},
        headers={"Origin": "http://evil.example"},
    )
    assert evil.status_code == 403 and "cross-site" in evil.json()["detail"]
    evil_csrf = browser.post("/api/v1/ask", json=ask, headers={"Origin": "http://evil.example", "X-CSRF-Token": csrf})
    assert evil_csrf.status_code == 403
    no_origin = browser.post("/api/v1/ask", json=ask, headers={"X-CSRF-Token": csrf})
    assert no_origin.status_code == 403
    no_token = browser.post("/api/v1/ask", json=ask, headers={"Origin": BASE})
    assert no_token.status_code == 403 and "CSRF" in no_token.json()["detail"]
    wrong = browser.post(
        "/api/v1/ask",
        json=ask,
        headers={"Origin": BASE, "X-CSRF-Token": csrf[:-1] + ("1" if csrf.endswith("0") else "0")},
    )
    assert wrong.status_code == 403
    ok = browser.post("/api/v1/ask", json=ask, headers={"Origin": BASE, "X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json()["citations"]
    by_referer = browser.post("/api/v1/ask", json=ask, headers={"Referer": BASE + "/ask", "X-CSRF-Token": csrf})
    assert by_referer.status_code == 200
    # a same-origin form carries the token as a field; the guard passes it on (the route wants JSON)
    form = browser.post("/api/v1/ask", data={"csrf_token": csrf, "question": "x"}, headers={"Origin": BASE})
    assert form.status_code == 422
    # bearer API calls need no CSRF token
    api = served.client().post("/api/v1/ask", json=ask)
    assert api.status_code == 200


def test_a_foreign_host_header_is_refused(served: Served) -> None:
    client = served.client()
    rebound = client.get("/api/v1/health", headers={"Host": f"evil.example:{8765}"})
    assert rebound.status_code == 400 and rebound.json() == {"detail": "bad Host header"}
    _secured(rebound)
    assert client.get("/api/v1/health", headers={"Host": "127.0.0.1:9999"}).status_code == 400
    assert client.get("/api/v1/health", headers={"Host": "localhost:8765"}).status_code == 200


def test_security_headers_on_every_response(served: Served) -> None:
    client = served.client()
    for response in (client.get("/api/v1/health"), client.get("/api/v1/sources/nope"), client.get("/")):
        _secured(response)
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert client.get("/api/v1/sources/nope").status_code == 404
