"""PDF, HTML and DOCX end to end: citations name the page or heading; a scanned PDF gets a
clear 'no text layer' state, not an empty success; nothing of them rests in plaintext."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from grace_pipelines.api import Grace

from ..conftest import FIXTURES

DOCS = FIXTURES / "docs"


def test_documents_are_cited_by_page_or_heading(home: Path) -> None:
    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance)
        names = ["kettle_guide.pdf", "festival.html", "onboarding.docx", "scanned_invoice.pdf"]
        grace.ingest([DOCS / n for n in names], wait=True)
        for name in names:
            grace.grant(name, "me", "all", wait=True)
        states = {s.title: s for s in grace.status()}
        assert {n: states[n].state for n in names} == {
            "kettle_guide.pdf": "searchable",
            "festival.html": "searchable",
            "onboarding.docx": "searchable",
            "scanned_invoice.pdf": "no_text_layer",
        }
        scanned = states["scanned_invoice.pdf"].why
        assert "no text layer" in scanned and "scanned_invoice.pdf" in scanned

        warranty = grace.search("How long is the warranty?", k=1)[0]
        assert warranty.title == "kettle_guide.pdf" and warranty.page == 2
        assert warranty.citation == "kettle_guide.pdf, p. 2"

        parade = grace.search("When does the festival open?", k=1)[0]
        assert parade.title == "festival.html" and parade.citation == "festival.html § Opening night"
        assert "Home" not in parade.text.split()[:3], "navigation is not indexed"

        release = grace.search("How often does Kestrel ship a release?", k=1)[0]
        assert release.title == "onboarding.docx" and release.citation == "onboarding.docx § Release schedule"

    scanned = [p.read_bytes() for p in home.rglob("*") if p.is_file()]
    for phrase in (b"warranty lasts 36 months", b"Opening night", b"Release schedule", b"every second Thursday"):
        assert not any(phrase in data for data in scanned), phrase
