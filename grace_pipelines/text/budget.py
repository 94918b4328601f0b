"""Size budgets for document extraction, checked before any parser runs.

Why: in a fault-injection campaign a 0.5 MB DOCX that expands to 150 MB of XML ran over 600 s
at 2.0 GB RSS inside python-docx, and 10 MB of deeply nested HTML ran over 600 s at 1.2 GB in
trafilatura, all while holding the single `transcription` pool slot that every other source
waits for. These checks refuse such files in milliseconds, without inflating or parsing them;
`grace_pipelines.text.isolate` then bounds the time and memory of the parse itself, for what
no cheap check can foresee (a PDF's content streams, say).

Defaults, measured on this 2-core machine (Python 3.11, python-docx 1.2, trafilatura 2.3):
- `max_bytes` 50 MB of expanded XML (DOCX) or text (Markdown, plain text, and the extracted
  text of any format). A DOCX with 5.4 MB of document.xml (12,000 paragraphs, about 1,500
  pages, 4.2 M characters) extracted in 0.6 s at 175 MB peak RSS; one with 50 MB of XML
  (21 M characters) in 9 s at 600 MB peak RSS in the child, inside the default time (120 s) and
  memory (1,024 MB) budgets, so whatever passes this check can also finish. A 50-page PDF took
  0.2 s and a 300-page one 0.75 s (pypdf, about 2.8 K characters a page).
- `timeout_s` 120 s and `max_memory_mb` 1,024 MB: generous for the above on a loaded 2-core
  machine, and short enough that one document cannot hold the transcription slot for long.
- `max_ratio` 100:1, for zip members (and the whole package) above 1 MiB expanded. Document
  XML of real text compressed 4:1 here and repetitive generated XML stays well under 50:1;
  deflate tops out near 1,030:1, where bombs live. python-docx loads every part, media too, so
  the ratio also bounds images that would never count as XML.
- `html_max_bytes` 5 MB. trafilatura took 1.4 s on 0.9 MB of ordinary markup, 19 s on 4.5 MB
  (it grows faster than linearly) and about 10 s per MB of markup nested 200 deep.
- `html_max_depth` 200. Real pages nest 15 to 60 elements deep; at 255 and beyond libxml2
  (under trafilatura) silently stops building the tree and trafilatura returns nothing, so
  deeper pages could not be read properly anyway.

Declared zip sizes can be trusted as upper bounds: `zipfile` (which python-docx uses) stops
inflating a member at its declared `file_size` and then fails on the CRC, so a member that lies
about its size cannot expand past what was checked here.

Every refusal is a `BudgetExceeded` (a `MediaError`) naming the file, the size found, the limit
and the setting that holds it. No Dagster here: this is policy, the asset only calls it.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from typing import Any

from grace_pipelines.ingest.media import MediaError

MB = 1024 * 1024

DEFAULT_MAX_BYTES = 50 * MB
DEFAULT_MAX_RATIO = 100.0
DEFAULT_HTML_MAX_BYTES = 5 * MB
DEFAULT_HTML_MAX_DEPTH = 200
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_MEMORY_MB = 1024

RATIO_FLOOR_BYTES = MB  # members expanding to less than this cannot hurt, whatever their ratio
MAX_ZIP_MEMBERS = 10_000
XML_SUFFIXES = (".xml", ".rels", ".vml")


class BudgetExceeded(MediaError):
    """A document is over one of the extraction budgets; `setting` names the knob."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across the extraction child process
        return (type(self), (str(self), self.setting))


@dataclass(frozen=True)
class ExtractBudget:
    """Limits for one extraction. `isolate=False` parses in this process (no time or memory
    bound: for debugging, and where `os.fork` is missing)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_ratio: float = DEFAULT_MAX_RATIO
    html_max_bytes: int = DEFAULT_HTML_MAX_BYTES
    html_max_depth: int = DEFAULT_HTML_MAX_DEPTH
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_memory_mb: int = DEFAULT_MAX_MEMORY_MB
    isolate: bool = True

    @classmethod
    def from_settings(cls, settings: Any) -> ExtractBudget:
        """From GraceSettings' `extract_*` fields (duck-typed: no settings import here)."""
        return cls(
            max_bytes=settings.extract_max_bytes,
            max_ratio=settings.extract_max_ratio,
            html_max_bytes=settings.extract_html_max_bytes,
            html_max_depth=settings.extract_html_max_depth,
            timeout_s=settings.extract_timeout_s,
            max_memory_mb=settings.extract_max_memory_mb,
        )


def size(n: float) -> str:
    """Bytes as people read them: "150 MB", "4.2 MB", "900 KB", "300 bytes"."""
    if n < 1024:
        return f"{int(n)} bytes"
    if n >= 10 * MB:
        return f"{n / MB:.0f} MB"
    if n >= MB:
        return f"{n / MB:.1f} MB"
    return f"{round(n / 1024)} KB"


# --------------------------------------------------------------------------- text


def check_text_size(nbytes: int, name: str, budget: ExtractBudget, what: str = "is") -> None:
    if nbytes > budget.max_bytes:
        raise BudgetExceeded(
            f"{name}: {what} {size(nbytes)} of text, above the {size(budget.max_bytes)} limit (extract_max_bytes)",
            "extract_max_bytes",
        )


# --------------------------------------------------------------------------- DOCX (zip)


def check_docx_package(data: bytes, name: str, budget: ExtractBudget) -> None:
    """Refuse a zip bomb from the central directory alone (nothing is inflated)."""
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise MediaError(f"{name}: not a readable DOCX file (BadZipFile: {exc})") from None
    if len(infos) > MAX_ZIP_MEMBERS:
        raise BudgetExceeded(
            f"{name}: zip package holds {len(infos):,} members, above the {MAX_ZIP_MEMBERS:,} limit",
            "extract_max_bytes",
        )
    xml = sum(i.file_size for i in infos if i.filename.lower().endswith(XML_SUFFIXES))
    if xml > budget.max_bytes:
        raise BudgetExceeded(
            f"{name}: expands to {size(xml)} of XML, above the {size(budget.max_bytes)} limit (extract_max_bytes)",
            "extract_max_bytes",
        )
    for info in infos:
        _check_ratio(name, f"member {info.filename}", info.file_size, info.compress_size, budget)
    _check_ratio(name, "package", sum(i.file_size for i in infos), sum(i.compress_size for i in infos), budget)


def _check_ratio(name: str, what: str, expanded: int, packed: int, budget: ExtractBudget) -> None:
    if expanded < RATIO_FLOOR_BYTES:
        return
    ratio = expanded / max(packed, 1)
    if ratio > budget.max_ratio:
        raise BudgetExceeded(
            f"{name}: {what} expands {ratio:,.0f}:1 (to {size(expanded)}), above the "
            f"{budget.max_ratio:,.0f}:1 compression ratio limit (extract_max_ratio)",
            "extract_max_ratio",
        )


# --------------------------------------------------------------------------- HTML

_HTML_TOKEN = re.compile(rb"<!--|<(/?)([A-Za-z][A-Za-z0-9:_-]*)[^>]*?(/?)>", re.DOTALL)
_RAW_TEXT = frozenset({b"script", b"style", b"textarea", b"title", b"xmp", b"noscript"})
_RAW_TEXT_END = {tag: re.compile(b"</" + tag, re.IGNORECASE) for tag in _RAW_TEXT}
_VOID = frozenset(
    {
        b"area",
        b"base",
        b"br",
        b"col",
        b"embed",
        b"hr",
        b"img",
        b"input",
        b"link",
        b"meta",
        b"param",
        b"source",
        b"track",
        b"wbr",
        b"keygen",
        b"frame",
        b"basefont",
        b"isindex",
    }
)
_INLINE = frozenset(
    {
        b"a",
        b"b",
        b"i",
        b"em",
        b"strong",
        b"span",
        b"small",
        b"big",
        b"u",
        b"s",
        b"font",
        b"code",
        b"sub",
        b"sup",
        b"mark",
        b"abbr",
        b"cite",
        b"q",
        b"label",
        b"tt",
        b"kbd",
        b"var",
    }
)
# Elements whose end tag HTML lets authors leave out, and the elements that bound the search
# for an open one to close (an <li> closes the previous <li> of its own list, not an outer one).
_OPTIONAL_END: dict[bytes, frozenset[bytes] | None] = {
    b"li": frozenset({b"ul", b"ol", b"menu"}),
    b"dt": frozenset({b"dl"}),
    b"dd": frozenset({b"dl"}),
    b"tr": frozenset({b"table", b"thead", b"tbody", b"tfoot"}),
    b"td": frozenset({b"tr", b"table"}),
    b"th": frozenset({b"tr", b"table"}),
    b"thead": frozenset({b"table"}),
    b"tbody": frozenset({b"table"}),
    b"tfoot": frozenset({b"table"}),
    b"option": frozenset({b"select", b"datalist", b"optgroup"}),
    b"optgroup": frozenset({b"select"}),
    b"p": None,  # searches down through inline elements only
}
_IMPLIED_BY = {b"dt": (b"dt", b"dd"), b"dd": (b"dt", b"dd"), b"td": (b"td", b"th"), b"th": (b"td", b"th")}


def html_depth(data: bytes, stop_above: int | None = None) -> int:
    """How deep the elements of an HTML page nest, from the tags alone (no tree is built).

    Void elements, raw text (script, style) and comments do not count, and end tags HTML
    lets authors omit (p, li, td, ...) are implied the way browsers do, so sloppy but ordinary
    markup is not mistaken for deep nesting. Stops early once past `stop_above`.
    """
    stack: list[bytes] = []
    deepest = 0
    pos = 0
    search = _HTML_TOKEN.search
    while True:
        match = search(data, pos)
        if match is None:
            return deepest
        pos = match.end()
        if match.group(0) == b"<!--":
            end = data.find(b"-->", pos)
            if end < 0:
                return deepest
            pos = end + 3
            continue
        closing, tag, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if closing:
            if tag in stack:
                while stack.pop() != tag:
                    pass
            continue
        if tag in _VOID or self_closing:
            continue
        if tag in _RAW_TEXT:
            close = _RAW_TEXT_END[tag].search(data, pos)
            if close is None:
                return max(deepest, len(stack) + 1)
            pos = close.start()
            continue
        if tag in _OPTIONAL_END:
            _close_implied(stack, tag)
        stack.append(tag)
        if len(stack) > deepest:
            deepest = len(stack)
            if stop_above is not None and deepest > stop_above:
                return deepest


def _close_implied(stack: list[bytes], tag: bytes) -> None:
    """Pop an open element that `tag` implicitly ends, looking only within its scope."""
    closes = _IMPLIED_BY.get(tag, (tag,))
    scope = _OPTIONAL_END[tag]
    for i in range(len(stack) - 1, -1, -1):
        open_tag = stack[i]
        if open_tag in closes:
            del stack[i:]
            return
        if scope is None:
            if open_tag not in _INLINE:
                return
        elif open_tag in scope:
            return


def check_html(data: bytes, name: str, budget: ExtractBudget) -> None:
    """Refuse an HTML page too large or too deeply nested for the main-text extractor."""
    if len(data) > budget.html_max_bytes:
        raise BudgetExceeded(
            f"{name}: HTML page is {size(len(data))}, above the {size(budget.html_max_bytes)} "
            "limit (extract_html_max_bytes)",
            "extract_html_max_bytes",
        )
    depth = html_depth(data, stop_above=budget.html_max_depth)
    if depth > budget.html_max_depth:
        raise BudgetExceeded(
            f"{name}: HTML nests elements more than {budget.html_max_depth} deep, above the "
            f"{budget.html_max_depth} limit (extract_html_max_depth)",
            "extract_html_max_depth",
        )
