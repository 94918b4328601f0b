"""Shared fixtures: speech fixtures and their manifest, a GRACE_HOME per test, a fresh
PostgreSQL database per test (on the local server), and a driver that evaluates sensors and
executes the runs they request the way the daemon would."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
PG_ADMIN = os.environ.get("GRACE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GRACE_") or name in ("DAGSTER_HOME", "OPENAI_API_KEY"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def manifest() -> dict[str, Any]:
    data = json.loads((FIXTURES / "manifest.json").read_text())
    return {entry["file"]: entry for entry in data["files"]}


def sentence(manifest: dict[str, Any], file: str, contains: str) -> dict[str, Any]:
    for s in manifest[file]["sentences"]:
        if contains.lower() in s["text"].lower():
            return s
    raise KeyError(contains)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "grace"


def _pg_available() -> bool:
    try:
        import psycopg2

        psycopg2.connect(PG_ADMIN.replace("postgresql+psycopg2://", "postgresql://"), connect_timeout=3).close()
        return True
    except Exception:
        return False


@pytest.fixture
def pg_database() -> Iterator[Any]:
    """A factory of fresh databases on the local PostgreSQL, dropped after the test."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN} (.ci/run should start it)")
        pytest.skip("PostgreSQL not running on 127.0.0.1:5432")
    import psycopg2

    made: list[str] = []

    def make(prefix: str = "grace_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        conn = psycopg2.connect(PG_ADMIN)
        conn.autocommit = True
        conn.cursor().execute(f'CREATE DATABASE "{name}"')
        conn.close()
        made.append(name)
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://")
        return f"{base}/{name}"

    yield make
    from grace_pipelines.db.engine import dispose_engine

    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    for name in made:
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://")
        dispose_engine(f"{base}/{name}")
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@dataclass
class Driver:
    """Evaluates sensors and executes their run requests in-process, as the daemon would."""

    defs: dg.Definitions
    instance: dg.DagsterInstance
    cursors: dict[str, str | None] = field(default_factory=dict)
    runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)

    def tick(self, sensor_name: str) -> dg.SensorResult:
        sensor = self.defs.get_sensor_def(sensor_name)
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursors.get(sensor_name),
            resources={k: v for k, v in self.defs.resources.items()},
        )
        result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        if result.cursor is not None:
            self.cursors[sensor_name] = result.cursor
        return result

    def execute(self, result: dg.SensorResult | list[dg.RunRequest]) -> list[dg.ExecuteInProcessResult]:
        """Run the requests one after another, highest `dagster/priority` first (stable), as the
        run queue would dequeue them."""
        requests = result if isinstance(result, list) else list(result.run_requests or [])
        requests = sorted(requests, key=lambda r: -int((r.tags or {}).get("dagster/priority", 0)))
        done = []
        for request in requests:
            job = self.defs.resolve_job_def(request.job_name or "ingest_job")
            done.append(
                job.execute_in_process(
                    instance=self.instance,
                    run_config=request.run_config or None,
                    partition_key=request.partition_key,
                    asset_selection=request.asset_selection,
                    tags=request.tags,
                    raise_on_error=False,
                )
            )
        self.runs.extend(done)
        return done
