"""Extraction budgets: zip bombs, huge or deeply nested HTML, slow and memory-hungry parses.

Hostile files are generated here (small on disk). Each test asserts the outcome (a clear
`MediaError` naming the file and the limit, and that it came back well inside the budget);
bounds are generous, none of this is a speed target.
"""

from __future__ import annotations

import io
import os
import re
import time
import zipfile
from pathlib import Path

import docx
import pytest

from grace_pipelines.ingest.media import MediaError
from grace_pipelines.settings import GraceSettings
from grace_pipelines.text.budget import BudgetExceeded, ExtractBudget, html_depth
from grace_pipelines.text.extract import NoTextLayer, extract
from grace_pipelines.text.isolate import CAN_FORK, run_bounded

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "docs"
MB = 1024 * 1024
PARA = b"<w:p><w:r><w:t>all work and no play makes jack a dull boy</w:t></w:r></w:p>"

needs_fork = pytest.mark.skipif(not CAN_FORK, reason="time/memory isolation needs os.fork (Linux)")


def docx_with_body(body_bytes: int, *, unit: bytes = PARA, extra: dict[str, bytes] | None = None) -> bytes:
    """A valid DOCX whose document.xml body is `unit` repeated to about `body_bytes`, streamed
    into the zip (never held in memory whole); `extra` adds members."""
    base = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("hello")
    document.save(base)
    src = zipfile.ZipFile(io.BytesIO(base.getvalue()))
    out = io.BytesIO()
    block = unit * max(1, 65536 // len(unit))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info in src.infolist():
            if info.filename != "word/document.xml":
                dst.writestr(info.filename, src.read(info.filename))
                continue
            head, tail = src.read(info.filename).split(b"<w:body>")
            with dst.open("word/document.xml", "w", force_zip64=True) as f:
                f.write(head + b"<w:body>")
                for _ in range(body_bytes // len(block)):
                    f.write(block)
                f.write(tail)
        for name, data in (extra or {}).items():
            dst.writestr(name, data)
    return out.getvalue()


def nested_html(depth: int, repeats: int = 1) -> bytes:
    unit = "<div>" * depth + "<p>deep text</p>" + "</div>" * depth
    return f"<html><body>{unit * repeats}</body></html>".encode()


def ordinary_html(approx_bytes: int) -> bytes:
    unit = (
        "<div class='c'><section><h2>Chapter</h2><p>Some ordinary prose, with words that go on "
        "for a while, and then some more words about the festival.</p><ul><li>one</li><li>two"
        "</li></ul></section></div>"
    )
    return f"<html><body><main><article>{unit * (approx_bytes // len(unit))}</article></main></body></html>".encode()


def refused(data: bytes, ext: str, name: str, budget: ExtractBudget | None = None) -> tuple[str, float]:
    start = time.perf_counter()
    with pytest.raises(MediaError) as info:
        extract(data, ext, name, budget)
    return str(info.value), time.perf_counter() - start


# ------------------------------------------------------------------------------- DOCX bombs


def test_docx_expanding_to_150_mb_of_xml_is_refused_without_inflating():
    bomb = docx_with_body(150 * MB)
    assert len(bomb) < 1 * MB  # small on disk
    message, seconds = refused(bomb, "docx", "big.docx")
    # 150 MB of body plus python-docx's template parts (styles, numbering, ...)
    assert re.fullmatch(r"big\.docx: expands to 15\d MB of XML, above the 50 MB limit \(extract_max_bytes\)", message)
    assert seconds < 5  # read from the zip directory alone (about a millisecond here)


def test_docx_member_with_bomb_ratio_is_refused_below_the_size_limit():
    bomb = docx_with_body(20 * MB)  # under 50 MB, but repeated text compresses about 1,000:1
    message, seconds = refused(bomb, "docx", "ratio.docx")
    assert message.startswith("ratio.docx: member word/document.xml expands ")
    assert "above the 100:1 compression ratio limit (extract_max_ratio)" in message
    assert seconds < 5


def test_docx_media_bomb_is_refused_by_ratio():
    bomb = docx_with_body(10_000, extra={"word/media/image1.png": bytes(300 * MB)})
    message, _ = refused(bomb, "docx", "photo.docx")
    assert "photo.docx: member word/media/image1.png expands" in message
    assert "(to 300 MB)" in message and "extract_max_ratio" in message


def test_docx_budget_is_a_setting_and_a_raised_limit_lets_it_through():
    data = docx_with_body(2 * MB)
    with pytest.raises(BudgetExceeded) as info:
        extract(data, "docx", "mid.docx", ExtractBudget(max_bytes=2 * MB, max_ratio=10_000))
    assert info.value.setting == "extract_max_bytes"
    doc = extract(data, "docx", "mid.docx", ExtractBudget(max_ratio=10_000))
    assert doc.text.startswith("all work and no play")


def test_real_docx_fixture_passes_the_default_checks():
    doc = extract((DOCS / "onboarding.docx").read_bytes(), "docx", "onboarding.docx")
    assert "every second Thursday" in doc.text


def test_not_a_zip_is_still_a_plain_bad_docx():
    message, _ = refused(b"PK\x03\x04garbage", "docx", "broken.docx")
    assert message.startswith("broken.docx: not a readable DOCX file")


# ------------------------------------------------------------------------------- HTML


def test_deeply_nested_html_is_refused_before_trafilatura():
    page = nested_html(5000, repeats=3)
    assert len(page) < 200_000
    message, seconds = refused(page, "html", "nested.html")
    assert message == (
        "nested.html: HTML nests elements more than 200 deep, above the 200 limit (extract_html_max_depth)"
    )
    assert seconds < 5


def test_ten_mb_of_nested_html_is_refused_by_size():
    page = nested_html(300, repeats=10 * MB // 3300)
    message, seconds = refused(page, "html", "huge.html")
    assert message.startswith("huge.html: HTML page is 10 MB, above the 5.0 MB limit (extract_html_max_bytes)")
    assert seconds < 5


def test_ordinary_markup_counts_shallow():
    festival = (DOCS / "festival.html").read_bytes()
    assert 3 <= html_depth(festival) <= 30
    sloppy = b"<html><body><ul>" + b"<li><p>item <b>bold" * 3000 + b"</ul><table>" + b"<tr><td>a<td>b" * 3000
    assert html_depth(sloppy) <= 8  # omitted </li>, </p>, </td>, </tr> are implied, not nested
    nested_lists = b"<ul><li>" * 300
    assert html_depth(nested_lists) == 600  # a real nested list does nest
    script = b"<body><script>" + b"if (a<b) { x = '<div>'; }" * 1000 + b"</script><p>x</p></body>"
    assert html_depth(script) == 2
    assert html_depth(b"<!-- <div><div><div> --><p>x</p>") == 1


def test_html_under_the_limits_still_extracts():
    doc = extract(nested_html(150), "html", "ok.html")
    assert "deep text" in doc.text


# ------------------------------------------------------------------------------- text


def test_text_and_markdown_are_held_to_the_size_budget():
    message, _ = refused(b"x" * (2 * MB), "txt", "log.txt", ExtractBudget(max_bytes=1 * MB))
    assert message == "log.txt: is 2.0 MB of text, above the 1.0 MB limit (extract_max_bytes)"
    message, _ = refused(b"# t\n" * MB, "md", "notes.md", ExtractBudget(max_bytes=1 * MB))
    assert message.startswith("notes.md: is 4.0 MB of text, above the 1.0 MB limit")


def test_extracted_text_is_held_to_the_size_budget():
    data = (DOCS / "kettle_guide.pdf").read_bytes()  # 2 KB of PDF, about 500 characters of text
    message, _ = refused(data, "pdf", "kettle_guide.pdf", ExtractBudget(max_bytes=256))
    assert re.fullmatch(
        r"kettle_guide\.pdf: extracts to \d+ bytes of text, above the 256 bytes limit \(extract_max_bytes\)",
        message,
    )


# ------------------------------------------------------------------------------- time and memory


def _sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


def _allocate(mb: int) -> int:
    block = bytearray(mb * MB)
    return len(block)


def _raise_no_text_layer() -> None:
    raise NoTextLayer("scan.pdf: no text layer")


def _boom() -> None:
    raise KeyError("surprise")


def _die() -> None:
    os._exit(3)


@needs_fork
def test_time_budget_kills_the_child_and_names_the_limit():
    start = time.perf_counter()
    with pytest.raises(BudgetExceeded) as info:
        run_bounded(_sleep, (60,), name="slow.pdf", timeout_s=0.5, max_memory_mb=256)
    assert time.perf_counter() - start < 10
    assert str(info.value) == "slow.pdf: extraction ran past the 0.5 s time limit (extract_timeout_s) and was stopped"
    assert info.value.setting == "extract_timeout_s"
    assert _zombie_children() == []  # the killed child was reaped (other tests' children may still run)


def _zombie_children() -> list[int]:
    """Children of this process that exited and were never reaped."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            found.append(int(stat.parent.name))
    return found


@needs_fork
def test_memory_budget_stops_the_child_and_names_the_limit():
    with pytest.raises(BudgetExceeded) as info:
        run_bounded(_allocate, (2048,), name="fat.docx", timeout_s=60, max_memory_mb=128)
    assert str(info.value) == (
        "fat.docx: extraction needed more than the 128 MB memory limit (extract_max_memory_mb) and was stopped"
    )
    # the limit is what the child may add: the same allocation within budget succeeds
    assert run_bounded(_allocate, (64,), name="ok.docx", timeout_s=60, max_memory_mb=512) == 64 * MB


@needs_fork
def test_child_errors_come_back_as_the_same_media_errors():
    with pytest.raises(NoTextLayer, match="scan.pdf: no text layer"):
        run_bounded(_raise_no_text_layer, (), name="scan.pdf", timeout_s=30, max_memory_mb=256)
    with pytest.raises(MediaError, match=r"^odd.pdf: extraction failed \(KeyError: 'surprise'\)$"):
        run_bounded(_boom, (), name="odd.pdf", timeout_s=30, max_memory_mb=256)
    with pytest.raises(MediaError, match=r"^gone.pdf: the extraction process exited \(3\) without a result$"):
        run_bounded(_die, (), name="gone.pdf", timeout_s=30, max_memory_mb=256)


@needs_fork
def test_slow_real_extraction_hits_the_time_budget():
    page = ordinary_html(1 * MB)  # trafilatura needs over a second for this here
    message, seconds = refused(page, "html", "long.html", ExtractBudget(timeout_s=0.2))
    assert message == "long.html: extraction ran past the 0.2 s time limit (extract_timeout_s) and was stopped"
    assert seconds < 10


@needs_fork
def test_memory_hungry_real_extraction_hits_the_memory_budget():
    data = docx_with_body(30 * MB, unit=PARA)  # lxml's tree for 30 MB of XML needs hundreds of MB
    budget = ExtractBudget(max_ratio=10_000, max_memory_mb=64, timeout_s=120)
    message, seconds = refused(data, "docx", "fat.docx", budget)
    # lxml reports the failed allocation as a syntax error; it is still named as the memory limit
    assert message.startswith(
        "fat.docx: extraction needed more than the 64 MB memory limit (extract_max_memory_mb) and was stopped"
    )
    assert seconds < 120


@needs_fork
def test_isolated_and_in_process_extraction_agree():
    for name in ("kettle_guide.pdf", "festival.html", "onboarding.docx"):
        data, ext = (DOCS / name).read_bytes(), name.rsplit(".", 1)[1]
        assert extract(data, ext, name) == extract(data, ext, name, ExtractBudget(isolate=False))
    with pytest.raises(NoTextLayer):
        extract((DOCS / "scanned_invoice.pdf").read_bytes(), "pdf", "scanned_invoice.pdf")


@needs_fork
def test_extraction_keeps_working_after_overruns():
    for _ in range(3):
        refused(nested_html(1000), "html", "nested.html")
        refused(ordinary_html(1 * MB), "html", "long.html", ExtractBudget(timeout_s=0.1))
    doc = extract((DOCS / "kettle_guide.pdf").read_bytes(), "pdf", "kettle_guide.pdf")
    assert doc.section_at(doc.text.find("36 months")).page == 2


# ------------------------------------------------------------------------------- settings


def test_settings_defaults_are_the_budget_defaults(tmp_path, monkeypatch):
    settings = GraceSettings(home=tmp_path)
    assert ExtractBudget.from_settings(settings) == ExtractBudget()
    monkeypatch.setenv("GRACE_EXTRACT_TIMEOUT_S", "7.5")
    monkeypatch.setenv("GRACE_EXTRACT_MAX_MEMORY_MB", "300")
    budget = ExtractBudget.from_settings(GraceSettings(home=tmp_path))
    assert (budget.timeout_s, budget.max_memory_mb) == (7.5, 300)


@needs_fork
def test_isolation_works_with_descriptors_above_1024():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("cannot open 1,100 files here")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200) if soft != resource.RLIM_INFINITY else soft, hard))
    fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        doc = extract((DOCS / "kettle_guide.pdf").read_bytes(), "pdf", "kettle_guide.pdf")
    finally:
        for fd in fds:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert "36 months" in doc.text
