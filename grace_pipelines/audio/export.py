"""A transcript with speakers and timings as the formats people take elsewhere: SubRip (srt),
WebVTT (vtt, with `<v Name>` voice tags), Markdown (one paragraph per turn) and JSON.

Cues come from the words: a new cue where the speaker changes, after a sentence end once a cue
is 2 s long, and at most every 7 s (subtitle readers' limits), so a 30 s Whisper segment that
holds three people's words becomes their turns. Pure text; the facade decrypts the transcript
and checks consent (api.Grace.export)."""

from __future__ import annotations

import json
from typing import Any

from grace_pipelines.search.citations import speaker_name

FORMATS = ("srt", "vtt", "md", "json")
MAX_CUE_S = 7.0


def cues(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """[{start, end, speaker, text}] split at speaker changes and sentence ends."""
    out: list[dict[str, Any]] = []
    for seg in segments:
        words = [w for w in seg.get("words") or [] if (w.get("word") or "").strip()]
        if not words:
            out.append({"start": seg["start"], "end": seg["end"], "speaker": seg.get("speaker"), "text": seg["text"]})
            continue
        current: dict[str, Any] | None = None
        for w in words:
            speaker = w.get("speaker") or seg.get("speaker")
            text = w["word"].strip()
            if current is not None:
                long_enough = w["end"] - current["start"] > MAX_CUE_S
                sentence_done = current["text"].endswith((".", "?", "!")) and w["start"] - current["start"] > 2.0
                if speaker != current["speaker"] or long_enough or sentence_done:
                    out.append(current)
                    current = None
            if current is None:
                current = {"start": w["start"], "end": w["end"], "speaker": speaker, "text": text}
            else:
                current["end"] = w["end"]
                current["text"] += " " + text
        if current is not None:
            out.append(current)
    return out


def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(max(seconds, 0.0) * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def render(payload: dict[str, Any], fmt: str, *, title: str, names: dict[str, str]) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of: {', '.join(FORMATS)}")
    if payload.get("kind") == "document":
        raise ValueError(f"{title} is a document: only recordings export with speakers and timings")
    items = cues(payload.get("segments") or [])
    labels = {c["speaker"] for c in items if c["speaker"]}
    many = len(labels) > 1
    for c in items:
        c["who"] = speaker_name(c["speaker"], names, many, word="Speaker")
    if fmt == "json":
        return json.dumps(
            {
                "title": title,
                "language": payload.get("language"),
                "duration_s": payload.get("duration_s"),
                "speakers": sorted({c["who"] for c in items if c["who"]}),
                "cues": [
                    {"start": round(c["start"], 3), "end": round(c["end"], 3), "speaker": c["who"], "text": c["text"]}
                    for c in items
                ],
            },
            ensure_ascii=False,
            indent=1,
        )
    if fmt == "srt":
        blocks = []
        for i, c in enumerate(items, start=1):
            text = f"{c['who']}: {c['text']}" if c["who"] else c["text"]
            blocks.append(f"{i}\n{_stamp(c['start'], ',')} --> {_stamp(c['end'], ',')}\n{text}\n")
        return "\n".join(blocks)
    if fmt == "vtt":
        blocks = ["WEBVTT\n"]
        for c in items:
            voice = c["who"].replace(">", "") if c["who"] else None
            text = f"<v {voice}>{c['text']}" if voice else c["text"]
            blocks.append(f"{_stamp(c['start'], '.')} --> {_stamp(c['end'], '.')}\n{text}\n")
        return "\n".join(blocks)
    lines = [f"# {title}", ""]
    turn: dict[str, Any] | None = None
    for c in items:  # md: one paragraph per turn, its start time first
        if turn is not None and turn["who"] == c["who"]:
            turn["text"] += " " + c["text"]
            continue
        if turn is not None:
            lines += [_md_turn(turn), ""]
        turn = dict(c)
    if turn is not None:
        lines += [_md_turn(turn), ""]
    return "\n".join(lines)


def _md_turn(turn: dict[str, Any]) -> str:
    stamp = _stamp(turn["start"], ".")[:8]
    who = f"**{turn['who']}** " if turn["who"] else ""
    return f"{who}`{stamp}` {turn['text']}"
