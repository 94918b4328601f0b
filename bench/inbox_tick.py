"""Inbox sensor tick time with 10,000 files in the inbox (the issue: a tick over 10,000 files
stays well under Dagster's 60 s limit).

Measures, on the real `inbox_sensor` evaluated against a Dagster test instance:
- the first tick over 10,000 new small documents (capped at `max_files_per_tick`, default 500),
- the ticks that follow until every file is registered (each capped),
- a steady-state tick once the cursor has passed every file (stat only),
- an uncapped single pass over all 10,000 (what the cap protects against).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, note  # noqa: E402

from grace_pipelines.definitions import build_definitions  # noqa: E402
from grace_pipelines.inbox import scan_inbox  # noqa: E402
from grace_pipelines.settings import load_settings  # noqa: E402
from grace_pipelines.state import StateDB  # noqa: E402

FILES = 10_000


def fill(inbox: Path, n: int) -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    past = time.time() - 60
    for i in range(n):
        path = inbox / f"memo-{i:05d}.txt"
        path.write_text(f"Memo {i}: remember item number {i * 7919 % 10007}.\n")
        os.utime(path, (past, past))


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> tuple[float, dg.SensorResult]:
    sensor = defs.get_sensor_def("inbox_sensor")
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=dict(defs.resources))
    started = time.perf_counter()
    result = sensor(context)
    return time.perf_counter() - started, result


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test() as instance:
        settings = load_settings(home=Path(tmp) / "grace")
        settings.ensure_dirs()
        defs = build_definitions(settings)
        note(f"writing {FILES} files")
        fill(settings.inbox, FILES)
        cursor, ticks, registered = None, [], 0
        while registered < FILES:
            seconds, result = tick(defs, instance, cursor)
            cursor = result.cursor
            registered += len(result.run_requests)
            ticks.append(seconds)
            if not result.run_requests:
                break
        note(f"{len(ticks)} capped ticks registered {registered}")
        steady = [tick(defs, instance, cursor)[0] for _ in range(5)]

        uncapped_settings = load_settings(home=Path(tmp) / "grace2", max_files_per_tick=FILES)
        uncapped_settings.ensure_dirs()
        fill(uncapped_settings.inbox, FILES)
        started = time.perf_counter()
        scan = scan_inbox(uncapped_settings, StateDB(uncapped_settings.state_url), None)
        uncapped = time.perf_counter() - started

    emit(
        "inbox_tick",
        {
            "files": FILES,
            "max_files_per_tick": settings.max_files_per_tick,
            "first_tick_s": round(ticks[0], 3),
            "capped_ticks": len(ticks),
            "capped_tick_s_median": round(statistics.median(ticks), 3),
            "capped_tick_s_max": round(max(ticks), 3),
            "registered": registered,
            "steady_state_tick_s_median": round(statistics.median(steady), 4),
            "uncapped_single_pass_s": round(uncapped, 2),
            "uncapped_registered": len(scan.new),
            "target": "a tick well under Dagster's 60 s limit",
        },
    )


if __name__ == "__main__":
    main()
