"""The retrieval floor CI holds: `grace eval` on the committed eval set (real Whisper, real
MiniLM, real LanceDB, the whole asset graph) must keep hybrid recall@5 at or above 0.9, and
hybrid must rank at least as well as either half alone. A regression fails the build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grace_pipelines.cli import app

pytestmark = pytest.mark.slow  # ingests and asks the whole eval corpus

FLOOR = 0.9


def test_grace_eval_holds_the_floor(tmp_path: Path) -> None:
    args = [
        "eval",
        "--set",
        str(Path(__file__).parent),
        "--home",
        str(tmp_path / "home"),
        "--json",
        "--fail-under",
        str(FLOOR),
    ]
    result = CliRunner().invoke(app, args)
    report = json.loads(result.stdout)
    modes = report["modes"]
    summary = {m: (s["recall_at_1"], s["recall_at_5"], s["mrr"]) for m, s in modes.items()}
    assert result.exit_code == 0, summary
    assert report["questions"] >= 40 and report["sources"] >= 10
    hybrid, vector, keyword = modes["hybrid"], modes["vector"], modes["keyword"]
    assert hybrid["recall_at_5"] >= FLOOR, summary
    assert hybrid["mrr"] >= vector["mrr"] and hybrid["mrr"] > keyword["mrr"], summary
    assert hybrid["recall_at_5"] >= max(vector["recall_at_5"], keyword["recall_at_5"]), summary
    assert hybrid["mrr"] >= modes["hybrid, no rerank"]["mrr"], "the sentence re-rank must not hurt"
