"""The person's pages: search, ask, library (with a source's transcript) and decisions,
server-rendered with Jinja2 (autoescape on) around the same facade calls as /api/v1.

Pages only read; every change (grant, refuse, approve, upload) is a fetch from static/app.js to
the JSON API with the CSRF header, so it passes the same Guard checks, governance code and audit
log as the CLI. The passage highlight and the answer's [n] links are plain functions below.
Nothing here logs a query or any passage text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from grace_pipelines.db.schema import utcnow
from grace_pipelines.governance.consent import missing_parties
from grace_pipelines.search.citations import clock, speaker_name
from grace_pipelines.search.filters import FilterError, parse_filters
from grace_pipelines.stores.blobs import TRANSCRIPT
from grace_pipelines.text.chunking import sentence_spans
from grace_pipelines.web.context import WebContext, context
from grace_pipelines.web.security import csrf_for

router = APIRouter(include_in_schema=False)
MODES = ("hybrid", "vector", "keyword")
KINDS = ("", "audio", "video", "document")
ORIGINS = ("", "voice_note", "meeting", "document", "screen", "api", "manual", "schedule")
_WORD = re.compile(r"\w+", re.UNICODE)
_CITE = re.compile(r"\[(\d+)\]")
STOP = frozenset(
    "a an and are as at be by did do does for from how in is it of on or the to was what when where who".split()
)


# ---- plain functions (no web framework) -----------------------------------------------------
def highlight(text: str, query: str) -> tuple[str, str, str]:
    """(before, sentence, after): the sentence of `text` holding most of the query's words
    (ties: the first), for the page to wrap in <mark>. No match: the whole text, nothing marked."""
    words = {w.lower() for w in _WORD.findall(query)} - STOP
    best, best_hits = None, 0
    for start, end in sentence_spans(text):
        hits = len(words & {w.lower() for w in _WORD.findall(text[start:end])})
        if hits > best_hits:
            best, best_hits = (start, end), hits
    if best is None:
        return text, "", ""
    return text[: best[0]], text[best[0] : best[1]], text[best[1] :]


def answer_parts(answer: str, numbers: Sequence[int]) -> list[tuple[str, int | None]]:
    """The answer as (text, n) pieces: n is set for a `[n]` that names one of the citations
    (the page links it to that passage), None for plain text."""
    known = set(numbers)
    parts: list[tuple[str, int | None]] = []
    pos = 0
    for match in _CITE.finditer(answer):
        n = int(match.group(1))
        if n not in known:
            continue
        if match.start() > pos:
            parts.append((answer[pos : match.start()], None))
        parts.append((match.group(0), n))
        pos = match.end()
    if pos < len(answer):
        parts.append((answer[pos:], None))
    return parts


def segment_citation(title: str, start_s: float, end_s: float) -> str:
    """A citation of one transcript segment that /api/v1/clip plays (tenths of a second)."""

    def stamp(seconds: float) -> str:
        minutes, secs = divmod(max(0.0, seconds), 60)
        hours, minutes = divmod(int(minutes), 60)
        return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes:02d}:{secs:04.1f}"

    return f"{title} @ {stamp(start_s)}-{stamp(end_s)}"


def decision_rows(pending: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consent requests grouped per party and source: the scopes waiting, and the scope a
    Grant gives ('all' when both transcribe and index wait)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for item in pending:
        for party in item["missing"]:
            if party in item.get("refused", ()):
                continue  # decided no: nothing waits on them
            row = rows.setdefault(
                (party, item["source_key"]),
                {"party": party, "source_key": item["source_key"], "title": item["title"], "scopes": []},
            )
            row["scopes"].append(item["scope"])
    out = []
    for row in sorted(rows.values(), key=lambda r: (r["party"], r["title"])):
        row["grant"] = "all" if {"transcribe", "index"} <= set(row["scopes"]) else row["scopes"][0]
        out.append(row)
    return out


# ---- pages ----------------------------------------------------------------------------------
def _render(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    ctx: WebContext = request.app.state.ctx
    values.setdefault("active", name.removesuffix(".html"))
    return request.app.state.templates.TemplateResponse(
        request, name, {"csrf_token": csrf_for(ctx.token), **values}, status_code=status
    )


def _filter_values(since: str, until: str, origin: str, kind: str, source: str, speaker: str = "") -> dict[str, str]:
    return {"since": since, "until": until, "origin": origin, "kind": kind, "source": source, "speaker": speaker}


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    q: str = Query("", max_length=4000),
    mode: str = Query("hybrid"),
    since: str = "",
    until: str = "",
    origin: str = "",
    kind: str = "",
    source: str = "",
    speaker: str = Query("", max_length=80),
    ctx: WebContext = Depends(context),
) -> HTMLResponse:
    form = {
        "q": q,
        "mode": mode if mode in MODES else "hybrid",
        **_filter_values(since, until, origin, kind, source, speaker),
    }
    hits, error, skipped = [], None, []
    if q.strip():
        try:
            applied = parse_filters(
                since or None,
                until or None,
                origin or None,
                kind or None,
                source or None,
                "recorded",
                speaker or None,
                now=utcnow(),
                tz=ctx.grace.settings.tz,
            )
        except FilterError as exc:
            error = str(exc)
        else:
            with ctx.search_lock:
                results = ctx.grace.search(q, k=10, mode=form["mode"], filters=applied)
                skipped = list(ctx.grace.search_warnings)
            for r in results:
                d = r.to_dict()
                d["parts"] = highlight(d["text"], q)
                d["playable"] = d["kind"] != "document" and d.get("start_s") is not None
                hits.append(d)
    return _render(
        request,
        "search.html",
        422 if error else 200,
        form=form,
        hits=hits,
        error=error,
        skipped=skipped,
        modes=MODES,
        kinds=KINDS,
        origins=ORIGINS,
    )


@router.get("/ask", response_class=HTMLResponse)
def ask_page(request: Request, q: str = Query("", max_length=4000), ctx: WebContext = Depends(context)) -> HTMLResponse:
    answer = None
    if q.strip():
        with ctx.search_lock:
            answer = ctx.grace.ask(q).to_dict()
        for c in answer["citations"]:
            c["parts"] = highlight(c["text"], q)
            c["playable"] = c["kind"] != "document" and c.get("start_s") is not None
        answer["parts"] = answer_parts(answer["answer"], [c["n"] for c in answer["citations"]])
    return _render(request, "ask.html", q=q, answer=answer)


@router.get("/decisions", response_class=HTMLResponse)
def decisions_page(request: Request, ctx: WebContext = Depends(context)) -> HTMLResponse:
    pending = ctx.grace.consent_list(pending=True)
    voices = [
        {"source_key": i["source_key"], "title": i["title"], "reason": reason}
        for i in pending
        for reason in i.get("voices", [])
    ]
    return _render(
        request,
        "decisions.html",
        consent=decision_rows(pending),
        voices=voices,
        credentials=ctx.grace.vault.pending(),
    )


@router.get("/library", response_class=HTMLResponse)
def library_page(request: Request, ctx: WebContext = Depends(context)) -> HTMLResponse:
    rows = {r.key: r for r in ctx.grace.db.list_sources()}
    items = []
    for s in ctx.grace.status():
        d = s.to_dict()
        row = rows.get(s.source_key or "")
        d["size_class"] = row.size_class if row is not None else None
        items.append(d)
    return _render(request, "library.html", sources=items, origins=ORIGINS[1:])


@router.get("/library/{ref}", response_class=HTMLResponse)
def source_page(request: Request, ref: str, ctx: WebContext = Depends(context)) -> HTMLResponse:
    row = ctx.grace.resolve(ref)
    status = ctx.grace.status_of(row.key).to_dict()
    segments, text, note = [], None, None
    blobs = ctx.grace.clients.blob_store
    if missing_parties(row.participants, ctx.grace.db.consent_events(row.key), "index", utcnow()):
        note = "The transcript is shown once every participant has consented to index this source."
    elif not blobs.exists(row.key, TRANSCRIPT):
        note = "No transcript yet (or it was purged)."
    else:
        payload = blobs.get_json(row.key, TRANSCRIPT)  # decrypted in memory, for this page only
        if payload.get("kind") == "document":
            text = payload.get("text", "")
        else:
            from grace_pipelines.audio.export import cues

            names = {s["label"]: s["name"] for s in ctx.grace.db.source_speakers(row.key) if s["name"]}
            turns = cues(payload.get("segments", []))  # split where the speaker changes
            many = len({c["speaker"] for c in turns if c["speaker"]}) > 1
            for seg in turns:
                start, end = float(seg["start"]), float(seg["end"])
                label = seg.get("speaker")
                segments.append(
                    {
                        "at": clock(start),
                        "text": seg["text"].strip(),
                        "citation": segment_citation(row.title, start, end),
                        "speaker": speaker_name(label, names, many),
                        "label": label,
                    }
                )
    return _render(
        request,
        "source.html",
        active="library",
        source=status,
        size_class=row.size_class,
        participants=row.participants,
        speakers=[{**s, "first": clock(s["first_s"])} for s in ctx.grace.db.source_speakers(row.key)],
        segments=segments,
        text=text,
        note=note,
    )
