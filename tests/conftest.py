"""Shared fixtures: speech fixtures and their manifest, dropping a file (and its consent sidecar)
into an inbox, a GRACE_HOME per test, a fresh PostgreSQL database per test (on the local
server), and a driver that evaluates sensors and executes the runs they request the way the
daemon would."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
PG_ADMIN = os.environ.get("GRACE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GRACE_* setting, DAGSTER_HOME or OpenAI key from the caller's environment."""
    for name in list(os.environ):
        if name.startswith("GRACE_") or name in ("DAGSTER_HOME", "OPENAI_API_KEY"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch)


@pytest.fixture(scope="session")
def manifest() -> dict[str, Any]:
    data = json.loads((FIXTURES / "manifest.json").read_text())
    return {entry["file"]: entry for entry in data["files"]}


def sentence(manifest: dict[str, Any], file: str, contains: str) -> dict[str, Any]:
    for s in manifest[file]["sentences"]:
        if contains.lower() in s["text"].lower():
            return s
    raise KeyError(contains)


def write_sidecar(
    path: Path, *, participants: list[str] | None = None, grants: dict[str, list[str]] | None = None
) -> Path:
    """`NAME.consent.json` beside `path`: `{"participants": [...], "grants": [{"party": ...,
    "scopes": [...]}, ...]}`, each key only when given (`grants` maps a party to its scopes).
    Returns the sidecar's path."""
    body: dict[str, Any] = {}
    if participants is not None:
        body["participants"] = participants
    if grants is not None:
        body["grants"] = [{"party": party, "scopes": scopes} for party, scopes in grants.items()]
    sidecar = path.with_name(path.name + ".consent.json")
    sidecar.write_text(json.dumps(body), encoding="utf-8")
    return sidecar


def drop_file(
    folder: Path,
    fixture: str | None = None,
    *,
    name: str | None = None,
    data: bytes | str | None = None,
    participants: list[str] | None = None,
    grants: dict[str, list[str]] | None = None,
    age_s: float | None = 30.0,
) -> Path:
    """Drop a file into `folder` (an inbox, an origin folder in it, or a folder to hand to
    `grace ingest`), creating the folder: a copy of tests/fixtures/`fixture`, or `data`, named
    `name` (default: the fixture's name). With `participants` or `grants`, a consent sidecar
    beside it (`write_sidecar`). Both get an mtime `age_s` seconds ago, so the inbox sees them
    settled (None: left as written, "still being written"). Returns the file's path."""
    filename = name or fixture
    assert filename and (fixture is None) != (data is None), "a fixture to copy, or data and its name"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / filename
    if fixture is not None:
        shutil.copyfile(FIXTURES / fixture, target)
    elif isinstance(data, str):
        target.write_text(data, encoding="utf-8")
    else:
        target.write_bytes(data)
    written = [target]
    if participants is not None or grants is not None:
        written.append(write_sidecar(target, participants=participants, grants=grants))
    if age_s is not None:
        past = time.time() - age_s
        for path in written:
            os.utime(path, (past, past))
    return target


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "grace"


def _pg_available() -> bool:
    try:
        import psycopg2

        psycopg2.connect(PG_ADMIN.replace("postgresql+psycopg2://", "postgresql://"), connect_timeout=3).close()
        return True
    except Exception:  # noqa: BLE001 - whatever the failure, there is no server to test against
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


class Clock:
    """A settable "now" for the sensors' `clock=` (build_definitions): tests move time by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Driver:
    """Evaluates sensors and executes their run requests in-process, as the daemon would."""

    defs: dg.Definitions
    instance: dg.DagsterInstance
    cursors: dict[str, str | None] = field(default_factory=dict)
    runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)

    def tick(self, sensor_name: str) -> dg.SensorResult:
        sensor = self.defs.resolve_sensor_def(sensor_name)
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
            selection = request.asset_selection
            if request.asset_check_keys is not None:  # exactly these checks, as the daemon's run would
                job = job.get_subset(
                    asset_selection=set(selection or ()), asset_check_selection=set(request.asset_check_keys)
                )
                selection = None
            done.append(
                job.execute_in_process(
                    instance=self.instance,
                    run_config=request.run_config or None,
                    partition_key=request.partition_key,
                    asset_selection=selection,
                    tags=request.tags,
                    raise_on_error=False,
                )
            )
        self.runs.extend(done)
        return done


@contextlib.contextmanager
def serving(grace: Any) -> Iterator[dict[str, Any]]:
    """A real `grace serve` uvicorn for `grace`'s home on a free loopback port, in a thread: yields
    {"bound": Listening (url, port, token), "server": the uvicorn server}; stopped on exit."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    def on_ready(bound: Any, server: Any) -> None:
        state.update(bound=bound, server=server)
        ready.set()

    from grace_pipelines.web.server import serve

    thread = threading.Thread(
        target=serve, args=(grace.settings,), kwargs={"port": 0, "grace": grace, "on_ready": on_ready}
    )
    thread.start()
    assert ready.wait(60), "the server did not start"
    try:
        yield state
    finally:
        state["server"].should_exit = True
        thread.join(30)
    assert not thread.is_alive()
