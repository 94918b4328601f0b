"""Citations, both ways, in one place: how Grace prints where a passage came from
(`talk.m4a @ 00:11-00:17`, `guide.pdf, p. 2`, `notes.md § Risks, lines 3-9`) and how a
recording's citation typed back by a person (`grace play`, the web app) is parsed.
Printing and parsing live together so they cannot drift apart."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def speaker_name(label: str | None, names: dict[str, Any], many: bool, word: str = "speaker") -> str | None:
    """Who a recording's speaker `label` is for a reader: the voice's name where one is known,
    else "speaker 2" for S2 when the recording has several voices; None for no turns or a
    recording of one unnamed voice (every citation saying "speaker 1" would be noise)."""
    if not label:
        return None
    if names.get(label):
        return str(names[label])
    return f"{word} {label[1:]}" if many else None


LINE_CITED = (".md", ".markdown", ".txt")  # formats whose lines a reader can open and count


def citation_for(row: dict[str, Any]) -> str:
    """`talk.m4a @ 00:11-00:17` (`call.wav @ 03:12-03:18, Priya` when the speaker is known),
    `guide.pdf, p. 2`, `notes.md § Risks, lines 3-9`."""
    title = row.get("title") or row.get("source_key")
    if row.get("page") is not None:
        return f"{title}, p. {row['page']}"
    if row.get("heading") and row.get("line_start") is not None and str(title).lower().endswith(LINE_CITED):
        a, b = row["line_start"], row.get("line_end") or row["line_start"]
        return f"{title} § {row['heading']}, " + (f"line {a}" if a == b else f"lines {a}-{b}")
    if row.get("heading"):
        return f"{title} § {row['heading']}"
    if row.get("start_s") is not None:
        start, end = row["start_s"], row.get("end_s")
        # floor the start and ceil the end so the shown window contains what was said
        cited = f"{title} @ {clock(int(start))}-{clock(-(-end // 1) if end is not None else None)}"
        return f"{cited}, {row['speaker']}" if row.get("speaker") else cited
    if row.get("line_start") is not None:
        a, b = row["line_start"], row.get("line_end") or row["line_start"]
        return f"{title}, line {a}" if a == b else f"{title}, lines {a}-{b}"
    return str(title)


CITATION_FORMAT = "TITLE @ MM:SS-MM:SS or TITLE @ H:MM:SS-H:MM:SS (seconds may have decimals)"

_TIME = r"(?:\d+:)?\d+:\d+(?:\.\d+)?"
_RANGE_RE = re.compile(rf"^\s*(?P<start>{_TIME})\s*[-\u2013\u2014]\s*(?P<end>{_TIME})\s*$")
_DOCUMENT_RE = re.compile(r",\s*(?:lines?|pages?|p\.|§|section|heading)\b", re.IGNORECASE)


def format_citation_help() -> str:
    return f"expected a recording citation like 'standup.mp3 @ 00:03-00:09' ({CITATION_FORMAT})"


@dataclass(frozen=True)
class Citation:
    title: str
    start_s: float
    end_s: float
    speaker: str | None = None


def _parse_clock(value: str, whole: str) -> float:
    parts = value.split(":")
    try:
        if len(parts) == 2:
            hours, minutes, seconds = 0, int(parts[0]), float(parts[1])
        elif len(parts) == 3:
            hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
            if minutes >= 60:
                raise ValueError
        else:
            raise ValueError
    except ValueError:
        raise ValueError(f"bad time {value!r} in citation {whole!r}; {format_citation_help()}") from None
    if seconds >= 60:
        raise ValueError(
            f"bad time {value!r} in citation {whole!r}: seconds must be below 60; {format_citation_help()}"
        )
    return hours * 3600 + minutes * 60 + seconds


def parse_citation(text: str) -> Citation:
    """Parse a citation as Grace prints it for a recording: ``standup.mp3 @ 00:03-00:09``
    (a trailing ``, Priya`` naming the speaker is accepted and kept).

    Times are ``MM:SS`` or ``H:MM:SS`` (seconds may carry decimals, ``00:03.5``); the range
    separator may be ``-`` or an en dash, with optional spaces. The title may contain spaces
    and even `` @ ``: the split is on the last `` @ ``. Surrounding whitespace, quotes and
    brackets are ignored. Document citations (``notes.md, lines 3-9``) and anything else raise
    ``ValueError`` with the expected format.
    """
    if not isinstance(text, str):
        raise TypeError(f"citation must be text; {format_citation_help()}")
    whole = text.strip()
    # tolerate a citation pasted with its surrounding quotes or brackets
    while len(whole) >= 2 and (whole[0], whole[-1]) in {("'", "'"), ('"', '"'), ("[", "]"), ("(", ")")}:
        whole = whole[1:-1].strip()
    if not whole:
        raise ValueError(f"empty citation; {format_citation_help()}")
    title, sep, when = whole.rpartition(" @ ")
    if not sep:
        if _DOCUMENT_RE.search(whole):
            raise ValueError(f"{whole!r} cites a document; only recordings can be played ({format_citation_help()})")
        raise ValueError(f"not a recording citation: {whole!r}; {format_citation_help()}")
    title = title.strip()
    if not title:
        raise ValueError(f"citation {whole!r} has no title; {format_citation_help()}")
    when, _, speaker = when.partition(",")  # `, Priya` after the range: who said it
    match = _RANGE_RE.match(when)
    if not match:
        if when.strip().endswith("?"):
            raise ValueError(f"citation {whole!r} has no end time; {format_citation_help()}")
        raise ValueError(f"bad time range {when.strip()!r} in citation {whole!r}; {format_citation_help()}")
    start = _parse_clock(match["start"], whole)
    end = _parse_clock(match["end"], whole)
    if end <= start:
        raise ValueError(f"citation {whole!r} ends before it starts; {format_citation_help()}")
    return Citation(title=title, start_s=start, end_s=end, speaker=speaker.strip() or None)
