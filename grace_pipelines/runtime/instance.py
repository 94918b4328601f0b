"""The Dagster instance of a GRACE_HOME: the `dagster.yaml` that `grace init` writes (SQLite
storage under GRACE_HOME/dagster, a run queue fair across origins, pool limits, run monitoring)
and opening that instance for in-process runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from grace_pipelines.settings import GraceSettings


def dagster_yaml(settings: GraceSettings) -> str:
    """The Dagster instance config `grace init` writes: SQLite storage under GRACE_HOME, a run
    queue that is fair across origins, and the pool limits (HTM: grace_pipelines/htm)."""
    return f"""\
# Dagster instance for this GRACE_HOME (SQLite storage under this folder).
# For PostgreSQL storage see dagster.postgres.example.yaml in the grace-pipelines repository.
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: {settings.max_concurrent_runs}
    tag_concurrency_limits:
      # fairness: one origin (a flood of voice memos, a document dump) gets at most this many
      # run slots, so another origin always finds one free; runs carry the tag grace/origin
      - key: grace/origin
        value:
          applyLimitPerUniqueValue: true
        limit: {min(settings.origin_run_limit, settings.max_concurrent_runs)}
      # data-quality runs (great-expectations, after searchable) never take more than one slot
      - key: grace/trigger
        value: quality
        limit: 1
  pools:
    default_limit: {settings.transcription_pool_limit}   # pools "transcription" (Whisper) and "index_writer" (LanceDB)
run_queue:
  dequeue_interval_seconds: 1   # default 5; measured: drop-to-searchable median 12.3 s -> 7.9 s
run_monitoring:
  # the daemon fails launches that never start; runs whose process died are found by
  # recovery_sensor (a pid check: the default run launcher has no health check of its own)
  enabled: true
  start_timeout_seconds: 180
  poll_interval_seconds: 30
"""


@contextmanager
def open_instance(settings: GraceSettings) -> Iterator[dg.DagsterInstance]:
    """The GRACE_HOME's instance (its dagster.yaml written first if missing), disposed after."""
    write_instance_config(settings)
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    try:
        yield instance
    finally:
        instance.dispose()


def write_instance_config(settings: GraceSettings) -> None:
    """GRACE_HOME/dagster/dagster.yaml, once (an operator's edits are kept)."""
    dagster_home = settings.dagster_home
    dagster_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(dagster_yaml(settings), encoding="utf-8")
