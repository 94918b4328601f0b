"""The Dagster instance configs Grace ships: the SQLite one `grace init` writes and the
dagster-postgres example, both loadable, with the run queue settings the latency depends on."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from grace_pipelines.api import Grace

ROOT = Path(__file__).resolve().parents[2]


def test_init_writes_a_loadable_sqlite_instance(home: Path) -> None:
    Grace(home, max_concurrent_runs=6, origin_run_limit=3, transcription_pool_limit=2).init()
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    try:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert instance.run_coordinator.dequeue_interval_seconds == 1
        runs = instance.get_concurrency_config().run_queue_config
        assert runs.max_concurrent_runs == 6
        assert runs.tag_concurrency_limits == [
            {"key": "grace/origin", "value": {"applyLimitPerUniqueValue": True}, "limit": 3},
            {"key": "grace/trigger", "value": "quality", "limit": 1},
        ], "one origin cannot take every run slot, nor data-quality runs more than one"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 2
        assert str(home) in instance.root_directory
    finally:
        instance.dispose()


def test_postgres_example_config_loads(tmp_path: Path, pg_database, monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg_database("grace_dagster")
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", url)
    shutil.copyfile(ROOT / "dagster.postgres.example.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        instance.add_dynamic_partitions("sources", ["0123456789abcdef"])
        assert instance.get_dynamic_partitions("sources") == ["0123456789abcdef"]
    finally:
        instance.dispose()
