"""Budget overruns inside a Dagster in-process run: each hostile document fails as its own
source, with the file and the limit as the reason (the same contract as any bad document),
while a good document in the same batch becomes searchable; nothing hangs the transcription
slot. The budgets come from grace.toml, the way a user would set them."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest

from grace_pipelines.api import Grace

from ..conftest import FIXTURES
from .test_extract_budget import MB, docx_with_body, nested_html, ordinary_html


@pytest.mark.slow  # runs each extraction into its time and memory budget
def test_overruns_fail_their_source_and_good_work_goes_on(home: Path, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "big.docx").write_bytes(docx_with_body(150 * MB))
    (drop / "nested.html").write_bytes(nested_html(5000, repeats=3))
    (drop / "slow.html").write_bytes(ordinary_html(2 * MB))  # trafilatura needs seconds for this
    (drop / "kettle_guide.pdf").write_bytes((FIXTURES / "docs" / "kettle_guide.pdf").read_bytes())
    home.mkdir(parents=True)
    (home / "grace.toml").write_text("extract_timeout_s = 1.0\n", encoding="utf-8")
    names = ["big.docx", "nested.html", "slow.html", "kettle_guide.pdf"]

    start = time.monotonic()
    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance)
        assert grace.settings.extract_timeout_s == 1.0
        grace.ingest([drop / n for n in names], wait=True)
        for name in names:
            grace.grant(name, "me", "all", wait=True)
        states = {s.title: s for s in grace.status()}
    assert time.monotonic() - start < 300  # generous: no extraction ran unbounded

    assert {n: states[n].state for n in names} == {
        "big.docx": "failed",
        "nested.html": "failed",
        "slow.html": "failed",
        "kettle_guide.pdf": "searchable",
    }
    assert states["big.docx"].why.startswith("big.docx: expands to 15")
    assert "above the 50 MB limit (extract_max_bytes)" in states["big.docx"].why
    assert states["nested.html"].why == (
        "nested.html: HTML nests elements more than 200 deep, above the 200 limit (extract_html_max_depth)"
    )
    assert states["slow.html"].why == (
        "slow.html: extraction ran past the 1 s time limit (extract_timeout_s) and was stopped"
    )


def test_budgets_given_to_grace_reach_the_extraction_resource(tmp_path: Path) -> None:
    grace = Grace(tmp_path / "grace", extract_timeout_s=7.5, extract_max_memory_mb=256)
    budget = grace.defs.resources["extraction"].budget()
    assert (budget.timeout_s, budget.max_memory_mb) == (7.5, 256)
