"""Crash recovery: what a kill -9, an OOM kill or a timeout leaves behind, found and repaired.

Every entry point that runs work calls `recover` first (`grace ingest --wait`, purge, revoke
--wait, key rotation, `grace doctor --repair`, and `recovery_sensor` under the daemon). It:

1. finds runs whose process is gone: a run that is STARTED (or NOT_STARTED/STARTING) while
   the process that executes it no longer exists. The process is known from the run's
   `grace/pid` tag (in-process runs of the Python API and CLI) or from Dagster's own engine
   event "Started process for run (pid: N)" (runs the daemon launched); a pid that is alive
   but started after the run did is a different process that reused the number. Such a run
   is marked failed with the reason;
2. frees the pool slots of every run that is finished or dead (Dagster keeps the slot of a
   killed step in `concurrency_slots` for ever; measured before this module: every later run
   of that pool waited with no end, 2/2 transcription and 5/5 purge kill trials);
3. finds sources resting in a stage that only exists inside a run (registered and launched,
   stored, transcribed, chunked, purging) with no live run covering them, and says how to
   resume each from its last completed stage (the stages are idempotent: a resumed source
   ends searchable exactly once); unfinished purges are resumed from the purge journal;
4. removes temporary files that outlived their writer (blob store, LanceDB, inbox copies)
   once no live run can own them.

Run liveness is a process check on this machine; for runs on other machines (a Docker or K8s
run launcher) Dagster's own run monitoring decides, and this module leaves them alone.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from grace_pipelines import tags
from grace_pipelines.db.schema import IN_FLIGHT_STAGES, Stage, utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.settings import GraceSettings

UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
IN_FLIGHT = [*UNFINISHED, dg.DagsterRunStatus.QUEUED]
STALE_AFTER = timedelta(minutes=2)  # a source with no run this long after its last change is stuck
RESUME_SELECTION = {  # the assets still to do after the stage a source rests in
    Stage.STORED: ["transcript", "chunks", "embeddings"],
    Stage.TRANSCRIBED: ["chunks", "embeddings"],
    Stage.CHUNKED: ["embeddings"],
}
PART_SUFFIX = ".part"


def run_tags() -> dict[str, str]:
    """Tags that let a later process tell whether this process still runs the run."""
    return {tags.PID: str(os.getpid()), tags.HOST: socket.gethostname()}


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def process_started_at(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), None when unknown (no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    boot = _boot_time()
    if boot is None:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, *, not_after: float | None = None) -> bool:
    """Whether `pid` runs (and, with `not_after`, started no later than then: a younger process
    with the same number is another program)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    if not_after is not None:
        started = process_started_at(pid)
        if started is not None and started > not_after + 2.0:
            return False
    try:  # a zombie is dead for our purposes
        state = Path(f"/proc/{pid}/stat").read_text()
        if state[state.rindex(")") + 2 :].split()[0] in ("Z", "X"):
            return False
    except OSError:
        pass
    return True


@dataclass
class Resume:
    """A source to take on from where it stopped."""

    key: str
    stage: str
    assets: list[str]
    why: str


@dataclass
class RecoveryReport:
    dead_runs: list[dict[str, str]] = field(default_factory=list)
    slots_freed: list[str] = field(default_factory=list)
    resume: list[Resume] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)  # registered, launch lost: back to the dispatcher
    purges: list[dict[str, Any]] = field(default_factory=list)  # unfinished purges: key + plan
    temp_files: list[str] = field(default_factory=list)
    live_runs: int = 0
    seconds: float = 0.0
    outcomes: dict[str, bool] = field(default_factory=dict)  # sources the caller resumed, and how it went
    receipts: dict[str, Any] = field(default_factory=dict)  # purges the caller finished: their receipts

    @property
    def found_anything(self) -> bool:
        return bool(
            self.dead_runs or self.slots_freed or self.resume or self.requeued or self.purges or self.temp_files
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _run_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    tag = run.tags.get(tags.PID)
    if tag is not None:
        return int(tag) if tag.isdigit() else None
    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = getattr(event, "engine_event_data", None) if event else None
        value = data.metadata.get("pid") if data and data.metadata else None
        text = getattr(value, "value", value)
        if text is not None and str(text).isdigit():
            return int(str(text))
    return None


def _same_machine(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    host = run.tags.get(tags.HOST)
    if host is not None:
        return host == socket.gethostname()
    # launched by the daemon: local only with the default launcher (a subprocess here)
    return type(instance.run_launcher).__name__ == "DefaultRunLauncher"


def dead_runs(instance: dg.DagsterInstance) -> list[tuple[dg.DagsterRun, str]]:
    """Unfinished runs of this machine whose process is gone, with the reason."""
    found = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=UNFINISHED)):
        run = record.dagster_run
        if not _same_machine(instance, run):
            continue
        pid = _run_pid(instance, run)
        started = record.start_time or record.create_timestamp.timestamp()
        if pid is None:
            continue  # never reached a process: the daemon's run monitoring times such launches out
        if not process_alive(pid, not_after=started):
            found.append((run, f"its process (pid {pid}) is gone: killed or crashed"))
    return found


def covered_keys(instance: dg.DagsterInstance) -> set[str]:
    """Source keys that a queued or unfinished run is working on."""
    keys: set[str] = set()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT)):
        if run.tags.get(tags.SOURCE):
            keys.add(run.tags[tags.SOURCE])
        if run.tags.get(tags.SOURCES):
            keys.update(run.tags[tags.SOURCES].split(","))
        if run.tags.get("dagster/partition"):
            keys.add(run.tags["dagster/partition"])
    return keys


def free_stale_slots(instance: dg.DagsterInstance, dead: set[str]) -> list[str]:
    """Free the pool slots held by runs that are finished, dead or unknown."""
    storage = instance.event_log_storage
    freed = []
    try:
        holders = storage.get_concurrency_run_ids()
    except NotImplementedError:
        return freed
    for run_id in sorted(holders):
        run = instance.get_run_by_id(run_id)
        if run_id in dead or run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            freed.append(run_id)
    return freed


def last_run_finished(instance: dg.DagsterInstance, key: str) -> bool:
    """Whether the newest run tagged with this source has ended (failed, canceled, succeeded)."""
    runs = instance.get_runs(filters=dg.RunsFilter(tags={tags.SOURCE: key}), limit=1)
    return bool(runs) and runs[0].is_finished


def stuck_sources(
    db: StateDB,
    covered: set[str],
    *,
    now: datetime,
    just_died: set[str],
    wanted: set[str] | None = None,
    finished: Any = None,
) -> tuple[list[Resume], list[str]]:
    """Sources resting in an in-run stage with no live run. A source counts as stuck at once
    when the run that had it just died, its newest run has ended (`finished(key)`), or the
    caller asks for it (`wanted`); else after `STALE_AFTER` without change (a launch may be on
    its way)."""
    resume: list[Resume] = []
    requeue: list[str] = []
    for row in db.sources_in_stages(IN_FLIGHT_STAGES):
        if row.key in covered or row.stage == Stage.PURGING:
            continue
        fresh = now - row.updated_at < STALE_AFTER
        if (
            fresh
            and row.key not in just_died
            and (wanted is None or row.key not in wanted)
            and not (finished is not None and row.stage != Stage.REGISTERED and finished(row.key))
        ):
            continue
        if row.stage == Stage.REGISTERED:
            if row.launched_at is not None:
                requeue.append(row.key)  # its launch or run was lost: back to the dispatcher's queue
            continue
        resume.append(
            Resume(
                row.key,
                row.stage,
                RESUME_SELECTION[row.stage],
                f"interrupted after stage {row.stage}; resuming from there",
            )
        )
    return resume, requeue


def _stale_inbox_parts(settings: GraceSettings) -> list[Path]:
    """Copies into the inbox (`.NAME.<pid>.part`) whose writer is gone."""
    found = []
    if not settings.inbox.is_dir():
        return found
    for path in list(settings.inbox.glob(".*" + PART_SUFFIX)) + list(settings.inbox.glob("*/.*" + PART_SUFFIX)):
        pid_text = path.name[: -len(PART_SUFFIX)].rsplit(".", 1)[-1]
        alive = pid_text.isdigit() and process_alive(int(pid_text))
        if not alive:
            found.append(path)
    return found


def recover(
    instance: dg.DagsterInstance,
    settings: GraceSettings,
    db: StateDB,
    *,
    repair: bool = True,
    wanted: set[str] | None = None,
    blob_store: Any | None = None,
    vector_store: Any | None = None,
    sweep_temp: bool = True,
) -> RecoveryReport:
    """Find (and with `repair`, fix) what dead processes left. Resuming sources and purges is
    the caller's part (the API runs them, the sensor requests runs): this returns what to do
    and requeues lost launches into the dispatcher."""
    started = time.perf_counter()
    report = RecoveryReport()
    dead = dead_runs(instance)
    just_died: set[str] = set()
    for run, why in dead:
        report.dead_runs.append({"run_id": run.run_id, "job": run.job_name, "why": why})
        if run.tags.get(tags.SOURCE):
            just_died.add(run.tags[tags.SOURCE])
        if run.tags.get(tags.SOURCES):
            just_died.update(run.tags[tags.SOURCES].split(","))
        if repair:
            instance.report_run_failed(run, f"grace recovery: {why}")
    dead_ids = {run.run_id for run, _ in dead}
    if repair:
        report.slots_freed = free_stale_slots(instance, dead_ids)
    live = instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT))
    live = [r for r in live if r.run_id not in dead_ids]
    report.live_runs = len(live)
    covered = covered_keys(instance) if repair else covered_keys(instance) - just_died
    now = utcnow()
    report.resume, report.requeued = stuck_sources(
        db, covered, now=now, just_died=just_died, wanted=wanted, finished=lambda key: last_run_finished(instance, key)
    )
    for entry in db.unfinished_purges():
        if entry["source_key"] not in covered:
            report.purges.append({"source_key": entry["source_key"], "plan": entry["plan"], "journal_id": entry["id"]})
    if repair:
        for key in report.requeued:
            db.update_source(key, launched_at=None, run_key=None)
    # temporary files: safe to remove once no live run can own them
    quiet = not live
    temps: list[str] = [str(p.relative_to(settings.home)) for p in _stale_inbox_parts(settings)]
    if repair:
        for path in _stale_inbox_parts(settings):
            path.unlink(missing_ok=True)
    # the store and LanceDB folders are walked only when asked (doctor, every few sensor ticks)
    # or when a run just died: walking them on every command would grow with the library
    sweep = sweep_temp or bool(dead)
    if blob_store is not None and sweep:
        temps += [f"store/{t}" for t in (blob_store.remove_temp_files() if repair else blob_store.temp_files())]
    if vector_store is not None and sweep:
        lance = vector_store.remove_temp_files() if repair and quiet else vector_store.temp_files()
        temps += [f"lancedb/{t}" for t in lance]
    report.temp_files = temps
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _interrupt_pending() -> bool:
    """Whether Dagster captured a SIGINT/SIGTERM that it has not acted on yet (private API:
    `dagster._utils.interrupts`; False when it moves)."""
    try:
        from dagster._utils.interrupts import check_captured_interrupt
    except ImportError:
        return False
    return check_captured_interrupt()


INTERRUPT_GRACE_S = 3.0


@contextmanager
def watching_for_dead_runs(instance: dg.DagsterInstance, every_s: float = 10.0) -> Iterator[None]:
    """While this process runs work in-process:

    - keep failing runs whose process died and freeing their pool slots: a step of ours waiting
      for a slot that a process killed meanwhile held would otherwise wait for ever (the
      recovery at the start of the command ran before that kill);
    - make SIGTERM and Ctrl-C work while a step waits for a pool slot. Dagster's in-process
      execution captures them and acts only at step boundaries, so a waiting step never saw
      them (measured: `timeout 180 grace ingest ...` still running 14 minutes later). When an
      interrupt stays pending for INTERRUPT_GRACE_S, the process exits 143 at once; that is as
      safe as a kill, since recovery fails the run, frees its slots and resumes the source.
    """
    stop = threading.Event()

    def watch() -> None:
        last_check = time.monotonic()
        pending_since: float | None = None
        while not stop.wait(0.5):
            if _interrupt_pending():
                pending_since = pending_since or time.monotonic()
                if time.monotonic() - pending_since >= INTERRUPT_GRACE_S:
                    os.write(2, b"interrupted; the next grace command resumes the unfinished work\n")
                    os._exit(128 + 15)
            else:
                pending_since = None
            if time.monotonic() - last_check < every_s:
                continue
            last_check = time.monotonic()
            try:
                dead = dead_runs(instance)
                for run, why in dead:
                    instance.report_run_failed(run, f"grace recovery: {why}")
                free_stale_slots(instance, {run.run_id for run, _ in dead})
            except Exception:  # noqa: BLE001, S112 - a watcher must never take the work down
                continue

    thread = threading.Thread(target=watch, name="grace-dead-run-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
