"""The great-expectations suites behind the `quality_*` checks, called directly (GE 1.x).

dagster-ge does not support GE 1.x, so this module drives GE itself: an ephemeral context, a
pandas data source with one data frame asset per frame kind (`frames.py`), and one suite per
frame holding the expectations of every check that reads that frame (each tagged with its
check in `meta`), so a source costs one `batch.validate(suite)` per frame, not one per check.
Per-source numbers (the recording's duration, the chunk count, the embedder's dimension) go in
as expectation parameters, so the suites are built once per process.

great_expectations takes 5-8 s to import: it is imported here, lazily, the first time a suite
runs (`engine()`), and only the quality job and the quality checks come here. Progress bars
are off. Results carry counts and observed min/max only; GE's own lists of unexpected values
are never copied out (they would be numbers anyway: the frames hold no text).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from grace_pipelines.quality.checks import (
    BY_NAME,
    LANGUAGE_PROBABILITY_MIN,
    NO_SPEECH_SHARE_MAX,
    NORM_TOLERANCE,
    WORD_TIMINGS_MOSTLY,
    WPM_MAX,
    WPM_MIN,
    Outcome,
)
from grace_pipelines.quality.frames import SourceFrames


def _p(name: str) -> dict[str, str]:
    """A per-source expectation parameter (filled from `SourceFrames.params`)."""
    return {"$PARAMETER": name}


@dataclass(frozen=True)
class Rule:
    """Expectations of one check on one frame. `column`: whose min/max the metadata reports;
    `needs`: a column that must hold at least one value for the rule to apply (an engine that
    does not report it is "not measured", not a failure); `limits`: metadata name -> the
    parameter (or constant) the rule compares against, reported beside the result."""

    check: str
    frame: str
    build: Callable[[Any], list[Any]]  # great_expectations.expectations -> expectations
    column: str
    needs: str | None = None
    limits: dict[str, str | float] = field(default_factory=dict)


RULES: tuple[Rule, ...] = (
    # transcript: audio and video
    Rule(
        "quality_transcript_not_empty",
        "speech",
        lambda x: [x.ExpectColumnValuesToBeBetween(column="chars", min_value=1)],
        "chars",
    ),
    Rule(
        "quality_transcript_ordered",
        "segments",
        lambda x: [
            x.ExpectColumnValuesToBeIncreasing(column="start", strictly=False),
            x.ExpectColumnPairValuesAToBeGreaterThanB(column_A="end", column_B="start", or_equal=True),
        ],
        "start",
    ),
    Rule(
        "quality_transcript_within_duration",
        "segments",
        lambda x: [
            x.ExpectColumnValuesToBeBetween(column="start", min_value=0),
            x.ExpectColumnValuesToBeBetween(column="end", min_value=0, max_value=_p("max_end")),
        ],
        "end",
        limits={"max_end_s": "max_end"},
    ),
    Rule(
        "quality_transcript_word_timings",
        "segments",
        lambda x: [x.ExpectColumnValuesToBeBetween(column="timed_words", min_value=1, mostly=WORD_TIMINGS_MOSTLY)],
        "timed_words",
        limits={"mostly": WORD_TIMINGS_MOSTLY},
    ),
    Rule(
        "quality_transcript_speech_rate",
        "speech",
        lambda x: [x.ExpectColumnValuesToBeBetween(column="wpm", min_value=WPM_MIN, max_value=WPM_MAX)],
        "wpm",
        limits={"min_wpm": WPM_MIN, "max_wpm": WPM_MAX},
    ),
    Rule(
        "quality_transcript_language_probability",
        "speech",
        lambda x: [x.ExpectColumnValuesToBeBetween(column="language_probability", min_value=LANGUAGE_PROBABILITY_MIN)],
        "language_probability",
        needs="language_probability",
        limits={"min_probability": LANGUAGE_PROBABILITY_MIN},
    ),
    Rule(
        "quality_transcript_no_speech_ratio",
        "segments",
        lambda x: [x.ExpectColumnMeanToBeBetween(column="no_speech", min_value=0, max_value=NO_SPEECH_SHARE_MAX)],
        "no_speech",
        needs="no_speech",
        limits={"max_share": NO_SPEECH_SHARE_MAX},
    ),
    # transcript: documents
    Rule(
        "quality_transcript_not_empty",
        "text",
        lambda x: [x.ExpectColumnValuesToBeBetween(column="content_chars", min_value=1)],
        "content_chars",
    ),
    Rule(
        "quality_transcript_ordered",
        "sections",
        lambda x: [
            x.ExpectColumnValuesToBeIncreasing(column="start", strictly=False),
            x.ExpectColumnPairValuesAToBeGreaterThanB(column_A="end", column_B="start", or_equal=True),
            x.ExpectColumnValuesToBeBetween(column="start", min_value=0),
            x.ExpectColumnValuesToBeBetween(column="end", max_value=_p("text_chars")),
            x.ExpectColumnValuesToBeIncreasing(column="page", strictly=False),
        ],
        "start",
        limits={"text_chars": "text_chars"},
    ),
    # chunks
    Rule(
        "quality_chunks_not_empty",
        "chunks",
        lambda x: [
            x.ExpectTableRowCountToBeBetween(min_value=1),
            x.ExpectColumnValuesToBeBetween(column="content_chars", min_value=1),
        ],
        "content_chars",
    ),
    Rule(
        "quality_chunks_located",
        "chunks",
        lambda x: [
            x.ExpectColumnValuesToBeInSet(column="located", value_set=[1.0]),
            x.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="end_s", column_B="start_s", or_equal=True, ignore_row_if="either_value_is_missing"
            ),
            x.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="line_end", column_B="line_start", or_equal=True, ignore_row_if="either_value_is_missing"
            ),
        ],
        "located",
    ),
    Rule(
        "quality_chunks_size",
        "chunks",
        lambda x: [x.ExpectColumnValuesToBeBetween(column="chars", min_value=1, max_value=_p("max_chars"))],
        "chars",
        limits={"chunk_chars": "chunk_chars", "max_chars": "max_chars"},
    ),
    # embeddings
    Rule(
        "quality_embeddings_dimension",
        "vectors",
        lambda x: [x.ExpectColumnValuesToBeBetween(column="width", min_value=_p("dim"), max_value=_p("dim"))],
        "width",
        limits={"expected_dim": "dim"},
    ),
    Rule(
        "quality_embeddings_unit_norm",
        "vectors",
        lambda x: [
            x.ExpectColumnValuesToNotBeNull(column="norm"),  # NaN norms: NaN is "missing" to the range check
            x.ExpectColumnValuesToBeBetween(column="norm", min_value=1 - NORM_TOLERANCE, max_value=1 + NORM_TOLERANCE),
        ],
        "norm",
        limits={"tolerance": NORM_TOLERANCE},
    ),
    Rule(
        "quality_embeddings_no_nan",
        "vectors",
        lambda x: [x.ExpectColumnValuesToBeBetween(column="nonfinite", min_value=0, max_value=0)],
        "nonfinite",
    ),
    Rule(
        "quality_embeddings_one_per_chunk",
        "vectors",
        lambda x: [
            x.ExpectTableRowCountToEqual(value=_p("n_chunks")),
            x.ExpectColumnValuesToBeUnique(column="chunk_index"),
            x.ExpectColumnValuesToBeBetween(column="chunk_index", min_value=0, max_value=_p("last_index")),
        ],
        "chunk_index",
        limits={"chunks": "n_chunks"},
    ),
)
FRAMES = sorted({r.frame for r in RULES})
assert {r.check for r in RULES} == set(BY_NAME), "every check has a rule, every rule a check"


@dataclass
class Engine:
    """great-expectations, set up once per process: a context, a batch definition per frame,
    a suite per frame."""

    context: Any
    batches: dict[str, Any]
    suites: dict[str, Any]
    import_s: float  # how long importing great_expectations took in this process
    setup_s: float


@functools.cache
def engine() -> Engine:
    """Import great-expectations and build the suites (once per process)."""
    started = time.perf_counter()
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    imported = time.perf_counter()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("grace_quality")
    batches, suites = {}, {}
    for frame in FRAMES:
        batches[frame] = source.add_dataframe_asset(frame).add_batch_definition_whole_dataframe(f"{frame}_all")
        suite = gx.ExpectationSuite(name=f"grace_{frame}")
        for rule in (r for r in RULES if r.frame == frame):
            for expectation in rule.build(gxe):
                expectation.meta = {"check": rule.check}
                suite.add_expectation(expectation)
        suites[frame] = context.suites.add(suite)
    return Engine(context, batches, suites, imported - started, time.perf_counter() - imported)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _validate(eng: Engine, frame: str, data: Any, params: dict[str, float]) -> dict[str, list[Any]]:
    """One frame's suite on one source: the expectation results grouped by check."""
    batch = eng.batches[frame].get_batch(batch_parameters={"dataframe": data})
    # BASIC: counts and observed values without GE's index lists (measured 25 % faster than SUMMARY)
    result = batch.validate(eng.suites[frame], expectation_parameters=params, result_format="BASIC")
    grouped: dict[str, list[Any]] = {}
    for item in result.results:
        grouped.setdefault((item.expectation_config.meta or {}).get("check", "?"), []).append(item)
    return grouped


def _summary(rule: Rule, data: Any, items: list[Any], params: dict[str, float]) -> dict[str, Any]:
    """Counts only: rows evaluated, unexpected values, expectations failed, observed min/max."""
    unexpected = failed = errors = 0
    observed = None
    for item in items:
        result = dict(item.result or {})
        if not item.success:
            failed += 1
        if (item.exception_info or {}).get("raised_exception"):
            errors += 1
        if "unexpected_count" in result:
            unexpected += int(result.get("unexpected_count") or 0)
        elif not item.success:
            unexpected += 1  # an aggregate expectation (row count, mean) counts as one unexpected
        if "observed_value" in result:
            observed = _number(result["observed_value"])
    column = data[rule.column] if rule.column in data else None
    metadata: dict[str, Any] = {
        "applicable": True,
        "rows_evaluated": len(data),
        "unexpected_count": unexpected,
        "expectations": len(items),
        "failed_expectations": failed,
    }
    if errors:
        metadata["expectation_errors"] = errors
    if column is not None and column.notna().any():
        metadata["observed_min"] = float(column.min())
        metadata["observed_max"] = float(column.max())
    if observed is not None:
        metadata["observed_value"] = observed
    for name, limit in rule.limits.items():
        value = params.get(limit) if isinstance(limit, str) else limit
        if value is not None and _number(value) is not None:
            metadata[name] = float(value)
    return metadata


def evaluate(frames: SourceFrames, checks: Iterable[str] | None = None) -> list[Outcome]:
    """Run the suites on one source; one `Outcome` per check asked for (all by default)."""
    names = list(checks) if checks is not None else list(BY_NAME)
    eng = engine()
    results: dict[str, dict[str, list[Any]]] = {}
    outcomes = []
    for name in names:
        check = BY_NAME[name]
        if check.asset in frames.errors:
            outcomes.append(
                Outcome(check, frames.key, False, f"not evaluated: {frames.errors[check.asset]}", {"readable": False})
            )
            continue
        rules = [
            r
            for r in RULES
            if r.check == name
            and r.frame in frames.frames
            and (r.needs is None or frames.frames[r.frame][r.needs].notna().any())
        ]
        if not rules:
            kind = frames.kind or "source"
            why = (
                f"does not apply to a {kind} source" if frames.kind not in check.kinds else "not measured by the engine"
            )
            outcomes.append(Outcome(check, frames.key, True, why, {"applicable": False, "rows_evaluated": 0}))
            continue
        metadata: dict[str, Any] = {}
        items_all = []
        for rule in rules:
            data = frames.frames[rule.frame]
            if rule.frame not in results:
                results[rule.frame] = _validate(eng, rule.frame, data, frames.params)
            items = results[rule.frame].get(name, [])
            items_all += items
            metadata.update(_summary(rule, data, items, frames.params))
        passed = bool(items_all) and all(item.success for item in items_all)  # no result is no pass
        failed = sum(not item.success for item in items_all)
        description = (
            check.description if passed else f"{failed} of {len(items_all)} expectations failed: {check.description}"
        )
        outcomes.append(Outcome(check, frames.key, passed, description, metadata))
    return outcomes
