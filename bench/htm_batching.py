"""200 tiny voice notes: batched (`tiny_batch_job`) vs one run each (target: batched at least
5x faster), and items/s.

200 distinct tiny voice notes are built from the real speech fixture tests/fixtures/groceries.ogg
(13 s): decoded with PyAV to 16 kHz mono and written as WAVs, note i with i x 10 ms of leading
silence (13.0-15.0 s each, all under the 30 s tiny threshold; different bytes, so different
source keys). Every variant uses its own GRACE_HOME (SQLite state, its own on-disk Dagster
instance), the real bundled Whisper (default settings) and MiniLM, and consent by policy
(`consent_policy=[PolicyRule(name="bench", origins=["voice_note"])]`). A warm-up ingest of one
extra note in a throw-away home loads the models into this process first, so the in-process
variants compare run overhead, not model loading.

- batched: the 200 files sit (settled) in inbox/voice_note; the real `inbox_sensor` is ticked
  and the runs it requests (4 `tiny_batch_job` runs of 50) are executed in-process, highest
  priority first, as tests/conftest.py's Driver does; wall time from the first tick until all
  200 sources are searchable.
- one run each, in-process: the same 200 registered by one `scan_inbox` (timed, as the tick is),
  then `ingest_job.execute_in_process(partition_key=k)` one by one via `Grace.run_sources` (what
  `grace ingest --wait` does). A LOWER bound of per-run overhead (no process start, warm models).
- one run each, one process per run (what the daemon's default run launcher does): a sample of
  runs, each `sys.executable bench/htm_batching.py --child HOME KEY` (fresh interpreter: imports
  Dagster, LanceDB, loads Whisper and MiniLM, runs `ingest_job` for one partition on the same
  home and instance); the per-run wall time (process start to exit) is extrapolated linearly to
  200 and labelled as an extrapolation.
- batched with one process per run (derived): the batched in-process time plus, per batch run,
  the fresh-process start cost measured by the sample above (child wall minus in-process run).
Runs log to the Dagster instance; the console logger is at CRITICAL in every variant (as
`Grace.run_sources` sets it). Sample sizes: BENCH_HTM_SINGLES (in-process singles, default all
200) and BENCH_HTM_PROCS (process-per-run sample, default 20).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FIXTURES, SR, emit, median, note, write_wav  # noqa: E402

NOTES = int(os.environ.get("BENCH_HTM_NOTES", 200))  # smaller only for a smoke test
SINGLES = int(os.environ.get("BENCH_HTM_SINGLES", NOTES))
PROCS = int(os.environ.get("BENCH_HTM_PROCS", 20))
TARGET_RATIO = 5.0
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def grace_for(home: Path):
    from grace_pipelines import Grace
    from grace_pipelines.governance.consent import PolicyRule

    grace = Grace(home, consent_policy=[PolicyRule(name="bench", origins=["voice_note"])])
    grace.init()
    return grace


def child(home: str, key: str) -> None:
    """One run of `ingest_job` for one partition in this fresh process (the --child mode)."""
    started = time.perf_counter()
    grace = grace_for(Path(home))
    _ = grace.defs
    imported = time.perf_counter()
    outcome = grace.run_sources([key])
    done = time.perf_counter()
    print(json.dumps({"ok": outcome.get(key, False), "setup_s": imported - started, "run_s": done - imported}))


def decode_fixture(name: str = "groceries.ogg") -> np.ndarray:
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=SR)
    parts = []
    with av.open(str(FIXTURES / name)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                parts.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            parts.append(out.to_ndarray().reshape(-1))
    return np.concatenate(parts).astype(np.float32)


def build_notes(folder: Path, n: int) -> list[Path]:
    speech = decode_fixture()
    folder.mkdir(parents=True)
    return [
        write_wav(folder / f"note-{i:03d}.wav", np.concatenate([np.zeros(i * SR // 100, np.float32), speech]))
        for i in range(n)
    ]


def place(files: list[Path], inbox: Path) -> None:
    """Copy into the inbox with an old mtime, so the sensor sees them settled."""
    inbox.mkdir(parents=True, exist_ok=True)
    past = time.time() - 60
    for f in files:
        target = inbox / f.name
        shutil.copyfile(f, target)
        os.utime(target, (past, past))


def all_searchable(db, keys: list[str]) -> bool:
    return all((row := db.get_source(k)) is not None and row.stage == "searchable" for k in keys)


def batched(files: list[Path], home: Path) -> dict:
    import dagster as dg

    from grace_pipelines.definitions import build_definitions

    grace = grace_for(home)
    defs = build_definitions(grace.settings)
    sensor = defs.resolve_sensor_def("inbox_sensor")
    place(files, grace.settings.inbox / "voice_note")
    keys: list[str] = []
    runs: list[dict] = []
    cursor = None
    with grace.instance() as instance:
        started = time.perf_counter()
        ticks = 0
        while True:
            ticks += 1
            context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=dict(defs.resources))
            result = sensor(context)
            cursor = result.cursor
            for request in result.dynamic_partitions_requests or []:
                instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
                keys += list(request.partition_keys)
            requests = sorted(result.run_requests or [], key=lambda r: -int((r.tags or {}).get("dagster/priority", 0)))
            for request in requests:
                job = defs.resolve_job_def(request.job_name or "ingest_job")
                t = time.perf_counter()
                out = job.execute_in_process(
                    instance=instance,
                    run_config={**(request.run_config or {}), **QUIET},
                    partition_key=request.partition_key,
                    tags=request.tags,
                    raise_on_error=False,
                )
                runs.append(
                    {
                        "job": request.job_name,
                        "sources": int((request.tags or {}).get("grace/batch_size", 1)),
                        "success": out.success,
                        "s": round(time.perf_counter() - t, 3),
                    }
                )
                note(f"batched run {len(runs)}: {runs[-1]}")
            if len(keys) >= len(files) and all_searchable(grace.db, keys):
                break
            if ticks > 50:
                raise RuntimeError(f"not all searchable after {ticks} ticks")
            if not requests:
                time.sleep(0.5)  # a partial batch waits `tiny_batch_wait_s` for company
        wall = time.perf_counter() - started
    return {"wall_s": wall, "ticks": ticks, "runs": runs, "searchable": len(keys)}


def register(grace, files: list[Path]) -> tuple[list[str], float]:
    from grace_pipelines.ingest.inbox import scan_inbox

    place(files, grace.settings.inbox / "voice_note")
    started = time.perf_counter()
    scan = scan_inbox(grace.settings, grace.db, None, settle_seconds=0)
    return [d.key for d in scan.new], time.perf_counter() - started


def singles_in_process(files: list[Path], home: Path) -> dict:
    grace = grace_for(home)
    keys, register_s = register(grace, files)
    per_run = []
    started = time.perf_counter()
    for i, key in enumerate(keys):
        t = time.perf_counter()
        ok = grace.run_sources([key])[key]
        per_run.append(time.perf_counter() - t)
        if not ok:
            raise RuntimeError(f"single run for {key} failed")
        if i % 25 == 0:
            note(f"in-process single {i}: {per_run[-1]:.2f} s")
    wall = time.perf_counter() - started
    assert all_searchable(grace.db, keys)
    return {"n": len(keys), "register_s": register_s, "runs_s": wall, "per_run_s": per_run}


def singles_per_process(files: list[Path], home: Path) -> dict:
    grace = grace_for(home)
    keys, register_s = register(grace, files)
    walls, inner = [], []
    for i, key in enumerate(keys):
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(home), key],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        walls.append(time.perf_counter() - t)
        line = (proc.stdout.strip().splitlines() or ["{}"])[-1]
        try:
            info = json.loads(line)
        except ValueError:
            info = {}
        if proc.returncode != 0 or not info.get("ok"):
            raise RuntimeError(f"child run for {key} failed (rc {proc.returncode}): {proc.stderr[-2000:]}")
        inner.append(info)
        note(f"process-per-run {i}: {walls[-1]:.2f} s (setup {info['setup_s']:.2f}, run {info['run_s']:.2f})")
    assert all_searchable(grace.db, keys)
    return {"n": len(keys), "register_s": register_s, "walls": walls, "inner": inner}


def main() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    with tempfile.TemporaryDirectory(prefix="grace-bench-htm-") as tmp:
        work = Path(tmp)
        files = build_notes(work / "notes", NOTES + 1)
        warm, files = files[-1], files[:NOTES]
        durations = [(f.stat().st_size - 44) / 2 / SR for f in files]
        note(f"built {len(files)} notes, {min(durations):.2f}-{max(durations):.2f} s")

        t = time.perf_counter()
        warm_grace = grace_for(work / "home-warm")
        warm_out = warm_grace.ingest([warm], origin="voice_note", wait=True)
        warm_s = time.perf_counter() - t
        assert [o.state for o in warm_out] == ["searchable"], [o.to_dict() for o in warm_out]
        note(f"warm-up ingest (imports, models) {warm_s:.2f} s")

        b = batched(files, work / "home-batched")
        note(f"batched: {b['wall_s']:.1f} s for {NOTES}, {len(b['runs'])} runs")

        s = singles_in_process(files[:SINGLES], work / "home-singles")
        note(f"in-process singles: {s['n']} in {s['register_s'] + s['runs_s']:.1f} s")

        p = singles_per_process(files[:PROCS], work / "home-procs")
        note(f"process-per-run sample: {p['n']}, median {median(p['walls']):.2f} s")

    n_batches = len(b["runs"])
    single_run_s = s["runs_s"] / s["n"]
    singles_total = s["register_s"] / s["n"] * NOTES + single_run_s * NOTES
    proc_run_s = sum(p["walls"]) / p["n"]
    procs_total = p["register_s"] / p["n"] * NOTES + proc_run_s * NOTES
    start_cost_s = median(p["walls"]) - median(s["per_run_s"])
    batched_daemon = b["wall_s"] + n_batches * start_cost_s
    r3 = lambda x: round(float(x), 3)  # noqa: E731
    result = {
        "notes": NOTES,
        "note_audio_s": [r3(min(durations)), r3(max(durations))],
        "fixture": "tests/fixtures/groceries.ogg (13 s), 16 kHz mono WAV, i x 10 ms leading silence",
        "engine": "bundled Whisper tiny.en (faster-whisper, default settings), MiniLM embeddings",
        "warmup_ingest_s": r3(warm_s),
        "batched": {
            "wall_s": r3(b["wall_s"]),
            "items_per_s": r3(NOTES / b["wall_s"]),
            "ticks": b["ticks"],
            "runs": b["runs"],
            "searchable": b["searchable"],
        },
        "one_run_each_in_process": {
            "measured": s["n"],
            "extrapolated_to_200": s["n"] < NOTES,
            "register_s": r3(s["register_s"]),
            "runs_s": r3(s["runs_s"]),
            "per_run_s_median": r3(median(s["per_run_s"])),
            "per_run_s_mean": r3(single_run_s),
            "total_s_for_200": r3(singles_total),
            "items_per_s": r3(NOTES / singles_total),
            "note": "lower bound of per-run overhead: same process, models already loaded",
        },
        "one_run_each_process_per_run": {
            "measured": p["n"],
            "extrapolation": f"linear: mean wall of {p['n']} sampled runs x {NOTES} (+ registration scaled)",
            "per_run_wall_s_median": r3(median(p["walls"])),
            "per_run_wall_s_mean": r3(proc_run_s),
            "child_setup_s_median": r3(median([i["setup_s"] for i in p["inner"]])),
            "child_run_s_median": r3(median([i["run_s"] for i in p["inner"]])),
            "extrapolated_total_s_for_200": r3(procs_total),
            "items_per_s": r3(NOTES / procs_total),
        },
        "batched_process_per_run_estimate": {
            "process_start_cost_s": r3(start_cost_s),
            "batch_runs": n_batches,
            "estimated_wall_s": r3(batched_daemon),
            "derivation": "batched in-process wall"
            " + batch runs x (per-process median wall - in-process median per run)",
        },
        "ratios": {
            "in_process_singles_vs_batched_in_process": r3(singles_total / b["wall_s"]),
            "process_per_run_singles_vs_batched_in_process": r3(procs_total / b["wall_s"]),
            "process_per_run_singles_vs_batched_process_per_run": r3(procs_total / batched_daemon),
        },
        "target": f"batched at least {TARGET_RATIO:.0f}x faster than one run each",
        "target_met_vs_in_process_singles": singles_total / b["wall_s"] >= TARGET_RATIO,
        "target_met_vs_process_per_run_singles": procs_total / batched_daemon >= TARGET_RATIO,
    }
    emit("htm_batching", result)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
