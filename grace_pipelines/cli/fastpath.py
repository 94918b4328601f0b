"""The CLI's fast path: `grace search | ask | status` ask the running `grace serve` for the same
GRACE_HOME (warm models and index: milliseconds) instead of starting the engine cold (seconds).

Only the standard library is imported here, so a command that is answered by the server never
loads Dagster, LanceDB or the models. Any doubt about the server (no server.json, a dead pid, a
refused or timed-out connection, a rejected token, a 5xx, a request the API's validation refuses)
means `None`: the caller falls back to in-process, which gives the authoritative answer or error.
A user error the API names in plain words (4xx with a string `detail`) becomes the CLI's own
user error (GraceError: exit 1, the same message).
"""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from grace_pipelines.errors import GraceError

DISABLE_ENV = "GRACE_NO_FASTPATH"  # set (to anything but "" or "0"): always in-process
CONNECT_TIMEOUT_S = 0.5  # a live server on loopback accepts in well under a millisecond
READ_TIMEOUT_S = 300.0  # an answer from a chat model can take a while
API = "/api/v1"
WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "") not in ("", "0")


def home_dir(home: Path | None) -> Path:
    """GRACE_HOME as GraceSettings resolves it (--home, else $GRACE_HOME, else ./.grace), absolute."""
    return Path(home if home is not None else os.environ.get("GRACE_HOME", ".grace")).expanduser().absolute()


def server_for(home: Path | None) -> tuple[str, int, str] | None:
    """(host, port, token) of a live server for `home` per GRACE_HOME/web/server.json and
    GRACE_HOME/web/token; None when there is none or the file is stale (its pid is gone)."""
    web = home_dir(home) / "web"
    try:
        info = json.loads((web / "server.json").read_text(encoding="utf-8"))
        os.kill(int(info["pid"]), 0)
        token = (web / "token").read_text(encoding="utf-8").strip()
        host, port = str(info["host"]), int(info["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not token:
        return None
    return WILDCARD.get(host, host), port, token


def call(home: Path | None, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
    """The JSON the server answers for `method API+path`, or None to fall back in-process."""
    if disabled():
        return None
    found = server_for(home)
    if found is None:
        return None
    host, port, token = found
    query = {k: v for k, v in (params or {}).items() if v is not None}
    target = API + path + (f"?{urlencode(query)}" if query else "")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT_S)
    try:
        conn.connect()
        conn.sock.settimeout(READ_TIMEOUT_S)
        conn.request(method, target, body=data, headers=headers)
        reply = conn.getresponse()
        status, raw = reply.status, reply.read()
    except (OSError, http.client.HTTPException):  # refused, timed out, reset: not a server we can use
        return None
    finally:
        conn.close()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        return None
    if status == 200:
        return payload
    detail = payload.get("detail") if isinstance(payload, dict) else None
    if 400 <= status < 500 and status != 401 and isinstance(detail, str):
        raise GraceError(detail)
    return None  # 401 (another token), 5xx, a validation list: in-process decides


def search(home: Path | None, query: str, *, k: int, mode: str, **filters: Any) -> dict[str, Any] | None:
    """GET /api/v1/search: the `grace search --json` object, or None. `filters`: since, until,
    origin, kind, source, by, speaker as typed (the API's query parameters of those names)."""
    return call(home, "GET", "/search", params={"q": query, "k": k, "mode": mode, **filters})


def ask(home: Path | None, question: str, *, k: int, **filters: Any) -> dict[str, Any] | None:
    """POST /api/v1/ask: the `grace ask --json` object, or None (`filters` as for search)."""
    body = {"question": question, "k": k, **{n: v for n, v in filters.items() if v is not None}}
    return call(home, "POST", "/ask", body=body)


def status(home: Path | None) -> dict[str, Any] | None:
    """GET /api/v1/sources: the `grace status --json` object, or None."""
    return call(home, "GET", "/sources")
