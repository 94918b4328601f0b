"""Search, ask and the cited moment's audio: the same facade calls and the same JSON as
`grace search --json` / `grace ask --json` (filters included), and `grace play`'s clip
streamed as audio/wav."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from grace_pipelines.db.schema import utcnow
from grace_pipelines.search.filters import SearchFilters, parse_filters
from grace_pipelines.web import models
from grace_pipelines.web.context import WebContext, context
from grace_pipelines.web.wire import ask_json, search_json

router = APIRouter(tags=["search"])
CLIP_CHUNK = 64 * 1024
MODES = "^(hybrid|vector|keyword)$"
ERRORS = {422: {"model": models.ErrorBody, "description": "A filter that cannot be read."}}


def _filters(ctx: WebContext, f: models.Filters) -> SearchFilters:
    return parse_filters(
        f.since, f.until, f.origin, f.kind, f.source, f.by, f.speaker, now=utcnow(), tz=ctx.grace.settings.tz
    )


@router.get("/search", response_model=models.SearchResponse, responses=ERRORS)
def search(
    q: str = Query(..., min_length=1, max_length=4000, description="What you are looking for."),
    k: int = Query(5, ge=1, le=100),
    mode: str = Query("hybrid", pattern=MODES),
    filters: models.Filters = Depends(),
    ctx: WebContext = Depends(context),
) -> dict[str, Any]:
    """The passages that answer `q`, with citations (as `grace search --json`)."""
    applied = _filters(ctx, filters)
    with ctx.search_lock:
        results = ctx.grace.search(q, k=k, mode=mode, filters=applied)
        return search_json(q, results, ctx.grace.search_warnings, applied)


@router.post("/ask", response_model=models.Answer, responses=ERRORS)
def ask(body: models.AskRequest, ctx: WebContext = Depends(context)) -> dict[str, Any]:
    """An answer with [n] citations (extractive and labelled when no chat model is set), as
    `grace ask --json`."""
    applied = _filters(ctx, body)
    with ctx.search_lock:
        answer = ctx.grace.ask(body.question, k=body.k, filters=applied)
        return ask_json(answer, ctx.grace.search_warnings, applied)


@router.get(
    "/clip",
    response_class=StreamingResponse,
    responses={200: {"content": {"audio/wav": {}}}, 400: {"model": models.ErrorBody}, 404: {"model": models.ErrorBody}},
)
def clip(
    citation: str = Query(..., min_length=1, max_length=2000, description="e.g. 'standup.mp3 @ 00:03-00:09'"),
    context_s: float = Query(1.0, alias="context", ge=0.0, le=30.0, description="Seconds either side."),
    source: str | None = Query(None, description="Source key, when several files share the title."),
    ctx: WebContext = Depends(context),
) -> StreamingResponse:
    """The cited window of a recording (plus context) as WAV, decoded in memory from the sealed
    original; only sources with index consent."""
    wav, _row = ctx.grace.clip(citation, context_s=context_s, source_key=source)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(wav), CLIP_CHUNK):
            yield wav[start : start + CLIP_CHUNK]

    return StreamingResponse(
        chunks(),
        media_type="audio/wav",
        headers={"content-length": str(len(wav)), "content-disposition": 'inline; filename="clip.wav"'},
    )
