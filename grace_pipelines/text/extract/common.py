"""What every format's extractor returns, and the helpers that build it.

Why a module of its own: the PDF, HTML, DOCX, Markdown and plain-text extractors each produce
the same `Extracted` (one string plus contiguous `Section`s that cover it), and a chunk is cited
by the section it falls in ("page 2", "Warranty"). The types and the assembly rules live here,
once, so every format derives its sections the same way; the format modules only turn bytes
into (text, page, heading, starts_section) blocks. Nothing here imports a parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from grace_pipelines.ingest.media import MediaError

PAGE_SEPARATOR = "\n\n"
BLOCK_SEPARATOR = "\n\n"

# (text, page, heading, starts_section): what a format extractor hands to `assemble`
Block = tuple[str, int | None, str | None, bool]


class NoTextLayer(MediaError):
    """A PDF whose pages carry no text (a scanned image); it needs OCR, which Grace lacks."""


@dataclass(frozen=True)
class Section:
    """Characters [char_start, char_end) of `Extracted.text`, from `page` / under `heading`."""

    char_start: int
    char_end: int
    page: int | None = None
    heading: str | None = None

    @property
    def label(self) -> str | None:
        """How a citation names this place: "page 2", the heading, or None for untitled text."""
        if self.page is not None:
            return f"page {self.page}"
        return self.heading


@dataclass(frozen=True)
class Extracted:
    text: str
    sections: list[Section] = field(default_factory=list)
    kind_label: str = "text"  # pdf | html | docx | markdown | text

    def section_at(self, char: int) -> Section | None:
        """The section holding character offset `char` (None outside the text)."""
        for section in self.sections:
            if section.char_start <= char < section.char_end:
                return section
        return None


def norm_ext(ext: str) -> str:
    return ext.strip().lower().lstrip(".")


def clean(text: str) -> str:
    """Library output may carry NULs or odd line endings; keep the rest as is."""
    return text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def assemble(blocks: Iterable[Block], separator: str, label: str, name: str) -> Extracted:
    """Join (text, page, heading, starts_section) blocks and derive contiguous sections.

    A new section starts where `starts_section` is set or the page/heading changes; each
    section runs to the start of the next, the last to the end of the text.
    """
    parts: list[str] = []
    starts: list[tuple[int, int | None, str | None]] = []
    pos = 0
    current: tuple[int | None, str | None] | None = None
    for text, page, heading, new_section in blocks:
        if not text.strip():
            continue
        if parts:
            parts.append(separator)
            pos += len(separator)
        if new_section or current != (page, heading):
            starts.append((pos, page, heading))
            current = (page, heading)
        parts.append(text)
        pos += len(text)
    full = "".join(parts)
    if not full.strip():
        raise MediaError(f"{name}: document has no text")
    sections = [
        Section(start, starts[i + 1][0] if i + 1 < len(starts) else len(full), page, heading)
        for i, (start, page, heading) in enumerate(starts)
    ]
    return Extracted(full, sections, label)


def contiguous(starts: Sequence[tuple[int, str | None]], end: int) -> list[Section]:
    """Sections from (offset, heading) starts, each running to the next start (the last to `end`)."""
    sections = []
    for i, (start, heading) in enumerate(starts):
        stop = starts[i + 1][0] if i + 1 < len(starts) else end
        if stop > start:
            sections.append(Section(start, stop, None, heading))
    return sections
