"""Document extraction with the real libraries (pypdf, trafilatura, python-docx) on committed
fixtures from tests/fixtures/docs/make_docs.py."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grace_pipelines.ingest.media import MediaError
from grace_pipelines.text.extract import (
    ExtractBudget,
    Extracted,
    NoTextLayer,
    Section,
    extract,
    markdown_headings,
)

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "docs"


def load(name: str) -> Extracted:
    return extract((DOCS / name).read_bytes(), name.rsplit(".", 1)[1], name)


def section_of(doc: Extracted, needle: str) -> Section:
    at = doc.text.find(needle)
    assert at >= 0, f"{needle!r} not in extracted text:\n{doc.text}"
    section = doc.section_at(at)
    assert section is not None
    # the whole fact lies in one section
    assert section.char_end >= at + len(needle)
    return section


def assert_covering(doc: Extracted) -> None:
    """Sections are non-empty, in order, contiguous, and cover the whole text."""
    assert doc.sections, "no sections"
    assert doc.sections[0].char_start == 0
    assert doc.sections[-1].char_end == len(doc.text)
    for before, after in zip(doc.sections, doc.sections[1:]):
        assert before.char_end == after.char_start
    for s in doc.sections:
        assert s.char_start < s.char_end
        assert doc.text[s.char_start : s.char_end].strip()


# ------------------------------------------------------------------------------------ PDF


def test_pdf_fact_on_page_two_is_cited_as_page_two():
    doc = load("kettle_guide.pdf")
    assert doc.kind_label == "pdf"
    assert [s.page for s in doc.sections] == [1, 2, 3]
    assert section_of(doc, "warranty lasts 36 months").page == 2
    assert section_of(doc, "1.7 litres").page == 1
    assert section_of(doc, "every 6 weeks").page == 3
    assert section_of(doc, "warranty lasts 36 months").label == "page 2"
    assert_covering(doc)
    # pages are joined by a blank line
    assert "\n\nWarranty" in doc.text


def test_scanned_pdf_raises_no_text_layer_naming_the_file():
    name = "scanned_invoice.pdf"
    with pytest.raises(NoTextLayer) as info:
        extract((DOCS / name).read_bytes(), "pdf", name)
    assert isinstance(info.value, MediaError)
    assert name in str(info.value)
    assert "no text layer" in str(info.value)
    assert "OCR" in str(info.value)


def test_password_protected_pdf_is_refused_clearly():
    with pytest.raises(MediaError) as info:
        load("locked.pdf")
    assert not isinstance(info.value, NoTextLayer)
    assert "locked.pdf" in str(info.value)
    assert "encrypted" in str(info.value)


def test_owner_password_only_pdf_opens_with_empty_user_password():
    doc = load("owner_locked.pdf")
    assert "1.7 litres" in doc.text
    assert doc.sections[0].page == 1


def test_truncated_pdf_is_a_media_error():
    data = (DOCS / "kettle_guide.pdf").read_bytes()[:300]
    with pytest.raises(MediaError) as info:
        extract(data, "pdf", "cut.pdf")
    assert "cut.pdf" in str(info.value)


# pypdf reports damage through its logger; with no handler configured Python's last-resort
# handler printed "EOF marker not found" straight to the terminal.
PDF_STDERR_PROBE = """
import sys
import lancedb  # its at-fork hook warns in the extraction child
from pathlib import Path
from grace_pipelines.ingest.media import MediaError
from grace_pipelines.text.extract import ExtractBudget, extract
data = Path(sys.argv[1]).read_bytes()
for isolate in (True, False):
    for cut in (len(data) - 10, 300):
        try:
            extract(data[:cut], "pdf", "cut.pdf", ExtractBudget(isolate=isolate))
        except MediaError as exc:
            print(exc)
"""


def test_damaged_pdf_warnings_do_not_leak_to_stderr():
    proc = subprocess.run(
        [sys.executable, "-c", PDF_STDERR_PROBE, str(DOCS / "kettle_guide.pdf")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 4, proc.stdout
    for line in lines:  # still a clear failure naming the file, with what pypdf noticed
        assert line.startswith("cut.pdf: not a readable PDF ("), line
        assert "; pypdf: " in line and "EOF marker not found" in line, line


def test_pypdf_records_stay_out_of_the_root_logger():
    seen: list[logging.LogRecord] = []

    class Root(logging.Handler):  # not caplog: pytest also hooks non-propagating loggers
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Root(logging.DEBUG)
    logging.root.addHandler(handler)
    try:
        data = (DOCS / "kettle_guide.pdf").read_bytes()[:300]
        for isolate in (True, False):
            with pytest.raises(MediaError, match="^cut.pdf: not a readable PDF.*EOF marker not found"):
                extract(data, "pdf", "cut.pdf", ExtractBudget(isolate=isolate))
    finally:
        logging.root.removeHandler(handler)
    assert not [r for r in seen if r.name.startswith("pypdf")]


# ------------------------------------------------------------------------------------ HTML


def test_lxml_html_clean_is_a_direct_dependency():
    """trafilatura needs lxml[html_clean]; pip 23.2 (a new Python 3.11 venv's) does not resolve
    that extra of lxml 6.1, and every HTML extraction then failed with ImportError."""
    tomllib = pytest.importorskip("tomllib")
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    assert any(re.match(r"lxml[_-]html[_-]clean\b", d, re.IGNORECASE) for d in deps), deps
    import lxml.html.clean  # noqa: F401 - what trafilatura imports


NAV_AND_BOILERPLATE = [
    "Bin collection days",
    "Parking permits",
    "Sign in to My Portmere",
    "Library opening hours",
    "Swimming pool timetable",
    "Recycling centre map",
    "Copyright 2024 Portmere",
    "Cookie policy",
    "Accessibility statement",
]


def test_html_keeps_the_article_and_drops_navigation_and_footer():
    doc = load("festival.html")
    assert doc.kind_label == "html"
    assert "lantern parade leaves the lighthouse" in doc.text
    assert "Shuttle buses run every 15 minutes" in doc.text
    for boilerplate in NAV_AND_BOILERPLATE:
        assert boilerplate not in doc.text, boilerplate
    assert_covering(doc)


def test_html_facts_carry_their_heading():
    doc = load("festival.html")
    assert section_of(doc, "Friday 11 October at 7 pm").heading == "Opening night"
    assert section_of(doc, "every 15 minutes").heading == "Getting there"
    assert section_of(doc, "last shuttle back leaves the quay at 11:30 pm").label == "Getting there"
    assert all(s.page is None for s in doc.sections)


def test_html_fallback_reads_main_when_trafilatura_finds_nothing(monkeypatch):
    """trafilatura's own main extractor finds nothing: its fallbacks (readability, jusText,
    baseline) still give the article, headings kept, boilerplate dropped."""
    import trafilatura.core
    from lxml.etree import Element

    monkeypatch.setattr(trafilatura.core, "extract_content", lambda tree, options: (Element("body"), ""))
    doc = load("festival.html")
    assert "Shuttle buses run every 15 minutes" in doc.text
    for boilerplate in NAV_AND_BOILERPLATE:
        assert boilerplate not in doc.text, boilerplate
    assert section_of(doc, "Friday 11 October at 7 pm").heading == "Opening night"
    assert section_of(doc, "every 15 minutes").heading == "Getting there"
    assert_covering(doc)


def test_html_recall_pass_when_the_default_pass_finds_nothing(monkeypatch):
    import trafilatura

    real = trafilatura.extract
    calls: list[bool] = []

    def only_with_recall(*args, **kwargs):
        calls.append(kwargs.get("favor_recall", False))
        return real(*args, **kwargs) if kwargs.get("favor_recall") else None

    monkeypatch.setattr(trafilatura, "extract", only_with_recall)
    doc = extract((DOCS / "festival.html").read_bytes(), "html", "festival.html", ExtractBudget(isolate=False))
    assert calls[-1] is True
    assert section_of(doc, "every 15 minutes").heading == "Getting there"


def test_html_when_trafilatura_finds_nothing_at_all_is_a_clear_media_error(monkeypatch):
    import trafilatura

    monkeypatch.setattr(trafilatura, "extract", lambda *a, **k: None)
    with pytest.raises(MediaError, match=r"^festival\.html: no readable main text found in the HTML page$"):
        load("festival.html")


def test_html_fragment_without_html_element_is_read():
    """trafilatura refuses a lone block without <html> as "not HTML"; it is wrapped and read."""
    doc = extract(b"<p>The boiler service is due in March.</p>", "html", "snippet.html")
    assert doc.text == "The boiler service is due in March."


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01",
        b"<html><body><nav>Home</nav></body></html>",
    ],
    ids=["binary", "only-navigation"],
)
def test_html_without_readable_text_is_a_media_error(data):
    with pytest.raises(MediaError) as info:
        extract(data, "html", "page.html")
    assert "page.html" in str(info.value)


# ------------------------------------------------------------------------------------ DOCX


def test_docx_facts_carry_their_heading():
    doc = load("onboarding.docx")
    assert doc.kind_label == "docx"
    assert [s.heading for s in doc.sections] == [
        "Project Kestrel Onboarding",
        "Access and accounts",
        "Release schedule",
    ]
    assert section_of(doc, "form IT-204").heading == "Access and accounts"
    assert section_of(doc, "every second Thursday").heading == "Release schedule"
    assert section_of(doc, "first week").heading == "Project Kestrel Onboarding"
    assert_covering(doc)


@pytest.mark.parametrize(
    "data",
    [
        b"this is not a zip file at all",
        b"PK\x03\x04" + b"\x00" * 40,
        None,  # a valid zip that is not a Word document
    ],
    ids=["text", "broken-zip", "zip-without-document"],
)
def test_corrupt_docx_is_a_media_error(data):
    if data is None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("hello.txt", "hi")
        data = buf.getvalue()
    with pytest.raises(MediaError) as info:
        extract(data, "docx", "notes.docx")
    assert "notes.docx" in str(info.value)


# ------------------------------------------------------------------------------------ Markdown / text

MARKDOWN = """Intro line before any heading.

# Garden plan

Plant the tomatoes after the last frost, around mid-May.

## Watering

Water the beds at 6 am.

```python
# not a heading, this is code
x = 1
```

Compost
-------

Turn the heap every two weeks.
"""


def test_markdown_headings_become_sections_and_offsets_index_the_text():
    doc = extract(MARKDOWN.encode(), "md", "garden.md")
    assert doc.kind_label == "markdown"
    assert doc.text == MARKDOWN  # original characters kept: line citations still work
    assert [s.heading for s in doc.sections] == [
        None,
        "Garden plan",
        "Watering",
        "Compost",
    ]
    assert_covering(doc)
    for s in doc.sections[1:]:
        assert doc.text[s.char_start : s.char_end].lstrip("# ").startswith(s.heading)
    assert section_of(doc, "mid-May").heading == "Garden plan"
    assert section_of(doc, "6 am").heading == "Watering"
    assert section_of(doc, "not a heading").heading == "Watering"
    assert section_of(doc, "every two weeks").heading == "Compost"


def test_markdown_heading_levels_and_closing_hashes():
    text = "# One #\n\ntext\n\n### Three ###\n\nmore\n#nospace is not a heading\n"
    assert [(level, title) for _, level, title in markdown_headings(text)] == [
        (1, "One"),
        (3, "Three"),
    ]


def test_markdown_starting_with_blank_lines_has_no_empty_section():
    doc = extract(b"\n\n# Title\n\nBody.\n", "markdown", "t.markdown")
    assert [s.heading for s in doc.sections] == ["Title"]
    assert_covering(doc)


def test_markdown_with_bom_and_crlf_is_decoded_like_media():
    data = "\ufeff# Título\r\n\r\nCafé at 9.\r\n".encode("utf-8")
    doc = extract(data, ".MD", "notes.md")
    assert doc.text.startswith("# Título")
    assert doc.sections[0].heading == "Título"
    assert_covering(doc)


def test_plain_text_is_one_section_and_kept_verbatim():
    text = "# not a heading in .txt\nline two\n"
    doc = extract(text.encode(), "txt", "a.txt")
    assert doc.kind_label == "text"
    assert doc.text == text
    assert doc.sections == [Section(0, len(text), None, None)]


@pytest.mark.parametrize("ext", ["md", "txt"])
def test_binary_text_document_is_a_media_error(ext):
    with pytest.raises(MediaError) as info:
        extract(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", ext, f"photo.{ext}")
    assert f"photo.{ext}" in str(info.value)


# ------------------------------------------------------------------------------------ general


@pytest.mark.parametrize("ext", ["pdf", "html", "docx", "md", "txt"])
def test_garbage_and_empty_bytes_are_media_errors_naming_the_file(ext):
    for data in (b"\x00\x01\x02garbage\xff\xfe\x00" * 10, b""):
        with pytest.raises(MediaError) as info:
            extract(data, ext, f"broken.{ext}")
        assert f"broken.{ext}" in str(info.value)


def test_unsupported_extension_is_a_media_error():
    with pytest.raises(MediaError, match=r"sheet\.xlsx"):
        extract(b"PK\x03\x04", "xlsx", "sheet.xlsx")


@pytest.mark.parametrize("name", ["kettle_guide.pdf", "festival.html", "onboarding.docx"])
def test_extraction_is_deterministic(name):
    assert load(name) == load(name)
