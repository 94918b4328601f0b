"""PDF: pypdf, text per page, one section per page with text, so a fact is cited as "page 2".

Pages are joined by a blank line. A PDF with no text on any page (a scan) raises `NoTextLayer`;
OCR is not available. Encrypted PDFs are opened with the empty user password when that works
(owner-password-only files), otherwise refused.

Why the logging below: pypdf reports damage ("EOF marker not found", "startxref found while
searching for %%EOF") through the `pypdf` logger, which with no handler configured went straight
to stderr. That logger no longer propagates (set when this module is imported); its records
during an extraction are kept and, when the PDF turns out unreadable, named in the error
("...; pypdf: EOF marker not found").
"""

from __future__ import annotations

import io
import logging
import warnings

from grace_pipelines.ingest.media import MediaError
from grace_pipelines.text.extract.common import (
    PAGE_SEPARATOR,
    Extracted,
    NoTextLayer,
    assemble,
    clean,
    squash,
)

PDF_EXTS = frozenset({"pdf"})


class _PdfNotes(logging.Handler):
    """Collects what pypdf says during one extraction (its logger does not propagate)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.notes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            note = squash(record.getMessage())
        except Exception:  # noqa: BLE001 - a bad log call must not break extraction
            return
        if note and note not in self.notes and len(self.notes) < 3:
            self.notes.append(note[:200])


_PYPDF_LOG = logging.getLogger("pypdf")
_PYPDF_LOG.propagate = False  # Python's last-resort handler would print it to stderr
_PYPDF_LOG.addHandler(logging.NullHandler())


def extract_pdf(data: bytes, name: str) -> Extracted:
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise MediaError(f"{name}: not a PDF file (no %PDF header)")
    notes = _PdfNotes()
    _PYPDF_LOG.addHandler(notes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pypdf's PdfReadWarning & co. go nowhere
            return _read_pdf(data, name, notes)
    finally:
        _PYPDF_LOG.removeHandler(notes)


def _read_pdf(data: bytes, name: str, notes: _PdfNotes) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception:  # noqa: BLE001 - unsupported algorithm, missing crypto backend
                opened = 0
            if not opened:
                raise MediaError(f"{name}: PDF is encrypted (password-protected); cannot read it")
        pages = [clean(page.extract_text() or "").strip() for page in reader.pages]
    except (MediaError, MemoryError):
        raise
    except FileNotDecryptedError:
        raise MediaError(f"{name}: PDF is encrypted (password-protected); cannot read it") from None
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types for damaged files
        said = f"; pypdf: {'; '.join(notes.notes)}" if notes.notes else ""
        raise MediaError(f"{name}: not a readable PDF ({type(exc).__name__}: {exc}{said})") from None
    if not pages:
        raise MediaError(f"{name}: PDF has no pages")
    if not any(page.strip() for page in pages):
        raise NoTextLayer(
            f"{name}: no text layer on any of its {len(pages)} page(s) (scanned PDF?); OCR is not available"
        )
    blocks = ((text, number, None, True) for number, text in enumerate(pages, start=1))
    return assemble(blocks, PAGE_SEPARATOR, "pdf", name)
