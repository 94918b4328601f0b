"""The control room's layered views (ops, orchestration, intent, dev): each asset materialized on a
real Dagster instance over a real GRACE_HOME holding a quarantined file, a failed source and held
ones; the counts, the tables, and checks that fail when they should."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from grace_pipelines.api import Grace
from grace_pipelines.assets.layers import LAYER_GROUPS, OVERVIEW_ASSETS
from grace_pipelines.assets.layers.dev import build_dev_assets
from grace_pipelines.db.htm_ledger import Ledger
from grace_pipelines.db.schema import Stage, utcnow
from grace_pipelines.ingest.inbox import scan_inbox
from grace_pipelines.runtime.health import md_table, tier_counts
from grace_pipelines.search.evaluation import latest_summary, record_summary

from ..conftest import drop_file

SECRET = "the launch code is marmalade"  # document text: must never reach metadata


@pytest.fixture
def grace(home: Path) -> Any:
    with dg.instance_for_test() as instance:
        g = Grace(home, instance=instance)
        g.init()
        inbox = g.settings.inbox
        drop_file(inbox, "corrupt.mp3")
        for name in ("budget.md", "minutes.md", "scan.md"):
            drop_file(inbox, name=name, data=f"# {name}\n\n{SECRET}.\n")
        scan = scan_inbox(g.settings, g.db, settle_seconds=0)
        keys = {d.title: d.key for d in scan.new}
        # the states the stages record: a failure with its reason, a consent hold, a scanned document
        g.db.set_stage(keys["budget.md"], Stage.FAILED, reason="budget.md: not valid UTF-8 text at byte 12")
        g.db.set_stage(keys["minutes.md"], Stage.AWAITING_CONSENT, reason="waiting for index consent from alice")
        g.db.set_stage(keys["scan.md"], Stage.NO_TEXT_LAYER, reason="scan.md: no text layer")
        g.keys = keys
        yield g


def _run(grace: Any, config: dict[str, Any] | None = None, only: str | None = None) -> dg.ExecuteInProcessResult:
    """`layers_job` on the home's instance (`only`: that one asset, to keep tests fast)."""
    job = grace.defs.resolve_job_def("layers_job")
    selection = [dg.AssetKey(only)] if only else None
    with grace.instance() as instance:
        return job.execute_in_process(
            instance=instance, run_config={"ops": config or {}}, asset_selection=selection, raise_on_error=False
        )


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    (md,) = [
        e.step_materialization_data.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.step_materialization_data.materialization.asset_key == dg.AssetKey(asset)
    ]
    return {k: v.value for k, v in md.items()}


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_refresh_reports_quarantined_failed_and_held_apart(grace: Any) -> None:
    report = grace.refresh_layers()
    assert report["success"], report["error"]
    assert {
        "ops_health",
        "quarantine",
        "sla_tiers",
        "htm_metrics",
        "search_quality",
        "data_quality",
        "versions",
    } <= set(report["assets"])
    checks = {c["check"]: c for c in report["checks"]}
    assert not checks["no_failed_sources"]["passed"] and checks["no_failed_sources"]["severity"] == "WARN"
    assert "budget.md" in checks["no_failed_sources"]["description"]
    assert not checks["quarantine_not_growing"]["passed"]  # the first look sees one new quarantined file
    assert checks["disk_free_floor"]["passed"] and checks["heartbeats_fresh"]["passed"]  # no daemon expected here

    with grace.instance() as instance:
        ops = instance.get_latest_materialization_event(dg.AssetKey("ops_health")).asset_materialization.metadata
        quarantine = instance.get_latest_materialization_event(dg.AssetKey("quarantine")).asset_materialization.metadata
    assert ops["failed"].value == 1 and ops["held"].value == 2
    assert ops["held_awaiting_consent"].value == 1 and ops["held_no_text_layer"].value == 1
    assert ops["quarantined"].value == 1 and ops["daemon"].value == "not running"
    assert "not valid UTF-8" in ops["last_failures"].value and "alice" in ops["held_sources"].value
    assert ops["disk_free_bytes"].value > 0 and ops["blob_store_bytes"].value >= 0
    assert quarantine["quarantined"].value == 1 and quarantine["new"].value == 1
    assert "corrupt.mp3" in quarantine["files"].value and "not decodable" in quarantine["files"].value
    every = " ".join(str(v.value) for md in (ops, quarantine) for v in md.values())
    assert SECRET not in every  # titles and reasons only, never content

    again = _run(grace, only="quarantine")  # nothing new since: the growth check passes
    assert _checks(again)["quarantine_not_growing"].passed
    assert _metadata(again, "quarantine")["new"] == 0


def test_disk_floor_above_the_free_space_fails_the_error_check(grace: Any) -> None:
    result = _run(grace, {"ops_health": {"config": {"disk_free_floor_bytes": 1 << 60}}}, only="ops_health")
    assert result.success  # a failed check is a finding, not a failed run
    check = _checks(result)["disk_free_floor"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "GiB free" in check.description


def test_heartbeats_fresh_when_a_daemon_is_expected(grace: Any) -> None:
    from dagster._daemon.types import DaemonHeartbeat

    expect = {"ops_health": {"config": {"expect_daemon": True, "heartbeat_max_age_s": 60}}}
    check = _checks(_run(grace, expect, only="ops_health"))["heartbeats_fresh"]
    assert not check.passed and "daemon not running" in check.description
    assert check.severity == dg.AssetCheckSeverity.WARN
    with grace.instance() as instance:
        instance.add_daemon_heartbeat(DaemonHeartbeat(utcnow().timestamp(), "SENSOR", "d1"))
    result = _run(grace, expect, only="ops_health")
    assert _checks(result)["heartbeats_fresh"].passed
    md = _metadata(result, "ops_health")
    assert md["daemon"] == "running" and md["daemons_alive"] == 1 and 0 <= md["daemon_heartbeat_age_s"] < 60


def test_a_critical_sla_event_fails_sla_tiers(grace: Any) -> None:
    assert _checks(_run(grace, only="sla_tiers"))["no_critical_sla"].passed
    ledger = Ledger(grace.db)
    row = grace.db.get_source(grace.keys["minutes.md"])
    for kind in ("warning", "violated", "critical"):
        ledger.record_event(row, kind, utcnow(), "over its target")
    result = _run(grace, only="sla_tiers")
    check = _checks(result)["no_critical_sla"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    md = _metadata(result, "sla_tiers")
    assert (md["warning"], md["violated"], md["critical"], md["starved"], md["events"]) == (1, 1, 1, 0, 3)
    assert md[f"critical/{row.origin}/{row.size_class}"] == 1
    assert row.origin in md["by_origin_and_size"]


def test_search_quality_reads_the_latest_eval_and_holds_the_floor(grace: Any) -> None:
    none = _run(grace, only="search_quality")
    assert _metadata(none, "search_quality")["evaluated"] == 0 and _checks(none)["recall_at_5_floor"].passed

    def report(recall: float) -> dict[str, Any]:
        modes = {
            m: {"questions": 40, "recall_at_1": 0.7, "recall_at_5": recall, "mrr": 0.8} for m in ("hybrid", "vector")
        }
        return {"eval_set": "tests/eval/questions.yaml", "sources": 12, "questions": 40, "modes": modes}

    path = Path(record_summary(report(0.5), grace.settings.home))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert latest_summary(grace.settings.home)["modes"]["hybrid"]["recall_at_5"] == 0.5
    low = _run(grace, only="search_quality")
    assert not _checks(low)["recall_at_5_floor"].passed
    md = _metadata(low, "search_quality")
    assert md["evaluated"] == 1 and md["corpus_sources"] == 12 and md["hybrid/recall_at_5"] == 0.5
    record_summary(report(0.95), grace.settings.home)
    assert _checks(_run(grace, only="search_quality"))["recall_at_5_floor"].passed
    assert record_summary(report(0.9), grace.settings.home / "missing") is None  # never creates a home


def test_data_quality_counts_the_latest_result_per_source(grace: Any) -> None:
    @dg.asset_check(asset="transcript", name="quality_segments_ordered")
    def segments_ordered() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    @dg.asset_check(asset="chunks", name="quality_no_empty_chunk")
    def no_empty_chunk() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    location = dg.Definitions(
        assets=[dg.AssetSpec("transcript"), dg.AssetSpec("chunks")], asset_checks=[segments_ordered, no_empty_chunk]
    )
    (data_quality, _) = build_dev_assets(grace.settings, graph=location.resolve_asset_graph)
    with grace.instance() as instance:
        empty = dg.materialize([data_quality], instance=instance)
        md = empty.asset_materializations_for_node("data_quality")[0].metadata
        assert (md["quality_checks"].value, md["evaluated"].value, md["failed"].value) == (2, 0, 0)

        def evaluate(asset: str, name: str, partition: str | None, passed: bool, severity: Any) -> None:
            instance.report_runless_asset_event(
                dg.AssetCheckEvaluation(
                    asset_key=dg.AssetKey(asset), check_name=name, passed=passed, partition=partition, severity=severity
                )
            )

        warn, error = dg.AssetCheckSeverity.WARN, dg.AssetCheckSeverity.ERROR
        evaluate("transcript", "quality_segments_ordered", None, False, error)
        transcript = dg.asset(name="transcript")(lambda: None)  # a stand-in to run the check after
        dg.materialize([transcript, segments_ordered], instance=instance)  # passes now: only the latest counts
        evaluate("transcript", "quality_segments_ordered", "b", False, warn)
        evaluate("chunks", "quality_no_empty_chunk", "a", False, error)
        result = dg.materialize([data_quality], instance=instance)
    md = {k: v.value for k, v in result.asset_materializations_for_node("data_quality")[0].metadata.items()}
    assert (md["passed"], md["warn"], md["failed"], md["evaluated"]) == (1, 1, 1, 3)
    assert "transcript.quality_segments_ordered" in md["by_check"]
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and "chunks.quality_no_empty_chunk" in check.description


def test_versions_name_packages_models_and_code_versions(grace: Any) -> None:
    md = _metadata(_run(grace, only="versions"), "versions")
    assert md["version/dagster"] == dg.__version__
    assert md["code_version/transcript"] == "1" and "+" in md["code_version/embeddings"]
    assert "minilm" in md["model/embedder"] and md["model/transcriber"].startswith("faster-whisper")


def test_layers_job_schedule_groups_and_descriptions(grace: Any) -> None:
    defs = grace.defs
    schedule = defs.resolve_schedule_def("layers_schedule")
    assert schedule.job_name == "layers_job" and schedule.cron_schedule == "*/15 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    selected = {k.to_user_string() for k in defs.resolve_job_def("layers_job").asset_layer.executable_asset_keys}
    assert {
        "ops_health",
        "quarantine",
        "sla_tiers",
        "htm_metrics",
        "search_quality",
        "data_quality",
        "versions",
    } <= selected
    assert not any(name.startswith("playbook_") for name in selected)  # playbooks act: their own jobs run them
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs() if s.group_name in LAYER_GROUPS}
    assert {s.group_name for s in specs.values()} == set(LAYER_GROUPS)
    assert specs["htm_metrics"].group_name == "orchestration"
    for name, spec in specs.items():
        assert spec.description and len(spec.description) > 40, f"{name} lacks a description"
    for group, name in OVERVIEW_ASSETS.items():
        assert specs[name].group_name == group and specs[name].description.startswith("Look here first")


def test_plain_helpers() -> None:
    table = md_table(("a", "b"), [("x|y", "line\nbreak")]).splitlines()
    assert len(table) == 3 and table[2].startswith("| x\\|y | line") and table[2].count(" | ") == 1
    assert md_table(("a",), [], empty="nothing") == "_nothing_"
    events = [
        {"origin": "meeting", "size_class": "normal", "kind": "critical"},
        {"origin": "meeting", "size_class": "normal", "kind": "starved"},
        {"origin": "voice_note", "size_class": "tiny", "kind": "warning"},
    ]
    counts = tier_counts(events)
    assert counts[("meeting", "normal")] == {"warning": 0, "violated": 0, "critical": 1, "starved": 1}
    assert list(counts) == [("meeting", "normal"), ("voice_note", "tiny")]


def test_grace_layers_command_refreshes_on_the_home_instance(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from grace_pipelines.cli import app

    home = tmp_path / "cli-home"
    result = CliRunner().invoke(app, ["layers", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["success"] and {"ops_health", "sla_tiers", "search_quality", "versions"} <= set(report["assets"])
    assert all(c["passed"] for c in report["checks"] if c["severity"] == "ERROR")
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))  # the home's own instance records the run
    try:
        assert instance.get_latest_materialization_event(dg.AssetKey("ops_health")) is not None
    finally:
        instance.dispose()
