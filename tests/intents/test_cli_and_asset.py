"""`grace intent submit | status | list | cancel` keep the CLI contract (exit codes, one JSON
object), and the `intents` asset records counts and per-intent progress with a WARN check for
an intent that is overdue or projected to miss its deadline."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from grace_pipelines.assets.intents import build_intents_asset
from grace_pipelines.cli import app
from grace_pipelines.db.state import StateDB
from grace_pipelines.ingest.inbox import scan_inbox
from grace_pipelines.intents.service import evaluate, submit
from grace_pipelines.resources import StateResource
from grace_pipelines.settings import load_settings

from ..conftest import drop_file
from .helpers import register

UTC = timezone.utc


@pytest.fixture
def run(home: Path):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["intent", *args], env={"GRACE_HOME": str(home), "COLUMNS": "200"})

    return invoke


def test_cli_submit_status_list_and_cancel_json(run, home: Path, tmp_path: Path) -> None:
    notes = drop_file(tmp_path / "mine", name="plan.md", data="# Plan\n\nShip the intents on Friday.\n")
    submitted = run("submit", "--searchable", str(notes), "--by", "tomorrow 9am", "--json")
    assert submitted.exit_code == 0, submitted.output
    intent = json.loads(submitted.stdout)["intent"]
    assert intent["kind"] == "searchable" and intent["status"] == "open" and intent["total"] == 1
    assert intent["deadline"].endswith("+00:00") and "plan.md searchable by" in intent["description"]
    assert (home / "inbox" / "plan.md").is_file(), "a file Grace did not know is dropped into the inbox"

    status = run("status", str(intent["id"]), "--json")
    assert status.exit_code == 0, status.output
    shown = json.loads(status.stdout)["intent"]
    assert shown["id"] == intent["id"] and shown["pending"][0]["title"] == "plan.md"

    settings = load_settings(home=home)
    scan_inbox(settings, StateDB(settings.state_url), settle_seconds=0)  # the inbox registers it
    notify = run("submit", "--notify", "plan.md", "--json")  # by title now, no deadline
    assert notify.exit_code == 0, notify.output
    assert json.loads(notify.stdout)["intent"]["deadline"] is None

    assert run("cancel", str(intent["id"]), "--json").exit_code == 0
    listed = run("list", "--open", "--json")
    assert listed.exit_code == 0, listed.output
    assert [i["kind"] for i in json.loads(listed.stdout)["intents"]] == ["notify"]
    everything = json.loads(run("list", "--json").stdout)["intents"]
    assert [i["status"] for i in everything] == ["cancelled", "open"]
    human = run("list")
    assert human.exit_code == 0 and "plan.md" in human.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "--searchable", "nowhere.wav", "--by", "09:00"], "nowhere.wav: no source matches"),
        (["submit", "--notify"], "needs at least one source"),
        (["submit", "x.md"], "exactly one of"),
        (["status", "42"], "no intent #42"),
    ],
)
def test_cli_user_errors_exit_1_with_a_clear_message(run, args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr


def test_cli_refuses_a_past_deadline(run, tmp_path: Path) -> None:
    notes = drop_file(tmp_path, name="late.md", data="# Late\n\nToo late.\n")
    result = run("submit", "--searchable", str(notes), "--by", "2020-01-01", "--json")
    assert result.exit_code == 1 and "not in the future" in result.stderr and result.stdout == ""


def test_intents_asset_counts_progress_and_warns_when_late(home: Path) -> None:
    settings = load_settings(home=home, timezone="Europe/Berlin")
    settings.ensure_dirs()
    db = StateDB(settings.state_url, keys_dir=str(settings.keys_dir))
    now = datetime.now(UTC)
    done = register(db, settings, "done.pdf", dropped_at=now, stage="searchable")
    waiting = register(db, settings, "waiting.pdf", dropped_at=now)
    first = submit(db, settings, kind="notify", sources=[(done, "done.pdf")], actor="t", now=now)
    late = submit(
        db, settings, kind="searchable", sources=[(waiting, "waiting.pdf")], by="in 2 hours", actor="t", now=now
    )
    evaluate(db, settings, now, lambda text, **f: (False, "no webhook configured"))  # first: done
    evaluate(db, settings, late.deadline + timedelta(seconds=1), lambda text, **f: (False, "off"))  # late: overdue
    asset = build_intents_asset(settings)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [asset], instance=instance, resources={"state": StateResource(url=settings.state_url)}, raise_on_error=False
        )
    assert result.success
    metadata = result.asset_materializations_for_node("intents")[0].metadata
    assert (metadata["done_count"].value, metadata["overdue_count"].value, metadata["open_count"].value) == (1, 1, 0)
    assert metadata[f"intent.{first.id}.done"].value == 1 and metadata[f"intent.{late.id}.fraction"].value == 0.0
    assert metadata["at_risk_count"].value == 1
    report = metadata["report"].value
    assert f"| #{late.id} | overdue | waiting.pdf searchable by" in report and "| 0/1 |" in report
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "intents_on_time" and not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN and f"#{late.id}" in check.description
