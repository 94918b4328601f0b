"""Drop-to-searchable latency of a ~20 s voice note with `grace dev` (dagster dev) running.

A fresh GRACE_HOME is initialised (`grace init`), `grace dev` is started on a free port in its
own process group, and once the webserver answers and inbox_sensor has ticked, three ~20 s
WAVs (standup.mp3 + 3 s of groceries.ogg, each with a different short silence tail) are dropped
one at a time: the consent sidecar first, then the WAV, each written under a hidden temporary
name and `os.rename`d into the inbox. The clock starts at the WAV's rename and stops when the
state database says "searchable" (polled every 0.1 s).

Where the time goes comes from the Dagster instance: the sensor tick that requested the run,
the run record, the run's events (ENQUEUED, DEQUEUED, STARTING, START, step start/success) and
`get_run_stats`. The dagster dev process group always gets SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CONSENT_ME, ROOT, SR, decode, emit, median, note, write_wav  # noqa: E402

FILES = 3
# BENCH_DROP_TUNED=1: the same, but the temporary instance's dagster.yaml also gets
# `run_queue: {dequeue_interval_seconds: 1}` (the project's config is not touched).
TUNED = os.environ.get("BENCH_DROP_TUNED") == "1"
NAME = "drop_to_searchable_tuned" if TUNED else "drop_to_searchable"
TUNING_YAML = "run_queue:\n  dequeue_interval_seconds: 1   # bench variant: default 5\n"
TARGET_S = 15.0
STARTUP_TIMEOUT_S = 120
PER_FILE_TIMEOUT_S = 90
BIN = Path(sys.executable).parent
STAGES = ("registered", "stored", "transcribed", "chunked", "searchable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_notes(folder: Path) -> list[Path]:
    import json

    base = np.concatenate(
        [decode("standup.mp3"), np.zeros(int(0.3 * SR), np.float32), decode("groceries.ogg")[: 3 * SR]]
    )
    paths = []
    for i in range(FILES):
        tail = np.zeros(int((0.05 + 0.1 * i) * SR), np.float32)
        wav = write_wav(folder / f"voice_note_{i}.wav", np.concatenate([base, tail]))
        (folder / f"{wav.name}.consent.json").write_text(json.dumps(CONSENT_ME), encoding="utf-8")
        paths.append(wav)
    return paths


def key_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def drop(src: Path, inbox: Path) -> float:
    """Sidecar first, then the media; each as a hidden temp name renamed into place."""
    sidecar = src.with_name(src.name + ".consent.json")
    tmp_side = inbox / f".{sidecar.name}.part"
    shutil.copyfile(sidecar, tmp_side)
    os.rename(tmp_side, inbox / sidecar.name)
    tmp = inbox / f".{src.name}.part"
    shutil.copyfile(src, tmp)
    os.rename(tmp, inbox / src.name)
    return time.time()


def wait_http(port: int, proc: subprocess.Popen, deadline: float) -> float:
    started = time.time()
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"grace dev exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
                if r.status == 200:
                    return time.time() - started
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the Dagster webserver did not answer in time")


def sensor_ticks(instance, name: str) -> list:
    from dagster._core.scheduler.instigation import InstigatorType

    ticks = []
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name == name:
            ticks.extend(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=200))
    return ticks


def wait_first_tick(instance, proc: subprocess.Popen, deadline: float) -> float:
    started = time.time()
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"grace dev exited early with code {proc.returncode}")
        if sensor_ticks(instance, "inbox_sensor"):
            return time.time() - started
        time.sleep(0.5)
    raise TimeoutError("inbox_sensor did not tick in time")


def watch(grace, key: str, t0: float) -> dict:
    """Poll the state DB until searchable; note when each stage was first seen."""
    from grace_pipelines.api import GraceError

    seen: dict[str, float] = {}
    deadline = t0 + PER_FILE_TIMEOUT_S
    while time.time() < deadline:
        try:
            row = grace.db.get_source(key)
        except Exception:  # noqa: BLE001 - SQLite busy while the run writes
            row = None
        if row is not None and row.stage not in seen:
            seen[row.stage] = time.time() - t0
        if row is not None and row.stage == "searchable":
            try:
                status = grace.status_of(key).state
            except GraceError:
                status = "unknown"
            return {
                "searchable_s": seen["searchable"],
                "stages_first_seen_s": {k: round(v, 3) for k, v in seen.items()},
                "status": status,
            }
        if row is not None and row.stage in ("failed", "awaiting_consent"):
            raise RuntimeError(f"source {key} ended {row.stage}: {row.reason}")
        time.sleep(0.1)
    raise TimeoutError(f"source {key} not searchable after {PER_FILE_TIMEOUT_S} s (stages seen: {seen})")


RUN_EVENTS = (
    "PIPELINE_ENQUEUED",
    "PIPELINE_DEQUEUED",
    "PIPELINE_STARTING",
    "PIPELINE_START",
    "PIPELINE_SUCCESS",
    "PIPELINE_FAILURE",
    "RUN_ENQUEUED",
    "RUN_DEQUEUED",
    "RUN_STARTING",
    "RUN_START",
    "RUN_SUCCESS",
    "RUN_FAILURE",
    "ENGINE_EVENT",
)
STEP_EVENTS = ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE")


def _sensor_tick_times(instance, run_id: str, t0: float) -> dict:
    """When the inbox_sensor tick that requested `run_id` started and ended (empty: no such tick)."""
    out: dict = {}
    for tick in sensor_ticks(instance, "inbox_sensor"):
        if run_id in (tick.run_ids or []):
            out["sensor_tick_started"] = round(tick.timestamp - t0, 3)
            end = getattr(tick.tick_data, "end_timestamp", None)
            if end:
                out["sensor_tick_ended"] = round(end - t0, 3)
            break
    return out


def _run_events(instance, run_id: str, t0: float) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """The first time of each run event (PIPELINE_* named RUN_*) and each step's event times."""
    first: dict[str, float] = {}
    steps: dict[str, dict[str, float]] = {}
    for entry in instance.all_logs(run_id):
        ev = entry.dagster_event
        if ev is None:
            continue
        name = ev.event_type_value
        rel = entry.timestamp - t0
        if name in RUN_EVENTS:
            first.setdefault(name.replace("PIPELINE_", "RUN_"), rel)
        if name in STEP_EVENTS and ev.step_key:
            steps.setdefault(ev.step_key, {})[name] = rel
    return first, steps


def _run_stats(instance, run_id: str, t0: float) -> dict:
    """The run's launch, start and end times from `get_run_stats` (None where unset)."""
    stats = instance.get_run_stats(run_id)
    return {
        "launch_time": round(stats.launch_time - t0, 3) if stats.launch_time else None,
        "start_time": round(stats.start_time - t0, 3) if stats.start_time else None,
        "end_time": round(stats.end_time - t0, 3) if stats.end_time else None,
    }


def _step_phases(ev: dict[str, float], steps: dict[str, dict[str, float]]) -> tuple[dict[str, float], list[float]]:
    """The step phases (first step after run start, all steps, each step) and the steps' end times."""
    phases: dict[str, float] = {}
    starts = [t["STEP_START"] for t in steps.values() if "STEP_START" in t]
    ends = [t.get("STEP_SUCCESS", t.get("STEP_FAILURE", 0.0)) for t in steps.values()]
    if "RUN_START" in ev:
        phases["run_start_to_first_step_s"] = min(starts) - ev["RUN_START"]
    phases["steps_total_s"] = max(ends) - min(starts)
    for step, t in steps.items():
        if "STEP_START" in t and "STEP_SUCCESS" in t:
            phases[f"step_{step}_s"] = t["STEP_SUCCESS"] - t["STEP_START"]
    return phases, ends


def _phases(ev: dict[str, float], steps: dict[str, dict[str, float]], created: float) -> dict[str, float]:
    """Split drop -> run end into phases (seconds): pickup, enqueue, queue wait, launch, steps, finish."""
    phases = {"sensor_pickup_s": created}  # drop -> run created (settle + poll interval + tick)
    if "RUN_ENQUEUED" in ev:
        phases["enqueue_s"] = ev["RUN_ENQUEUED"] - created
    # The queued run coordinator daemon polls every dequeue_interval_seconds (default 5) and
    # launches; there is no DEQUEUED event in this version, so queue wait = ENQUEUED -> STARTING.
    if "RUN_STARTING" in ev:
        phases["queue_wait_s"] = ev["RUN_STARTING"] - ev.get("RUN_DEQUEUED", ev.get("RUN_ENQUEUED", created))
    if "RUN_START" in ev and "RUN_STARTING" in ev:
        phases["launch_s"] = ev["RUN_START"] - ev["RUN_STARTING"]  # run worker process start + code load
    if steps:
        step_phases, ends = _step_phases(ev, steps)
        phases.update(step_phases)
    if "RUN_SUCCESS" in ev and steps:
        phases["after_last_step_to_run_end_s"] = ev["RUN_SUCCESS"] - max(ends)
    return phases


def run_breakdown(instance, key: str, t0: float) -> dict:
    """Where the time went, relative to the drop (seconds), from the Dagster instance."""
    import dagster as dg

    records = instance.get_run_records(dg.RunsFilter(tags={"grace/source": key}))
    if not records:
        return {"error": "no run found for this source"}
    rec = records[-1]
    run_id = rec.dagster_run.run_id
    out: dict = {"run_id": run_id, "runs_for_source": len(records), "status": str(rec.dagster_run.status.value)}
    out.update(_sensor_tick_times(instance, run_id, t0))
    out["run_created"] = round(rec.create_timestamp.timestamp() - t0, 3)
    first, steps = _run_events(instance, run_id, t0)
    out["events_s"] = {k: round(v, 3) for k, v in first.items() if k != "ENGINE_EVENT"}
    out["steps_s"] = {
        step: {
            "start": round(t["STEP_START"], 3),
            "duration": round(t.get("STEP_SUCCESS", t.get("STEP_FAILURE", t["STEP_START"])) - t["STEP_START"], 3),
        }
        for step, t in steps.items()
        if "STEP_START" in t
    }
    out["run_stats"] = _run_stats(instance, run_id, t0)
    out["phases_s"] = {k: round(v, 3) for k, v in _phases(first, steps, out["run_created"]).items()}
    return out


def stop(proc: subprocess.Popen | None) -> dict:
    if proc is None or proc.poll() is not None:
        return {"stopped": "not running"}
    t = time.time()
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return {"stopped": "gone"}
    try:
        proc.wait(timeout=30)
        how = "SIGTERM"
    except subprocess.TimeoutExpired:
        how = "SIGKILL"
    try:  # anything left in the group (run workers, code server)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    return {"stopped": how, "stop_s": round(time.time() - t, 2)}


def _terminate(signum, _frame) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks: dagster dev gets stopped


def main() -> None:
    import dagster as dg

    signal.signal(signal.SIGTERM, _terminate)
    from grace_pipelines import Grace

    tmp = Path(tempfile.mkdtemp(prefix="grace-bench-drop-"))
    home = tmp / "home"
    env = dict(os.environ)
    env.update({"GRACE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "PYTHONUNBUFFERED": "1"})
    env.pop("GRACE_INBOX_POLL_SECONDS", None)
    proc: subprocess.Popen | None = None
    log_path = tmp / "dagster-dev.log"
    result: dict = {}
    try:
        subprocess.run([str(BIN / "grace"), "init"], env=env, check=True, cwd=ROOT, capture_output=True)
        if TUNED:
            with open(home / "dagster" / "dagster.yaml", "a", encoding="utf-8") as f:
                f.write(TUNING_YAML)
        staging = tmp / "staging"
        staging.mkdir()
        notes = build_notes(staging)
        audio_s = [round(len(decode_wav(p)) / SR, 3) for p in notes]
        port = free_port()
        t_start = time.time()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [str(BIN / "grace"), "dev", "--port", str(port)],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = t_start + STARTUP_TIMEOUT_S
        http_s = wait_http(port, proc, deadline)
        note(f"webserver up after {http_s:.1f} s")
        grace = Grace(home)
        instance = dg.DagsterInstance.from_config(str(home / "dagster"))
        try:
            tick_wait_s = wait_first_tick(instance, proc, deadline)
            startup_s = time.time() - t_start
            note(f"inbox_sensor ticked; dagster dev ready after {startup_s:.1f} s")
            per_file = []
            for wav in notes:
                key = key_of(wav)
                t0 = drop(wav, grace.settings.inbox)
                seen = watch(grace, key, t0)
                note(f"{wav.name} ({key}) searchable after {seen['searchable_s']:.2f} s")
                # let the run finish so its events are complete and the next file starts clean
                run_deadline = time.time() + 30
                while time.time() < run_deadline:
                    recs = instance.get_run_records(dg.RunsFilter(tags={"grace/source": key}))
                    if recs and recs[-1].dagster_run.is_finished:
                        break
                    time.sleep(0.5)
                breakdown = run_breakdown(instance, key, t0)
                per_file.append(
                    {
                        "file": wav.name,
                        "key": key,
                        "audio_s": audio_s[notes.index(wav)],
                        "searchable_s": round(seen["searchable_s"], 3),
                        "stages_first_seen_s": seen["stages_first_seen_s"],
                        "final_status": seen["status"],
                        "dagster": breakdown,
                    }
                )
                note(f"phases: {breakdown.get('phases_s')}")
                time.sleep(2)
            stamps = sorted(t.timestamp for t in sensor_ticks(instance, "inbox_sensor"))
            gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        finally:
            instance.dispose()
        lat = [f["searchable_s"] for f in per_file]
        phase_names = sorted({k for f in per_file for k in f["dagster"].get("phases_s", {})})
        phase_medians = {
            k: round(
                median([f["dagster"]["phases_s"][k] for f in per_file if k in f["dagster"].get("phases_s", {})]), 3
            )
            for k in phase_names
        }
        result = {
            "files": FILES,
            "audio_s": audio_s,
            "launcher": "grace dev (dagster dev -m grace_pipelines.definitions), project config unchanged",
            "variant": (
                "tuned: temporary instance with run_queue.dequeue_interval_seconds=1"
                if TUNED
                else "as shipped (grace init's dagster.yaml)"
            ),
            "config_seen": {
                "inbox_poll_seconds": grace.settings.inbox_poll_seconds,
                "settle_seconds": grace.settings.settle_seconds,
                "dagster_yaml": (home / "dagster" / "dagster.yaml").read_text(),
            },
            "startup_to_webserver_s": round(http_s, 2),
            "startup_to_first_inbox_tick_s": round(startup_s, 2),
            "first_tick_wait_after_webserver_s": round(tick_wait_s, 2),
            "inbox_sensor_ticks": len(stamps),
            "inbox_sensor_tick_interval_s_median": round(median(gaps), 2) if gaps else None,
            "searchable_s": lat,
            "searchable_s_median": round(median(lat), 3),
            "phase_medians_s": phase_medians,
            "target_s": TARGET_S,
            "target_met": median(lat) <= TARGET_S,
            "per_file": per_file,
        }
    except BaseException as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
        raise
    finally:
        result["shutdown"] = stop(proc)
        if "error" in result:
            try:
                result["dagster_dev_log_tail"] = log_path.read_text(errors="replace")[-3000:]
            except OSError:
                pass
            emit(NAME, result)
        shutil.rmtree(tmp, ignore_errors=True)
    emit(NAME, result)


def decode_wav(path: Path) -> np.ndarray:
    import wave

    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


if __name__ == "__main__":
    main()
