"""Speakers over HTTP: who spoke in each recording, naming a voice once (labelled in every
recording), merging and forgetting profiles, and the transcript export with speakers and
timings. The same facade calls (and audit entries, actor "web") as `grace speakers` and
`grace export`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from grace_pipelines.errors import GraceError
from grace_pipelines.web import models
from grace_pipelines.web.context import ACTOR, WebContext, context

router = APIRouter(tags=["speakers"])
ERRORS = {400: {"model": models.ErrorBody}, 404: {"model": models.ErrorBody}}
MEDIA = {"srt": "application/x-subrip", "vtt": "text/vtt", "md": "text/markdown", "json": "application/json"}


@router.get("/speakers", response_model=models.Speakers, responses=ERRORS)
def speakers(
    source: str | None = Query(None, description="Only this recording."), ctx: WebContext = Depends(context)
) -> dict[str, Any]:
    """Each recording's speakers with their names, and every voice profile (as `grace speakers list --json`)."""
    return {"speakers": ctx.grace.speakers(source), "profiles": [p["name"] for p in ctx.grace.db.profiles()]}


@router.post("/speakers/name", responses=ERRORS)
def name_speaker(body: models.NameSpeakerRequest, ctx: WebContext = Depends(context)) -> dict[str, Any]:
    """Name a speaker once; that voice is labelled in every past and future recording, and a
    recording it was holding is indexed now when nothing else waits."""
    with ctx.work_lock:
        return ctx.grace.name_speaker(body.source, body.speaker, body.name, actor=ACTOR)


@router.post("/speakers/merge", responses=ERRORS)
def merge_speakers(body: models.MergeSpeakersRequest, ctx: WebContext = Depends(context)) -> dict[str, Any]:
    """Two voice profiles that are one person."""
    return ctx.grace.merge_speakers(body.name, body.into, actor=ACTOR)


@router.post("/speakers/forget", responses=ERRORS)
def forget_speaker(body: models.ForgetSpeakerRequest, ctx: WebContext = Depends(context)) -> dict[str, Any]:
    """Delete a person's voice profile and every embedding of their voice (audited)."""
    return ctx.grace.forget_speaker(body.name, actor=ACTOR)


@router.get("/export", responses={**ERRORS, 200: {"description": "The transcript in the asked format."}})
def export(
    source: str = Query(..., description="Source key, or the file name of a drop."),
    format: str = Query("md", pattern="^(srt|vtt|md|json)$"),
    ctx: WebContext = Depends(context),
) -> Response:
    """A recording's transcript with speakers and timings (refused without consent); never cached."""
    row = ctx.grace.resolve(source)
    try:
        text = ctx.grace.export(row.key, format)
    except ValueError as exc:
        raise GraceError(str(exc)) from None
    stem = row.title.rsplit(".", 1)[0].encode("ascii", "ignore").decode() or row.key
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)[:80]
    return Response(
        text,
        media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{safe}.{format}"', "Cache-Control": "no-store"},
    )
