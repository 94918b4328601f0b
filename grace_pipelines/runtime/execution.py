"""Running Grace's jobs in this process, on the GRACE_HOME instance, for the Python API and the
CLI: ingest runs per source (resumed from the last completed stage), purges (this run's own
receipt), key rotation, and recovery first, every time.

In-process on purpose: the default multiprocess executor costs about 19 s for a 4-step run
here against about 4 s in-process (STACK_NOTES), and `grace ingest --wait` must not pay that.
Every run carries the `grace/pid` + `grace/host` tags so a later recovery can tell a dead run
from a live one, and a watcher frees pool slots of runs that die while this one waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg

from grace_pipelines import tags as tag
from grace_pipelines.db.htm_ledger import Ledger
from grace_pipelines.db.intents import intent_tags
from grace_pipelines.db.schema import Stage, utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.errors import SYSTEM_FAILURE
from grace_pipelines.governance.holds import Allowed, allowed_work
from grace_pipelines.runtime.instance import open_instance
from grace_pipelines.runtime.recovery import (
    RESUME_SELECTION,
    RecoveryReport,
    recover,
    run_tags,
    watching_for_dead_runs,
)
from grace_pipelines.settings import GraceSettings

Progress = Callable[[str, str], None]
QUIET_LOG_LEVEL = "CRITICAL"  # runs are logged to the Dagster instance; the console stays quiet


def failure_message(result: dg.ExecuteInProcessResult) -> str | None:
    """The first line of the root error of a failed step (Dagster wraps the user's error)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            return error.message.strip().splitlines()[0]
    return None


def _subset(job: dg.JobDefinition, allowed: Allowed) -> dg.JobDefinition:
    """`ingest_job` cut to what consent allows: its assets and exactly its checks."""
    if allowed.complete:
        return job
    return job.get_subset(
        asset_selection={dg.AssetKey(a) for a in allowed.assets},
        asset_check_selection={dg.AssetCheckKey(dg.AssetKey(a), name) for a, name in allowed.checks},
    )


class JobRunner:
    """Executes the jobs of `defs()` for one GRACE_HOME. `defs` is called lazily (building the
    definitions loads the engines); `stores()` gives the blob store and chunk index that
    recovery sweeps for temporary files."""

    def __init__(
        self,
        settings: GraceSettings,
        db: StateDB,
        defs: Callable[[], dg.Definitions],
        stores: Callable[[], tuple[Any, Any]],
        instance: dg.DagsterInstance | None = None,
        prepare: Callable[[], Any] | None = None,
    ) -> None:
        """`prepare` runs before the GRACE_HOME's own instance is opened (`Grace.init`)."""
        self.settings, self.db, self._defs, self._stores = settings, db, defs, stores
        self._instance, self._prepare = instance, prepare
        self.log_level = QUIET_LOG_LEVEL

    @contextmanager
    def instance(self) -> Iterator[dg.DagsterInstance]:
        if self._instance is not None:
            yield self._instance
            return
        if self._prepare is not None:
            self._prepare()
        with open_instance(self.settings) as instance:
            yield instance

    def _logging(self) -> dict[str, Any]:
        return {"console": {"config": {"log_level": self.log_level}}}

    # ---- ingest ---------------------------------------------------------------------------
    def run_sources(
        self,
        keys: Iterable[str],
        asset_selection: Sequence[dg.AssetKey] | None = None,
        progress: Progress | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, bool]:
        """`ingest_job` for each source key; success per key. Recovery runs first, and a source
        an interrupted run left past `registered` is taken on from its last completed stage."""
        keys = list(dict.fromkeys(keys))
        report = self.recover(wanted=set(keys))  # also when there is nothing new: a re-run resumes
        outcome = {k: ok for k, ok in report.outcomes.items() if k in keys}  # resumed by recovery
        rest = [k for k in keys if k not in outcome]
        outcome.update(self.execute_sources(rest, asset_selection, progress, tags) if rest else {})
        return outcome

    def execute_sources(
        self,
        keys: list[str],
        asset_selection: Sequence[dg.AssetKey] | None = None,
        progress: Progress | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, bool]:
        outcome: dict[str, bool] = {}
        job = self._defs().resolve_job_def("ingest_job")
        # launched here and now: the dispatcher must not launch them a second time
        Ledger(self.db).claim(keys, f"api:{time.time_ns()}", utcnow(), "run", 0)
        subsets: dict[tuple, dg.JobDefinition] = {}
        with self.instance() as instance, watching_for_dead_runs(instance):
            instance.add_dynamic_partitions(
                "sources", [k for k in keys if not instance.has_dynamic_partition("sources", k)]
            )
            for key in keys:
                row = self.db.get_source(key)
                if progress:
                    progress(key, row.title if row else key)
                selection = [a.to_user_string() for a in asset_selection] if asset_selection else None
                if selection is None and row is not None and row.stage in RESUME_SELECTION:
                    selection = RESUME_SELECTION[row.stage]  # resume, do not redo
                run_tags_ = {tag.SOURCE: key, tag.ORIGIN: row.origin if row else "manual", **run_tags(), **(tags or {})}
                run_tags_.update(intent_tags(self.db, [key]))  # grace/intent: the open intents it serves
                part = job
                if row is not None:  # consent decides how far this run may go: a hold is a green run
                    run_tags_[tag.TITLE] = tag.title_tag(row.title)
                    allowed = allowed_work(self.db, row)
                    if selection is not None:
                        allowed = allowed.narrowed(selection)
                    if not allowed.assets:
                        outcome[key] = True  # nothing consent allows yet; the source's state says who is awaited
                        continue
                    if allowed.held:
                        run_tags_[tag.HOLD] = "consent" if "transcribe" in allowed.awaiting else "consent:index"
                    part = subsets.get((allowed.assets, allowed.checks)) or subsets.setdefault(
                        (allowed.assets, allowed.checks), _subset(job, allowed)
                    )
                elif selection is not None:
                    part = job.get_subset(asset_selection={dg.AssetKey(a) for a in selection})
                result = part.execute_in_process(
                    run_config={"loggers": self._logging()},  # chunking: the `chunking` resource
                    instance=instance,
                    partition_key=key,
                    raise_on_error=False,
                    tags=run_tags_,
                )
                outcome[key] = result.success
                if not result.success:
                    self._record_unexpected_failure(key, result)
        return outcome

    def _record_unexpected_failure(self, key: str, result: dg.ExecuteInProcessResult) -> None:
        """A run that failed for a reason no stage recorded (not consent, not bad input) is a
        system failure: say so in the source's state instead of leaving it 'processing'."""
        row = self.db.get_source(key)
        if row is None or row.stage in (Stage.AWAITING_CONSENT, Stage.FAILED, Stage.NO_TEXT_LAYER):
            return
        detail = failure_message(result) or "the run failed"
        self.db.set_stage(key, Stage.FAILED, reason=f"{SYSTEM_FAILURE}: {detail[:300]}")

    # ---- recovery -------------------------------------------------------------------------
    def recover(
        self, *, repair: bool = True, wanted: set[str] | None = None, sweep_temp: bool = False
    ) -> RecoveryReport:
        """Find what killed processes left (dead runs, pool slots, stuck sources, unfinished
        purges, temporary files) and, with `repair`, fix it: mark the runs failed, free the
        slots, finish the purges, resume the sources from their last completed stage (only
        `wanted` ones and those whose run just died or that are stale), remove the temp files."""
        blob_store, chunk_index = self._stores()
        with self.instance() as instance:
            report = recover(
                instance,
                self.settings,
                self.db,
                repair=repair,
                wanted=wanted,
                sweep_temp=sweep_temp,
                blob_store=blob_store,
                vector_store=chunk_index,
            )
        if not repair:
            return report
        for item in report.purges:  # journaled purges a kill interrupted: finish them first
            report.receipts[item["source_key"]] = self.purge(item["source_key"], item["plan"])
        for item in report.resume:
            report.outcomes.update(
                self.execute_sources([item.key], [dg.AssetKey(a) for a in item.assets], tags={tag.TRIGGER: "recovery"})
            )
        claimed = Ledger(self.db).claim(report.requeued, f"recovery:{time.time_ns()}", utcnow(), "run", 0)
        if claimed:  # a lost launch: run it here unless the daemon's dispatcher took it first
            report.outcomes.update(self.execute_sources(claimed, tags={tag.TRIGGER: "recovery"}))
        return report

    # ---- purge and keys -------------------------------------------------------------------
    def purge(self, key: str, plan: dict[str, Any]) -> dict[str, Any] | None:
        """`purge_job` for one source; returns this run's own receipt (another source's purge
        may have finished meanwhile), None when there was nothing to purge."""
        job = self._defs().resolve_job_def("purge_job")
        row = self.db.get_source(key)
        title = row.title if row else key
        with self.instance() as instance, watching_for_dead_runs(instance):
            if not instance.has_dynamic_partition("sources", key):
                instance.add_dynamic_partitions("sources", [key])
            result = job.execute_in_process(
                run_config={"ops": {"purge_receipt": {"config": plan}}, "loggers": self._logging()},
                instance=instance,
                partition_key=key,
                tags={tag.SOURCE: key, tag.TITLE: tag.title_tag(title), tag.TRIGGER: "purge", **run_tags()},
                raise_on_error=False,
            )
            if not result.success:
                raise RuntimeError(f"purge of {title} failed; see run {result.run_id} in the Dagster UI")
        for event in result.get_asset_materialization_events():
            materialization = event.step_materialization_data.materialization
            if materialization.partition == key and "receipt" in materialization.metadata:
                return materialization.metadata["receipt"].value  # type: ignore[return-value]
        return None

    def rotate_keys(self) -> dict[str, Any]:
        """Materialize `keyring` (rotate, re-wrap, verify, retire); returns its report."""
        self.recover()
        job = self._defs().resolve_job_def("key_rotation_job")
        with self.instance() as instance:
            result = job.execute_in_process(
                instance=instance,
                tags={tag.TRIGGER: "cli", **run_tags()},
                raise_on_error=False,
                run_config={"loggers": self._logging()},
            )
            if not result.success:  # the step's own message names the blobs that do not open
                detail = failure_message(result) or "see the run in the Dagster UI"
                raise RuntimeError(f"key rotation failed (run {result.run_id[:8]}): {detail[:1000]}")
            event = instance.get_latest_materialization_event(dg.AssetKey("keyring"))
        return event.asset_materialization.metadata["report"].value  # type: ignore[union-attr,return-value]
