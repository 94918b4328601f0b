"""Text out of documents, with the page or heading every passage came from.

`extract(data, ext, name)` turns the bytes of a PDF, HTML page, DOCX, Markdown or plain-text
file into one string plus `Section`s: contiguous character ranges that, in order, cover the
whole text, each carrying the page (PDF, 1-based) or the nearest preceding heading (HTML, DOCX,
Markdown) so a chunk can be cited as "page 2" or "Warranty".

One module per format, each saying why it reads its format the way it does: `pdf` (pypdf),
`html` (trafilatura), `docx` (python-docx), `markdown` (markdown-it-py; the text is kept
exactly), `plain`; `common` holds `Extracted`, `Section` and how blocks become sections. This
module picks the reader for an extension and runs it within the budget.

Every refusal is a `MediaError` naming the file. Deterministic: bytes in, no temp files, no
network, no Dagster (the parse itself may run in a forked child, see below).

Budgets (`ExtractBudget`, from the `extract_*` settings): before any parser runs, a DOCX's zip
directory is checked for bombs (declared XML size, compression ratios) and an HTML page for
size and nesting depth, a text or Markdown file for size (`grace_pipelines.text.budget`); a
PDF, HTML or DOCX parse then runs in a forked child with a time limit and a memory limit
(`grace_pipelines.text.isolate`, about 15-25 ms a document), and the text any parse returns is
held to `extract_max_bytes` too. Why: a 0.5 MB DOCX expanding to 150 MB of XML ran over
600 s at 2 GB RSS, and 10 MB of nested HTML over 600 s at 1.2 GB, holding the one transcription
slot. Every overrun is a `BudgetExceeded` (a `MediaError`) naming the file and the limit.
"""

from __future__ import annotations

from grace_pipelines.ingest.media import MediaError
from grace_pipelines.text.budget import (
    BudgetExceeded,
    ExtractBudget,
    check_docx_package,
    check_html,
    check_text_size,
)
from grace_pipelines.text.extract.common import (
    BLOCK_SEPARATOR,
    PAGE_SEPARATOR,
    Extracted,
    NoTextLayer,
    Section,
    norm_ext,
)
from grace_pipelines.text.extract.docx import DOCX_EXTS, extract_docx
from grace_pipelines.text.extract.html import HTML_EXTS, extract_html
from grace_pipelines.text.extract.markdown import (
    MARKDOWN_EXTS,
    extract_markdown,
    markdown_headings,
)
from grace_pipelines.text.extract.pdf import PDF_EXTS, extract_pdf
from grace_pipelines.text.extract.plain import TEXT_EXTS, extract_plain
from grace_pipelines.text.isolate import CAN_FORK, run_bounded

__all__ = [
    "BLOCK_SEPARATOR",
    "DOCX_EXTS",
    "EXTRACTABLE_EXTS",
    "HTML_EXTS",
    "MARKDOWN_EXTS",
    "PAGE_SEPARATOR",
    "PDF_EXTS",
    "TEXT_EXTS",
    "BudgetExceeded",
    "ExtractBudget",
    "Extracted",
    "NoTextLayer",
    "Section",
    "extract",
    "kind_label_for",
    "markdown_headings",
]

EXTRACTABLE_EXTS = PDF_EXTS | HTML_EXTS | DOCX_EXTS | MARKDOWN_EXTS | TEXT_EXTS

_READERS = {
    "pdf": extract_pdf,
    "html": extract_html,
    "docx": extract_docx,
    "markdown": extract_markdown,
    "text": extract_plain,
}
# parsed in a forked child with the time and memory budget; text and Markdown are read in this
# process, after the size check. markdown-it costs about 0.6 s per MB of notes and up to 5 s
# per MB of one-character lines (markdown.py); "markdown" here would put it under the budget too
_ISOLATED = frozenset({"pdf", "html", "docx"})


def kind_label_for(ext: str) -> str | None:
    ext = norm_ext(ext)
    if ext in PDF_EXTS:
        return "pdf"
    if ext in HTML_EXTS:
        return "html"
    if ext in DOCX_EXTS:
        return "docx"
    if ext in MARKDOWN_EXTS:
        return "markdown"
    if ext in TEXT_EXTS:
        return "text"
    return None


def extract(data: bytes, ext: str, name: str, budget: ExtractBudget | None = None) -> Extracted:
    """Text and sections of one document; raises MediaError (naming `name`) when unreadable,
    `BudgetExceeded` (a MediaError) when over a size, time or memory limit of `budget`
    (default: `ExtractBudget()`, the same values as the settings' defaults)."""
    budget = budget or ExtractBudget()
    label = kind_label_for(ext)
    if label is None:
        raise MediaError(
            f"{name}: cannot extract text from .{norm_ext(ext) or '(none)'}; "
            f"supported: {', '.join(sorted(EXTRACTABLE_EXTS))}"
        )
    if not data:
        raise MediaError(f"{name}: file is empty (0 bytes)")
    # cheap checks first, in this process: no parser has seen the bytes yet
    if label == "docx":
        if not data.startswith(b"PK"):
            raise MediaError(f"{name}: not a DOCX file (not a zip package)")
        check_docx_package(data, name, budget)
    elif label == "html":
        check_html(data, name, budget)
    elif label in ("markdown", "text"):
        check_text_size(len(data), name, budget)
    if budget.isolate and CAN_FORK and label in _ISOLATED:
        _import_parser(label)  # once per process, here: each child then starts with it loaded
        return run_bounded(
            _extract_within,
            (data, label, name, budget.max_bytes),
            name=name,
            timeout_s=budget.timeout_s,
            max_memory_mb=budget.max_memory_mb,
        )
    return _extract_within(data, label, name, budget.max_bytes)


def _import_parser(label: str) -> None:
    if label == "pdf":
        import pypdf  # noqa: F401
    elif label == "html":
        import trafilatura  # noqa: F401 - also loads charset_normalizer for _decode_html
    elif label == "docx":
        import docx  # noqa: F401


def _extract_within(data: bytes, label: str, name: str, max_bytes: int) -> Extracted:
    """The parse itself (in the child when isolated), its text held to `max_bytes`."""
    doc = _READERS[label](data, name)
    # characters, not bytes: a cheap lower bound that needs no encoding of the whole text
    check_text_size(len(doc.text), name, ExtractBudget(max_bytes=max_bytes), "extracts to")
    return doc
