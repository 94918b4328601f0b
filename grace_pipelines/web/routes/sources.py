"""Health, the state of one or all sources (as `grace status --json`), and uploads that go
through the inbox's rules (grace.ingest judges them; a refusal names the file and why)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from grace_pipelines.web import models
from grace_pipelines.web.context import WebContext, context
from grace_pipelines.web.uploads import UploadRefused, receive_upload
from grace_pipelines.web.wire import status_json

router = APIRouter(tags=["sources"])
REFUSED_STATES = ("refused", "ignored", "quarantined")  # an input that was not ingested
UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The recording or document."},
                        "consent": {
                            "type": "string",
                            "description": 'Consent sidecar JSON: {"participants": [...], "grants": [...]}',
                        },
                        "origin": {"type": "string", "description": "voice_note, meeting, document, screen, ..."},
                        "wait": {"type": "boolean", "description": "Run the pipeline now and answer when done."},
                    },
                }
            }
        },
    }
}


@router.get("/health", response_model=models.Health)
def health(ctx: WebContext = Depends(context)) -> dict[str, Any]:
    """The server is up and its state database answers."""
    return {"status": "ok", "sources": len(ctx.grace.db.list_sources())}


@router.get("/sources", response_model=models.Sources)
def sources(ctx: WebContext = Depends(context)) -> dict[str, Any]:
    """Every source's state and why (as `grace status --json`)."""
    return status_json(ctx.grace.status())


@router.get("/sources/{ref}", response_model=models.SourceStatus, responses={404: {"model": models.ErrorBody}})
def source(ref: str, ctx: WebContext = Depends(context)) -> dict[str, Any]:
    """One source's state and why, by source key or the file name of a drop."""
    return ctx.grace.status_of(ctx.grace.resolve(ref).key).to_dict()


@router.post(
    "/ingest",
    response_model=models.IngestResult,
    status_code=202,
    openapi_extra=UPLOAD_SCHEMA,
    responses={
        200: {"model": models.IngestResult, "description": "Ingested to the end (wait=true)."},
        400: {"model": models.ErrorBody},
        413: {"model": models.ErrorBody},
        422: {"model": models.UploadRefusal, "description": "The inbox's rules refused the file."},
    },
)
async def ingest(request: Request, ctx: WebContext = Depends(context)) -> Any:
    """Upload one file (multipart `file`, optional `consent` sidecar JSON, `origin`, `wait`),
    streamed to disk under the size limit, then dropped into the inbox by the same rules as
    `grace ingest`; with wait=true it runs through the pipeline before the answer."""
    try:
        upload = await receive_upload(request.headers, request.stream(), ctx.uploads, ctx.upload_max_bytes)
    except UploadRefused as exc:
        return JSONResponse({"detail": exc.reason}, status_code=exc.status)
    try:
        wait = upload.fields.get("wait", "").lower() in ("1", "true", "yes", "on")
        origin = upload.fields.get("origin") or None

        def run() -> list[Any]:
            with ctx.work_lock:
                return ctx.grace.ingest([upload.path], origin=origin, wait=wait)

        outcomes = await run_in_threadpool(run)
    finally:
        upload.remove()
    body = {"sources": [{"path": upload.filename, **o.to_dict()} for o in outcomes]}
    refused = [o for o in outcomes if o.state in REFUSED_STATES]
    if refused:
        why = refused[0].why.replace(str(upload.folder) + "/", "")
        return JSONResponse({"detail": why, "file": upload.filename, "state": refused[0].state}, status_code=422)
    return JSONResponse(body, status_code=200 if wait else 202)
