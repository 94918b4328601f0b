"""`create_app`: the FastAPI app of `grace serve` around one long-lived `Grace`.

The facade is built once and kept (its clients: the models, the LanceDB tables, the state
database stay warm), so a request costs the engine's milliseconds, not a cold process. Every
state change goes through the same facade and governance code (and so the audit log) as the
CLI, with actor "web". Security is the `Guard` middleware's (security.py); routers live in
routes/, one per area, and pages will add theirs beside them with templates/.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates

from grace_pipelines.api import Grace
from grace_pipelines.errors import GraceError
from grace_pipelines.governance.consent import ConsentError
from grace_pipelines.search.filters import FilterError
from grace_pipelines.settings import GraceSettings, SettingsError
from grace_pipelines.web.context import WebContext
from grace_pipelines.web.security import Guard, allowed_hosts, csrf_for, load_or_create_token

API_PREFIX = "/api/v1"
DOCS_URL = "/api/docs"
OPENAPI_URL = "/api/openapi.json"
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

log = logging.getLogger("grace_pipelines.web")


def create_app(
    settings: GraceSettings,
    grace: Grace | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    warm: bool = True,
) -> FastAPI:
    """The app for `settings.home`: `grace` (default: a new `Grace`), answering only Host
    headers for `host:port` (default settings.serve_host / serve_port) and loopback names."""
    grace = grace or Grace(settings.home)
    host = host or settings.serve_host
    port = settings.serve_port if port is None else port
    ctx = WebContext(grace, load_or_create_token(settings.home), settings.upload_max_bytes)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if warm:
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(ctx.warm)
        yield

    app = FastAPI(
        title="Grace",
        summary="Search, ask, play and decide over your recordings and documents.",
        version="1",
        docs_url=None,  # our own page below: Swagger UI comes from a CDN (blank offline, looser CSP)
        redoc_url=None,
        openapi_url=OPENAPI_URL,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES))
    _errors(app)

    from grace_pipelines.web.routes import consent, search, sources, speakers

    for router in (sources.router, search.router, consent.router, speakers.router):
        app.include_router(router, prefix=API_PREFIX)

    from fastapi.staticfiles import StaticFiles

    from grace_pipelines.web import pages

    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request) -> Any:
        return app.state.templates.TemplateResponse(
            request, "index.html", {"csrf_token": csrf_for(ctx.token), "docs_url": DOCS_URL}
        )

    @app.get(DOCS_URL, response_class=HTMLResponse, include_in_schema=False)
    def api_docs(request: Request) -> Any:
        context = {"csrf_token": csrf_for(ctx.token), "openapi_url": OPENAPI_URL, **docs_view(app.openapi())}
        return app.state.templates.TemplateResponse(request, "api_docs.html", context)

    app.add_middleware(Guard, token=ctx.token, hosts=allowed_hosts(host, port))
    return app


def _ref_names(schema: dict[str, Any] | None) -> list[str]:
    """The component names a (possibly nested) schema refers to, else its type."""
    if not schema:
        return []
    if "$ref" in schema:
        return [schema["$ref"].rsplit("/", 1)[-1]]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return [name for part in schema[key] for name in _ref_names(part)]
    if schema.get("type") == "array":
        return [f"list[{', '.join(_ref_names(schema.get('items')))}]"]
    return [str(schema.get("type", "object"))]


def docs_view(schema: dict[str, Any]) -> dict[str, Any]:
    """What /api/docs shows of the OpenAPI schema: per path and method its summary,
    parameters, request and response schema names (rendered server-side, nothing loaded)."""
    operations = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {})
            operations.append(
                {
                    "path": path,
                    "method": method.upper(),
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p.get("in", ""),
                            "required": p.get("required", False),
                            "type": " | ".join(_ref_names(p.get("schema"))),
                            "description": p.get("description", ""),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "request": [(kind, " | ".join(_ref_names(c.get("schema")))) for kind, c in body.items()],
                    "responses": [
                        (
                            code,
                            r.get("description", ""),
                            " | ".join(n for c in r.get("content", {}).values() for n in _ref_names(c.get("schema"))),
                        )
                        for code, r in op.get("responses", {}).items()
                    ],
                }
            )
    info = schema.get("info", {})
    return {"info": info, "operations": operations, "schemas": sorted(schema.get("components", {}).get("schemas", {}))}


def _errors(app: FastAPI) -> None:
    """User errors as 4xx with the facade's message (it names the source and the reason);
    anything else a 500 that names only the failure's type (no content in logs or body)."""
    from grace_pipelines.governance.vault import VaultError, VaultRefused

    async def user_error(_request: Request, exc: Exception) -> JSONResponse:
        message = str(exc)
        status = 404 if message.startswith(("no source matches", "unknown source")) else 400
        if isinstance(exc, FilterError):
            status = 422
        if isinstance(exc, VaultRefused):
            status = 403
        return JSONResponse({"detail": message}, status_code=status)

    for kind in (GraceError, ConsentError, SettingsError, VaultError, VaultRefused):
        app.add_exception_handler(kind, user_error)

    async def system_failure(request: Request, exc: Exception) -> JSONResponse:
        log.error("system failure in %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return JSONResponse({"detail": f"system failure: {type(exc).__name__}"}, status_code=500)

    app.add_exception_handler(Exception, system_failure)
