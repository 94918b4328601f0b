"""What the data-quality checks cost, and proof that they cost drop-to-searchable nothing.

Setup: N distinct real voice notes (tests/fixtures/groceries.ogg, 13 s, note i with i x 10 ms of
leading silence, so different bytes and source keys) are ingested into one GRACE_HOME (its own
on-disk Dagster instance, consent sidecars) with the bundled Whisper and MiniLM.

- `ge_import_s`: `import great_expectations` in a fresh interpreter (median of 3).
- `quality_job`: a fresh interpreter builds the definitions, then runs `quality_job` over all N
  keys twice in-process on the home's instance: the first (cold) run pays GE's import and suite
  set-up once; the second (warm) is the per-source cost of a long-lived batch. `s_per_source`
  = (cold run wall - GE import) / N; `warm_s_per_source` = warm run wall / N; `suites_s_per_source`
  is `quality.run.evaluate_sources` alone (reading frames + validating), per source.
- `drop_to_searchable`: per repetition and variant, a fresh interpreter builds the definitions
  WITH the quality checks/job/sensor (as shipped) or WITHOUT them (the same Definitions with
  those three removed), drops one new note (settled, with its sidecar) into the inbox, ticks
  `inbox_sensor` and executes the run it requests in-process; the clock runs from the tick to
  the ingest run's end (state `searchable`); the jobs are resolved before the clock starts, as
  a code location resolves them once at load. The WITH child then ticks `quality_sensor` and
  runs the quality job it requests, after the clock stopped (non-blocking: reported apart),
  and says whether the ingest run had imported great_expectations (it must not).
  Variants alternate, so drift on this shared machine hits both alike.

Sizes: BENCH_QUALITY_SOURCES (default 20), BENCH_QUALITY_REPS (default 3).
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
from _common import ROOT, SR, decode, emit, median, note, write_consent, write_wav  # noqa: E402

SOURCES = int(os.environ.get("BENCH_QUALITY_SOURCES", 20))
REPS = int(os.environ.get("BENCH_QUALITY_REPS", 3))
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def notes(folder: Path, count: int, offset: int = 0) -> list[Path]:
    clip = decode("groceries.ogg")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(offset, offset + count):
        path = write_wav(folder / f"note_{i:03d}.wav", np.concatenate([np.zeros(i * SR // 100, np.float32), clip]))
        write_consent(path)
        paths.append(path)
    return paths


def child(cmd: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *cmd], cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"child {cmd[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(lines[-1])


# ---- children (fresh interpreters) ----------------------------------------------------------
def child_import() -> dict:
    started = time.perf_counter()
    import great_expectations  # noqa: F401

    return {"import_s": time.perf_counter() - started}


def _defs(home: Path, with_quality: bool):
    import dagster as dg

    from grace_pipelines.definitions import build_definitions
    from grace_pipelines.settings import load_settings

    settings = load_settings(home=home, tiny_batch_wait_s=0, settle_seconds=1.0)
    defs = build_definitions(settings)
    if not with_quality:
        defs = dg.Definitions(
            assets=defs.assets,
            asset_checks=[],
            jobs=[j for j in defs.jobs or [] if j.name != "quality_job"],
            schedules=defs.schedules,
            sensors=[s for s in defs.sensors or [] if s.name != "quality_sensor"],
            resources=defs.resources,
            executor=defs.executor,
        )
    return settings, defs


def _execute(defs, instance, request):
    job = defs.resolve_job_def(request.job_name or "ingest_job")
    return job.execute_in_process(
        instance=instance,
        run_config={**(request.run_config or {}), **QUIET},
        partition_key=request.partition_key,
        asset_selection=request.asset_selection,
        tags=request.tags,
        raise_on_error=False,
    )


def _tick(defs, instance, name: str, cursor: str | None = None):
    import dagster as dg

    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=dict(defs.resources))
    result = defs.resolve_sensor_def(name)(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def child_job(home: Path) -> dict:
    from grace_pipelines.assets.quality import quality_run_config
    from grace_pipelines.db.state import StateDB
    from grace_pipelines.quality.run import BatchStats, evaluate_sources
    from grace_pipelines.runtime.instance import open_instance

    settings, defs = _defs(home, True)
    keys = [r.key for r in StateDB(settings.state_url).list_sources() if r.stage == "searchable"]
    job = defs.resolve_job_def("quality_job")
    walls = []
    with open_instance(settings) as instance:
        for _ in range(2):
            started = time.perf_counter()
            result = job.execute_in_process(instance=instance, run_config={**quality_run_config(keys, 500), **QUIET})
            walls.append(time.perf_counter() - started)
            assert result.success
        evaluations = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    stats = BatchStats()
    resources = defs.resources
    list(
        evaluate_sources(
            keys,
            blob_store=resources["blob_store"].client(),
            chunk_index=resources["vector_store"].client(),
            dim=resources["embedder"].dim,
            chunk_chars=500,
            stats=stats,
        )
    )
    from grace_pipelines.quality import suites

    return {
        "keys": len(keys),
        "cold_wall_s": walls[0],
        "warm_wall_s": walls[1],
        "ge_import_s": suites.engine().import_s,
        "suite_setup_s": suites.engine().setup_s,
        "evaluations": len(evaluations),
        "failed": sum(not e.event_specific_data.passed for e in evaluations),
        "suites": stats.as_metadata(),
    }


def child_drop(home: Path, with_quality: bool, wav: Path) -> dict:
    import shutil

    from grace_pipelines.db.state import StateDB
    from grace_pipelines.runtime.instance import open_instance

    settings, defs = _defs(home, with_quality)
    settings.ensure_dirs()
    db = StateDB(settings.state_url)
    for name in ("ingest_job", "tiny_batch_job", "quality_job"):
        if with_quality or name != "quality_job":
            defs.resolve_job_def(name)  # as a code location does once at load, not per run
    with open_instance(settings) as instance:
        # the inbox sensor's cursor: nothing pending before this drop
        shutil.copy(wav.with_name(wav.name + ".consent.json"), settings.inbox)
        shutil.copy(wav, settings.inbox)
        past = time.time() - 30
        for p in settings.inbox.iterdir():
            os.utime(p, (past, past))
        started = time.perf_counter()
        result = _tick(defs, instance, "inbox_sensor")
        (request,) = result.run_requests
        run = _execute(defs, instance, request)
        searchable_s = time.perf_counter() - started
        key = request.partition_key or request.run_config["ops"]["ingest_batch"]["config"]["keys"][0]
        state = db.get_source(key).stage
        ge_in_ingest = "great_expectations" in sys.modules
        out = {"searchable_s": searchable_s, "state": str(state), "run_ok": run.success, "ge_in_ingest": ge_in_ingest}
        if with_quality:
            started = time.perf_counter()
            ticked = _tick(defs, instance, "quality_sensor")
            ran = [_execute(defs, instance, r) for r in ticked.run_requests]
            out["quality_after_s"] = time.perf_counter() - started
            out["quality_runs"] = len(ran)
            out["quality_ok"] = all(r.success for r in ran)
    return out


# ---- parent -------------------------------------------------------------------------------------
def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    try:
        measure(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(root: Path) -> None:
    from grace_pipelines import Grace

    home = root / "grace"
    note(f"ingesting {SOURCES} voice notes into {home}")
    grace = Grace(home)
    grace.init()
    started = time.perf_counter()
    statuses = grace.ingest(notes(root / "drop", SOURCES), wait=True)
    ingest_s = time.perf_counter() - started
    searchable = sum(s.state == "searchable" for s in statuses)
    note(f"{searchable} searchable in {ingest_s:.1f} s; GE import x3")
    imports = [child(["import"])["import_s"] for _ in range(3)]
    note("quality_job cold and warm")
    job = child(["job", str(home)])
    drops = notes(root / "more", 2 * REPS, offset=SOURCES)
    timings: dict[str, list[dict]] = {"with_quality": [], "without_quality": []}
    for rep in range(REPS):
        for j, variant in enumerate(
            ("with_quality", "without_quality") if rep % 2 == 0 else ("without_quality", "with_quality")
        ):
            wav = drops[2 * rep + j]
            out = child(["drop", str(home), variant, str(wav)])
            note(f"rep {rep} {variant}: {out['searchable_s']:.2f} s")
            timings[variant].append(out)
    with_s = [t["searchable_s"] for t in timings["with_quality"]]
    without_s = [t["searchable_s"] for t in timings["without_quality"]]
    emit(
        "quality_cost",
        {
            "sources": SOURCES,
            "searchable": searchable,
            "ge_import_s": {"median": round(median(imports), 3), "all": [round(x, 3) for x in imports]},
            "quality_job": {
                "keys": job["keys"],
                "evaluations": job["evaluations"],
                "failed_checks": job["failed"],
                "cold_run_s": round(job["cold_wall_s"], 3),
                "warm_run_s": round(job["warm_wall_s"], 3),
                "ge_import_in_run_s": round(job["ge_import_s"], 3),
                "s_per_source": round((job["cold_wall_s"] - job["ge_import_s"]) / max(job["keys"], 1), 4),
                "warm_s_per_source": round(job["warm_wall_s"] / max(job["keys"], 1), 4),
                "suites_s_per_source": job["suites"]["seconds_per_source"],
                "suites": job["suites"],
            },
            "drop_to_searchable": {
                "reps": REPS,
                "with_quality_s": {"median": round(median(with_s), 3), "all": [round(x, 3) for x in with_s]},
                "without_quality_s": {"median": round(median(without_s), 3), "all": [round(x, 3) for x in without_s]},
                "difference_median_s": round(median(with_s) - median(without_s), 3),
                "ge_imported_by_ingest": any(t["ge_in_ingest"] for v in timings.values() for t in v),
                "quality_after_searchable_s": [
                    round(t.get("quality_after_s", 0.0), 3) for t in timings["with_quality"]
                ],
                "quality_runs_ok": all(t.get("quality_ok") for t in timings["with_quality"]),
                "states": sorted({t["state"] for v in timings.values() for t in v}),
            },
        },
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "import":
        print(json.dumps(child_import()))
    elif len(sys.argv) > 1 and sys.argv[1] == "job":
        print(json.dumps(child_job(Path(sys.argv[2]))))
    elif len(sys.argv) > 1 and sys.argv[1] == "drop":
        print(json.dumps(child_drop(Path(sys.argv[2]), sys.argv[3] == "with_quality", Path(sys.argv[4]))))
    else:
        main()
