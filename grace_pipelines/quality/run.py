"""Evaluate the `quality_*` checks for a batch of sources: read each source's frames, run the
suites, hand back one `Outcome` per source and check, with the batch's timings.

Plain Python (no Dagster): the quality job, the partitioned quality checks and
bench/quality_cost.py all call `evaluate_sources`. Nothing here imports great-expectations or
pandas at module level; the first source pays for those imports, once per process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from grace_pipelines.quality.checks import BY_NAME, CHECKS, ERROR, Outcome


@dataclass
class BatchStats:
    """What a batch cost and found (counts and seconds only)."""

    sources: int = 0
    evaluations: int = 0
    passed: int = 0
    failed_error: int = 0  # failed checks of ERROR severity
    failed_warn: int = 0
    import_s: float = 0.0  # great-expectations' import in this process (0 when already imported)
    read_s: float = 0.0  # reading blobs and LanceDB rows into frames
    validate_s: float = 0.0  # the suites themselves
    failed_keys: set[str] = field(default_factory=set)  # sources with a failed ERROR check

    def add(self, outcome: Outcome) -> None:
        self.evaluations += 1
        if outcome.passed:
            self.passed += 1
        elif outcome.severity == ERROR:
            self.failed_error += 1
            self.failed_keys.add(outcome.key)
        else:
            self.failed_warn += 1

    def as_metadata(self) -> dict[str, Any]:
        per_source = (self.read_s + self.validate_s) / self.sources if self.sources else 0.0
        return {
            "sources": self.sources,
            "evaluations": self.evaluations,
            "passed": self.passed,
            "failed_error": self.failed_error,
            "failed_warn": self.failed_warn,
            "ge_import_s": round(self.import_s, 3),
            "read_s": round(self.read_s, 3),
            "validate_s": round(self.validate_s, 3),
            "seconds_per_source": round(per_source, 4),
        }


def selected_checks(names: Iterable[str] | None) -> list[str]:
    """The check names asked for, in registry order; unknown names are an error naming them."""
    if names is None:
        return [c.name for c in CHECKS]
    wanted = set(names)
    unknown = sorted(wanted - set(BY_NAME))
    if unknown:
        raise ValueError(f"unknown quality check(s): {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return [c.name for c in CHECKS if c.name in wanted]


def evaluate_sources(
    keys: Iterable[str],
    *,
    blob_store: Any,
    chunk_index: Any,
    dim: int,
    chunk_chars: int | Callable[[str], int],
    checks: Iterable[str] | None = None,
    stats: BatchStats | None = None,
) -> Iterator[Outcome]:
    """One `Outcome` per source and check asked for. `chunk_chars`: the chunk size the source
    was chunked with (a number, or a function of the key); `stats` collects counts and timings."""
    names = selected_checks(checks)
    assets = {BY_NAME[n].asset for n in names}
    stats = stats if stats is not None else BatchStats()
    from grace_pipelines.quality import frames as frames_module  # pandas: paid by the quality path only
    from grace_pipelines.quality import suites

    if names:
        cached = suites.engine.cache_info().currsize > 0
        eng = suites.engine()
        stats.import_s += 0.0 if cached else eng.import_s
    for key in keys:
        started = time.perf_counter()
        size = chunk_chars(key) if callable(chunk_chars) else chunk_chars
        frames = frames_module.load_frames(key, blob_store, chunk_index, dim=dim, chunk_chars=size, assets=assets)
        read = time.perf_counter()
        outcomes = suites.evaluate(frames, names)
        stats.read_s += read - started
        stats.validate_s += time.perf_counter() - read
        stats.sources += 1
        for outcome in outcomes:
            stats.add(outcome)
            yield outcome
