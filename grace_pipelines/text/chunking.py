"""Sentence-aware chunking that remembers where each chunk came from.

A chunk of a recording carries the start/end seconds of the speech it covers (from word
timings when the transcriber gives them, else from segments); a chunk of a document carries
its character and line range. Pure functions: no I/O, no Dagster.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

# A sentence ends at . ! ? (optionally followed by quotes/brackets) before whitespace, or at a
# line break in documents. The split keeps character offsets so chunks map back to sources.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+|\n+")


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    char_start: int
    char_end: int
    start_s: float | None = None
    end_s: float | None = None
    line_start: int | None = None
    line_end: int | None = None
    # per sentence of a transcript chunk: (char offset in chunk, end offset, start_s, end_s[,
    # speaker label]), so search can point at the exact moment inside a longer passage, and say
    # who said it when the transcript has speaker turns
    moments: tuple[tuple[Any, ...], ...] = ()
    page: int | None = None  # documents: the page (PDF) or heading (HTML, DOCX, Markdown)
    heading: str | None = None  # the chunk starts in

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TimedSpan:
    """Characters [char_start, char_end) of the joined transcript were said in [start_s, end_s]."""

    char_start: int
    char_end: int
    start_s: float
    end_s: float
    speaker: str | None = None


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of sentences, whitespace trimmed, empty ones dropped."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((pos, match.start()))
        pos = match.end()
    spans.append((pos, len(text)))
    out = []
    for start, end in spans:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            out.append((start, end))
    return out


def _split_long(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    """Cut a sentence longer than `size` at word boundaries."""
    pieces = []
    while end - start > size:
        cut = text.rfind(" ", start, start + size)
        if cut <= start:
            cut = start + size
        pieces.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        pieces.append((start, end))
    return pieces


def pack_spans(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """Group sentences into chunks of at most ~`size` chars; consecutive chunks share whole
    trailing sentences worth at most `overlap` chars (so context is not cut mid-sentence)."""
    if overlap >= size:
        raise ValueError("overlap must be smaller than size")
    units: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        units.extend(_split_long(text, start, end, size))
    chunks: list[tuple[int, int]] = []
    i = 0
    while i < len(units):
        j = i
        start = units[i][0]
        while j + 1 < len(units) and units[j + 1][1] - start <= size:
            j += 1
        chunks.append((start, units[j][1]))
        if j + 1 >= len(units):
            break
        # step back over trailing sentences that fit in the overlap budget, always advancing
        k = j + 1
        while k - 1 > i and units[j][1] - units[k - 1][0] <= overlap:
            k -= 1
        i = k
    return chunks


def join_segments(segments: Sequence[dict[str, Any]]) -> tuple[str, list[TimedSpan]]:
    """Join segment texts into one string and map character ranges to seconds.

    Word timings are used when present (finer windows), else the segment's own times.
    """
    parts: list[str] = []
    spans: list[TimedSpan] = []
    offset = 0
    for segment in segments:
        seg_text = (segment.get("text") or "").strip()
        if not seg_text:
            continue
        if parts:
            parts.append(" ")
            offset += 1
        words = segment.get("words") or []
        placed = False
        if words:
            cursor = 0
            word_spans = []
            for word in words:
                token = (word.get("word") or "").strip()
                if not token:
                    continue
                found = seg_text.find(token, cursor)
                if found < 0:
                    word_spans = []
                    break
                word_spans.append(
                    TimedSpan(
                        offset + found,
                        offset + found + len(token),
                        float(word["start"]),
                        float(word["end"]),
                        word.get("speaker") or segment.get("speaker"),
                    )
                )
                cursor = found + len(token)
            if word_spans:
                spans.extend(word_spans)
                placed = True
        if not placed:
            spans.append(
                TimedSpan(
                    offset,
                    offset + len(seg_text),
                    float(segment["start"]),
                    float(segment["end"]),
                    segment.get("speaker"),
                )
            )
        parts.append(seg_text)
        offset += len(seg_text)
    return "".join(parts), spans


def _window(spans: Sequence[TimedSpan], start: int, end: int) -> tuple[float | None, float | None]:
    hits = [s for s in spans if s.char_end > start and s.char_start < end]
    if not hits:
        return None, None
    return min(s.start_s for s in hits), max(s.end_s for s in hits)


def _speaker(spans: Sequence[TimedSpan], start: int, end: int) -> str | None:
    """Who said most of characters [start, end) (None when the transcript has no speakers)."""
    said: dict[str, int] = {}
    for s in spans:
        if s.speaker and s.char_end > start and s.char_start < end:
            said[s.speaker] = said.get(s.speaker, 0) + min(end, s.char_end) - max(start, s.char_start)
    return max(said, key=said.get) if said else None


def _split_at_turns(spans: Sequence[TimedSpan], sentences: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sentences cut where the speaker changes (Whisper may run two people's words together)."""
    out = []
    for start, end in sentences:
        inside = [s for s in spans if s.speaker and s.char_start >= start and s.char_end <= end]
        cut = start
        for before, after in zip(inside, inside[1:]):
            if after.speaker != before.speaker:
                out.append((cut, before.char_end))
                cut = after.char_start
        out.append((cut, end))
    return out


def chunk_transcript(segments: Sequence[dict[str, Any]], size: int = 500, overlap: int = 100) -> list[Chunk]:
    """Chunks of a transcript, each with the seconds of the speech it covers."""
    text, spans = join_segments(segments)
    sentences = _split_at_turns(spans, sentence_spans(text))
    chunks = []
    for index, (start, end) in enumerate(pack_spans(text, size, overlap)):
        start_s, end_s = _window(spans, start, end)
        moments = []
        for s_start, s_end in sentences:
            if s_start >= start and s_end <= end:
                m_start, m_end = _window(spans, s_start, s_end)
                if m_start is not None and m_end is not None:
                    who = _speaker(spans, s_start, s_end)
                    moment = (s_start - start, s_end - start, m_start, m_end)
                    moments.append((*moment, who) if who else moment)
        chunks.append(Chunk(index, text[start:end], start, end, start_s=start_s, end_s=end_s, moments=tuple(moments)))
    return chunks


def chunk_sections(text: str, sections: Sequence[dict[str, Any]], size: int = 500, overlap: int = 100) -> list[Chunk]:
    """Chunks that never cross a page or heading: each section is chunked on its own, so a
    chunk's citation (page, heading, lines) is exact."""
    if not sections:
        return chunk_document(text, size, overlap)
    out: list[Chunk] = []
    for section in sections:
        for piece in chunk_document(text, size, overlap, span=(section["char_start"], section["char_end"])):
            out.append(
                Chunk(
                    len(out),
                    piece.text,
                    piece.char_start,
                    piece.char_end,
                    line_start=piece.line_start,
                    line_end=piece.line_end,
                    page=section.get("page"),
                    heading=section.get("heading"),
                )
            )
    return out


def chunk_document(text: str, size: int = 500, overlap: int = 100, span: tuple[int, int] | None = None) -> list[Chunk]:
    """Chunks of a text document (or of `span` within it), each with its 1-based line range."""
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_of(offset: int) -> int:
        lo, hi = 0, len(line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    base, stop = span or (0, len(text))
    return [
        Chunk(
            i,
            text[base + s : base + e],
            base + s,
            base + e,
            line_start=line_of(base + s),
            line_end=line_of(max(base + s, base + e - 1)),
        )
        for i, (s, e) in enumerate(pack_spans(text[base:stop], size, overlap))
    ]
