"""The single Definitions object loads and follows the house conventions."""

import dagster as dg
import pytest

from grace_pipelines.definitions import build_definitions, defs
from grace_pipelines.settings import load_settings


def test_module_defs_are_lazy_and_load_and_validate() -> None:
    import grace_pipelines.definitions as module

    assert not isinstance(module.defs, dg.Definitions)  # built when the code location loads, not on import
    loaded = defs()
    assert isinstance(loaded, dg.Definitions)
    dg.Definitions.validate_loadable(loaded)


def test_every_asset_has_docstring_group_and_kinds(tmp_path) -> None:
    d = build_definitions(load_settings(home=tmp_path))
    graph = d.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"source", "transcript", "chunks", "embeddings", "purge_receipt", "keyring"} <= keys
    for spec in d.resolve_all_asset_specs():
        assert spec.description and len(spec.description) > 20, f"{spec.key} lacks a docstring"
        assert spec.group_name and spec.group_name != "default", f"{spec.key} lacks a group"
        assert spec.kinds, f"{spec.key} lacks kinds"
        per_source = spec.group_name in ("ingest", "index") and spec.key.to_user_string() != "search_index"
        if per_source or spec.key.to_user_string() == "purge_receipt":  # the rest: one each, not per source
            assert spec.partitions_def is not None and spec.partitions_def.name == "sources", spec.key


def test_consent_checks_are_blocking() -> None:
    graph = defs().resolve_asset_graph()
    checks = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert checks["consent_transcribe"].asset_key == dg.AssetKey("source")
    assert checks["consent_index"].asset_key == dg.AssetKey("transcript")
    assert checks["consent_transcribe"].blocking and checks["consent_index"].blocking


def test_sensors_job_and_pool(tmp_path) -> None:
    d = build_definitions(load_settings(home=tmp_path, inbox_poll_seconds=2))
    inbox = d.resolve_sensor_def("inbox_sensor")
    assert inbox.minimum_interval_seconds == 2
    assert inbox.default_status == dg.DefaultSensorStatus.RUNNING
    assert d.resolve_sensor_def("consent_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    job = d.resolve_job_def("ingest_job")
    assert job.partitions_def.name == "sources"
    transcript = next(a for a in d.resolve_all_asset_specs() if a.key == dg.AssetKey("transcript"))
    assert d.resolve_assets_def(dg.AssetKey("transcript")).op.pool == "transcription"
    assert transcript.kinds >= {"whisper"}


@pytest.mark.slow  # two `dagster definitions validate` subprocesses
def test_workspace_and_pyproject_load_with_the_dagster_cli(tmp_path) -> None:
    """What `dagster dev -w workspace.yaml` (grace dev) and bare `dagster dev` load."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "GRACE_HOME": str(tmp_path / "home")}
    for args in (["-w", "workspace.yaml"], []):
        done = subprocess.run(
            [sys.executable, "-m", "dagster", "definitions", "validate", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "All code locations passed validation" in done.stdout + done.stderr


def test_key_rotation_is_scheduled_weekly_by_its_playbook() -> None:
    # playbooks/crypto_key_persistence.yaml replaced the hard-coded key_rotation_schedule
    d = defs()
    schedule = d.resolve_schedule_def("playbook_crypto_key_persistence_schedule")
    assert schedule.cron_schedule == "0 3 * * 0" and schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "playbook_crypto_key_persistence_job"
    names = {s.name for s in d.schedules}
    assert not names & {"key_rotation_schedule", "search_index_schedule", "htm_metrics_schedule"}
    assert {"playbook_search_index_schedule", "playbook_htm_timing_and_sizing_schedule"} <= names
