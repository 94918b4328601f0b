"""Run every benchmark in its own process, one after another, and print one combined JSON object.

Each benchmark prints one JSON object on stdout (and writes bench/results/NAME.json); their
progress goes to this process's stderr. The combined object is also written to
bench/results/all.json. A benchmark that fails or times out is reported with its exit code
and the tail of its stderr; the others still run. Exit code 1 if any failed.

    .venv/bin/python bench/run_all.py [NAME ...]     # default: all, in the order below,
                                                     # then any other bench/*.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
# (name, script, extra environment, timeout seconds)
BENCHMARKS = [
    ("transcription_rtf", "transcription_rtf.py", {}, 300),
    ("embedding_throughput", "embedding_throughput.py", {}, 300),
    ("search_latency", "search_latency.py", {}, 420),
    ("drop_to_searchable", "drop_to_searchable.py", {}, 600),
    ("drop_to_searchable_tuned", "drop_to_searchable.py", {"BENCH_DROP_TUNED": "1"}, 600),
    ("quality_cost", "quality_cost.py", {}, 900),  # 20 ingests, quality_job cold/warm, 6 drops in fresh processes
    ("web_latency", "web_latency.py", {}, 900),  # grace serve vs the cold CLI: HTTP search/ask, CLI walls
]
DEFAULT_TIMEOUT = 300


def all_benchmarks() -> list[tuple[str, str, dict[str, str], int]]:
    """The list above, then any other bench/*.py (not _private, not this file), by name."""
    known = {script for _, script, _, _ in BENCHMARKS}
    extra = [
        (p.stem, p.name, {}, DEFAULT_TIMEOUT)
        for p in sorted(BENCH.glob("*.py"))
        if not p.name.startswith("_") and p.name != Path(__file__).name and p.name not in known
    ]
    return BENCHMARKS + extra


def run(name: str, script: str, extra: dict[str, str], timeout: int) -> dict:
    env = {**os.environ, **extra}
    started = time.perf_counter()
    print(f"== {name}", file=sys.stderr, flush=True)
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / script)],
        env=env,
        cwd=BENCH.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: benchmarks clean up (drop_to_searchable stops dagster dev)
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        return {
            "error": f"timed out after {timeout} s",
            "stderr_tail": (stderr or "")[-2000:],
            "wall_s": round(time.perf_counter() - started, 1),
        }
    wall = round(time.perf_counter() - started, 1)
    sys.stderr.write("".join(line + "\n" for line in stderr.splitlines() if "WARN  lance" not in line))
    lines = [line for line in stdout.splitlines() if line.strip().startswith("{")]
    if proc.returncode != 0 or not lines:
        return {
            "error": f"exit code {proc.returncode}",
            "stderr_tail": stderr[-2000:],
            "wall_s": wall,
            **({"partial": json.loads(lines[-1])} if lines else {}),
        }
    result = json.loads(lines[-1])
    result["wall_s"] = wall
    return result


def main() -> int:
    wanted = set(sys.argv[1:])
    benchmarks = all_benchmarks()
    unknown = wanted - {b[0] for b in benchmarks}
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    combined: dict = {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": {}}
    t0 = time.perf_counter()
    for name, script, extra, timeout in benchmarks:
        if wanted and name not in wanted:
            continue
        combined["results"][name] = run(name, script, extra, timeout)
    combined["total_wall_s"] = round(time.perf_counter() - t0, 1)
    combined["failed"] = [n for n, r in combined["results"].items() if "error" in r]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "all.json").write_text(json.dumps(combined, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps(combined, default=str))
    return 1 if combined["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
