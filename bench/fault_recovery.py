"""Recovery after kill -9: how long a re-run takes to finish what a killed `grace ingest --wait`
left, against a clean cold ingest of the same file in the same run (the baseline), and how
long `grace doctor` takes to find what a kill left.

For each trial: a fresh GRACE_HOME, `grace ingest FILE --wait` started as a real process and
SIGKILLed once the source reaches the stage (and, for pooled steps, once its step holds the
pool slot), then `grace ingest FILE --wait` again, timed until it exits with the source
searchable. Trials whose kill missed (the run finished first) are counted, not timed.

    .venv/bin/python bench/fault_recovery.py        # BENCH_FAULT_TRIALS=N per stage (default 3)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import CONSENT_ME, FIXTURES, ROOT, emit, median, note

GRACE = [sys.executable, "-c", "import sys; sys.argv[0] = 'grace'; from grace_pipelines.cli import main; main()"]
STAGES = [("transcribing", {"stored"}, True), ("chunking", {"transcribed"}, False), ("embedding", {"chunked"}, True)]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRACE_") and k != "DAGSTER_HOME"}
    return {**env, "GRACE_HOME": str(home)}


def _stage(home: Path) -> str | None:
    db = home / "grace.db"
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("SELECT stage FROM sources").fetchone()
            return row[0] if row else None
    except sqlite3.Error:
        return None


def _slot_held(home: Path) -> bool:
    index = home / "dagster" / "history" / "runs" / "index.db"
    if not index.exists():
        return False
    try:
        with sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM concurrency_slots WHERE run_id IS NOT NULL").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def _timed_ingest(home: Path, media: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [*GRACE, "ingest", str(media), "--wait", "--json"],
        cwd=ROOT,
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    seconds = time.perf_counter() - started
    state = json.loads(done.stdout)["sources"][0]["state"] if done.returncode == 0 else f"rc {done.returncode}"
    return seconds, state


def main() -> None:
    trials = int(os.environ.get("BENCH_FAULT_TRIALS", "3"))
    work = Path(tempfile.mkdtemp(prefix="grace-fault-bench-"))
    media = work / "standup.mp3"
    shutil.copyfile(FIXTURES / "standup.mp3", media)
    (work / "standup.mp3.consent.json").write_text(json.dumps({**CONSENT_ME, "participants": ["me"]}))
    baseline = []
    for i in range(trials):
        home = work / f"clean-{i}"
        subprocess.run([*GRACE, "init"], cwd=ROOT, env=_env(home), capture_output=True, check=True)
        seconds, state = _timed_ingest(home, media)
        assert state == "searchable", state
        baseline.append(seconds)
    note(f"clean cold ingest: median {median(baseline):.1f}s")
    result: dict[str, object] = {"trials_per_stage": trials, "clean_ingest_s": round(median(baseline), 2), "stages": {}}
    for name, stages, pooled in STAGES:
        times, missed, lost, doctor = [], 0, 0, []
        for i in range(trials):
            home = work / f"{name}-{i}"
            subprocess.run([*GRACE, "init"], cwd=ROOT, env=_env(home), capture_output=True, check=True)
            proc = subprocess.Popen(
                [*GRACE, "ingest", str(media), "--wait"],
                cwd=ROOT,
                env=_env(home),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            killed = False
            while proc.poll() is None:
                if _stage(home) in stages and (not pooled or _slot_held(home)):
                    proc.send_signal(signal.SIGKILL)
                    killed = True
                    break
                time.sleep(0.01)
            proc.wait()
            if not killed:
                missed += 1
                continue
            started = time.perf_counter()
            report = subprocess.run(
                [*GRACE, "doctor", "--json"],
                cwd=ROOT,
                env=_env(home),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            doctor.append(time.perf_counter() - started)
            assert json.loads(report.stdout)["dead_runs"], report.stdout
            seconds, state = _timed_ingest(home, media)
            if state != "searchable":
                lost += 1
                continue
            times.append(seconds)
        stage_result = {
            "killed": trials - missed,
            "missed": missed,
            "lost_or_wedged": lost,
            "rerun_to_searchable_s": round(median(times), 2) if times else None,
            "rerun_vs_clean_ingest": round(median(times) / median(baseline), 2) if times else None,
            "doctor_report_s": round(median(doctor), 2) if doctor else None,
        }
        note(f"{name}: {stage_result}")
        result["stages"][name] = stage_result  # type: ignore[index]
    shutil.rmtree(work, ignore_errors=True)
    emit("fault_recovery", result)


if __name__ == "__main__":
    main()
