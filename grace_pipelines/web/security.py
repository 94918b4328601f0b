"""Secure by default: the token that every request must carry, the cookie a browser gets for
it, CSRF on state changes, the Host check against DNS rebinding and the security headers.

One pure-ASGI middleware (`Guard`) so that it wraps every response, streamed ones included,
and runs before any route (a refused request never reaches the facade). The token lives in
GRACE_HOME/web/token (0600, folder 0700), is created once and reused; comparisons use
`hmac.compare_digest`. Nothing here logs a token or a query string.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from grace_pipelines.errors import GraceError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_COOKIE = "grace_token"
CSRF_COOKIE = "grace_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_FORM_BYTES = 1024 * 1024  # a urlencoded form read to find its csrf_token field

CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)


def web_dir(home: Path) -> Path:
    """GRACE_HOME/web (0700): the token, server.json, uploads in flight."""
    folder = Path(home) / "web"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
    return folder


def load_or_create_token(home: Path) -> str:
    """The server's token: read from GRACE_HOME/web/token, or created there once (0600)."""
    path = web_dir(home) / "token"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        token = path.read_text(encoding="ascii").strip()
        if len(token) < 32:
            raise GraceError(
                f"{path}: the web token is empty or too short; delete the file to make a new one"
            ) from None
        return token
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(token + "\n")
    return token


def csrf_for(token: str) -> str:
    """The double-submit CSRF token derived from the session token (pages embed it in forms)."""
    return hmac.new(token.encode(), b"grace-web-csrf", hashlib.sha256).hexdigest()


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def host_header(host: str, port: int) -> str:
    """How a browser writes `host:port` in the Host header (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """Host headers this server answers: loopback names on its port and the configured host."""
    return frozenset(host_header(h, port).lower() for h in ("127.0.0.1", "localhost", host))


class Guard:
    """ASGI middleware: Host check (400), token by bearer header or cookie (401), the token URL
    turned into a cookie, CSRF + same origin for cookie-borne state changes (403), headers."""

    def __init__(self, app: ASGIApp, *, token: str, hosts: frozenset[str]) -> None:
        self.app = app
        self.token = token
        self.csrf = csrf_for(token)
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            await send({"type": "websocket.close", "code": 1008})
            return
        send = self._with_headers(scope, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "").lower()
        if host not in self.hosts:
            await _reply(send, 400, {"detail": "bad Host header"})
            return
        method = scope["method"]
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        auth = headers.get("authorization", "")
        via = None
        if auth[:7].lower() == "bearer ":
            via = "bearer" if _same(auth[7:].strip(), self.token) else None
        elif method == "GET" and any(k == "token" for k, _ in query):
            given = next(v for k, v in query if k == "token")
            if _same(given, self.token):
                await self._set_cookie_and_redirect(scope, send, [(k, v) for k, v in query if k != "token"])
                return
        else:
            cookie = SimpleCookie()
            try:
                cookie.load(headers.get("cookie", ""))
            except Exception:  # noqa: BLE001 - a malformed cookie header is no token
                cookie = SimpleCookie()
            morsel = cookie.get(TOKEN_COOKIE)
            via = "cookie" if morsel is not None and _same(morsel.value, self.token) else None
        if via is None:
            await _reply(send, 401, {"detail": "unauthorized"}, [(b"www-authenticate", b"Bearer")])
            return
        scope.setdefault("state", {})["auth"] = via
        if via == "cookie" and method in UNSAFE_METHODS:
            problem, receive = await self._csrf_problem(scope, headers, host, receive)
            if problem:
                await _reply(send, 403, {"detail": f"refused: {problem}"})
                return
        await self.app(scope, receive, send)

    async def _csrf_problem(
        self, scope: Scope, headers: dict[str, str], host: str, receive: Receive
    ) -> tuple[str | None, Receive]:
        """Why a cookie-borne state change is refused (None: it is not), and the receive to use."""
        origin = headers.get("origin")
        if not origin and headers.get("referer"):
            parts = urlsplit(headers["referer"])
            origin = f"{parts.scheme}://{parts.netloc}"
        if not origin or origin.lower() != f"http://{host}":
            return "cross-site request (Origin/Referer is not this server)", receive
        given = headers.get(CSRF_HEADER)
        if given is None and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            body, receive = await _read_body(receive, MAX_FORM_BYTES)
            given = dict(parse_qsl(body.decode("latin-1"))).get(CSRF_FIELD) if body is not None else None
        if not _same(given, self.csrf):
            return f"missing or wrong CSRF token ({CSRF_HEADER} header or {CSRF_FIELD} form field)", receive
        return None, receive

    async def _set_cookie_and_redirect(self, scope: Scope, send: Send, rest: list[tuple[str, str]]) -> None:
        location = scope.get("root_path", "") + scope["path"] + (f"?{urlencode(rest)}" if rest else "")
        cookies = [
            f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/",
            f"{CSRF_COOKIE}={self.csrf}; SameSite=Strict; Path=/",
        ]
        extra = [(b"location", location.encode()), *((b"set-cookie", c.encode()) for c in cookies)]
        await _reply(send, 303, {"detail": "see other"}, extra)

    def _with_headers(self, scope: Scope, send: Send) -> Send:
        csp = CSP  # every page, the API docs included, is self-contained

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                added = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if b"content-security-policy" not in present:
                    added.append((b"content-security-policy", csp.encode()))
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        return wrapped


async def _reply(send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """The whole request body (None past `limit`) and a receive that replays it to the app."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        more = message.get("more_body", False)
        if size > limit:
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return (None if size > limit else body), replay
