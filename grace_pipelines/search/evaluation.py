"""Retrieval quality, measured: recall@1, recall@5 and MRR per search mode on an eval set.

An eval set is a YAML file (tests/eval/questions.yaml in this repository) naming a corpus of
recordings and documents and questions about them, each with the expected source and where
the answer is: a time window (seconds), a PDF page, a section heading or a line range. A result
is a hit when it comes from the expected source and its passage covers that place: at least
half of the expected time window, the same page, the same heading, an overlapping line range.
For recordings the pin-pointed moment (the sentence `search` narrows a hit to) is scored too.

The scoring here is plain functions; `run_eval` drives a real `Grace` home (ingest through the
asset graph, then `Grace.search`), so the figures are the product's, not a model's alone.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from grace_pipelines.db.schema import Stage

if TYPE_CHECKING:
    from grace_pipelines.api import Grace
    from grace_pipelines.search.retrieval import SearchResult

EVAL_K = 10  # MRR looks this deep; recall@1 and @5 are read off the same ranking
MIN_WINDOW_COVER = 0.5  # a passage must cover at least half of the expected time window


class EvalSetError(ValueError):
    """The eval set cannot be used; the message names the file and the reason."""


class EvalQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    question: str = Field(min_length=3)
    style: Literal["paraphrase", "entity"] = "paraphrase"  # entity: keeps a name/number a person remembers
    source: str
    window: tuple[float, float] | None = None
    page: int | None = Field(None, ge=1)
    heading: str | None = None
    lines: tuple[int, int] | None = None
    evidence: str | None = None

    @model_validator(mode="after")
    def _one_location(self) -> EvalQuestion:
        given = [name for name in ("window", "page", "heading", "lines") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"needs exactly one of window, page, heading, lines (has {given or 'none'})")
        if self.window is not None and not self.window[0] < self.window[1]:
            raise ValueError(f"window {list(self.window)} is empty")
        return self

    @property
    def spoken(self) -> bool:
        return self.window is not None


class EvalSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str
    origin: str = "manual"


class EvalSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    corpus: str = "corpus"
    sources: list[EvalSource] = Field(min_length=1)
    questions: list[EvalQuestion] = Field(min_length=1)
    path: Path | None = None

    @property
    def corpus_dir(self) -> Path:
        base = self.path.parent if self.path else Path.cwd()
        return (base / self.corpus).resolve()


def load_eval_set(path: str | Path) -> EvalSet:
    """Parse and check an eval set: every source exists and every question names one of them."""
    path = Path(path)
    if path.is_dir():
        path = path / "questions.yaml"
    if not path.is_file():
        raise EvalSetError(f"{path}: no such eval set (expected a questions.yaml)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        eval_set = EvalSet.model_validate({**(raw or {}), "path": path})
    except yaml.YAMLError as exc:
        raise EvalSetError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise EvalSetError(f"{path}: {where}: {first['msg']}") from None
    names = {s.file for s in eval_set.sources}
    missing = sorted(n for n in names if not (eval_set.corpus_dir / n).is_file())
    if missing:
        raise EvalSetError(f"{path}: corpus files missing under {eval_set.corpus_dir}: {', '.join(missing)}")
    unknown = sorted({q.source for q in eval_set.questions} - names)
    if unknown:
        raise EvalSetError(f"{path}: questions name sources not in `sources`: {', '.join(unknown)}")
    ids = [q.id for q in eval_set.questions]
    if len(ids) != len(set(ids)):
        raise EvalSetError(f"{path}: question ids are not unique")
    return eval_set


# ---- judging (pure) ---------------------------------------------------------------------------
def _cover(a: tuple[float, float], b: tuple[float, float]) -> float:
    """How much of window `b` the window `a` covers, as a fraction of `b`."""
    overlap = min(a[1], b[1]) - max(a[0], b[0])
    return max(0.0, overlap) / (b[1] - b[0])


def is_hit(result: SearchResult | dict[str, Any], question: EvalQuestion) -> bool:
    """Does this search result answer the question: right source, right place?"""
    r = result if isinstance(result, dict) else asdict(result)
    if r.get("title") != question.source:
        return False
    if question.window is not None:
        start = r.get("passage_start_s", r.get("start_s"))
        end = r.get("passage_end_s", r.get("end_s"))
        return start is not None and end is not None and _cover((start, end), question.window) >= MIN_WINDOW_COVER
    if question.page is not None:
        return r.get("page") == question.page
    if question.heading is not None:
        return (r.get("heading") or "").strip().casefold() == question.heading.strip().casefold()
    a, b = r.get("line_start"), r.get("line_end")
    assert question.lines is not None
    return a is not None and b is not None and a <= question.lines[1] and question.lines[0] <= b


def is_moment_hit(result: SearchResult | dict[str, Any], question: EvalQuestion) -> bool:
    """For a recording: does the pin-pointed moment (the cited seconds) land on the answer?"""
    r = result if isinstance(result, dict) else asdict(result)
    if question.window is None or r.get("title") != question.source or r.get("start_s") is None:
        return False
    return _cover((r["start_s"], r["end_s"]), question.window) >= MIN_WINDOW_COVER


def first_hit_rank(results: Sequence[SearchResult | dict[str, Any]], question: EvalQuestion) -> int | None:
    for rank, result in enumerate(results, start=1):
        if is_hit(result, question):
            return rank
    return None


@dataclass
class ModeScore:
    mode: str  # the variant's label, e.g. "hybrid" or "hybrid, no rerank"
    questions: int
    recall_at_1: float
    recall_at_5: float
    mrr: float
    moment_at_1: float | None  # share of spoken questions whose top result pin-points the answer
    p50_ms: float
    by_style: dict[str, dict[str, float]] = field(default_factory=dict)
    ranks: dict[str, int | None] = field(default_factory=dict)


def recall_mrr(ranks: Sequence[int | None]) -> dict[str, float]:
    """recall@1, recall@5 and MRR (reciprocal rank of the first hit; 0 when none in the top k)."""
    n = len(ranks) or 1
    found = [r for r in ranks if r is not None]
    return {
        "recall_at_1": round(sum(1 for r in found if r <= 1) / n, 4),
        "recall_at_5": round(sum(1 for r in found if r <= 5) / n, 4),
        "mrr": round(sum(1 / r for r in found) / n, 4),
    }


def score(
    mode: str,
    ranks: dict[str, int | None],
    moments: dict[str, bool],
    latencies_ms: list[float],
    styles: dict[str, str] | None = None,
) -> ModeScore:
    by_style: dict[str, dict[str, float]] = {}
    for style in sorted(set((styles or {}).values())):
        picked = [r for qid, r in ranks.items() if (styles or {}).get(qid) == style]
        by_style[style] = {"questions": len(picked), **recall_mrr(picked)}
    return ModeScore(
        mode=mode,
        questions=len(ranks),
        **recall_mrr(list(ranks.values())),
        moment_at_1=round(sum(moments.values()) / len(moments), 4) if moments else None,
        p50_ms=round(statistics.median(latencies_ms), 1) if latencies_ms else 0.0,
        by_style=by_style,
        ranks=ranks,
    )


# ---- running ----------------------------------------------------------------------------------
def ingest_corpus(
    grace: Grace, eval_set: EvalSet, progress: Callable[[str, str], None] | None = None
) -> dict[str, str]:
    """Ingest every corpus file (idempotent: already ingested bytes are not redone); returns
    each file's state. A file that does not end searchable is an error naming it."""
    by_origin: dict[str, list[Path]] = {}
    for source in eval_set.sources:
        by_origin.setdefault(source.origin, []).append(eval_set.corpus_dir / source.file)
    states: dict[str, str] = {}
    for origin, paths in by_origin.items():
        for outcome in grace.ingest(paths, origin=origin, wait=True, progress=progress):
            states[outcome.title] = outcome.state
    searchable = {row.title for row in grace.db.list_sources() if row.stage == Stage.SEARCHABLE}
    bad = {s.file: states.get(s.file, "not ingested") for s in eval_set.sources if s.file not in searchable}
    if bad:
        raise EvalSetError(
            "eval corpus files not searchable: " + ", ".join(f"{k} ({v})" for k, v in sorted(bad.items()))
        )
    return states


# (label, search mode, rerank: None = as configured) in the order they are reported
VARIANTS: tuple[tuple[str, str, bool | None], ...] = (
    ("hybrid", "hybrid", None),
    ("vector", "vector", None),
    ("keyword", "keyword", None),
    ("hybrid, no rerank", "hybrid", False),
    ("vector, no rerank", "vector", False),
)


def run_eval(
    grace: Grace,
    eval_set: EvalSet,
    variants: Sequence[tuple[str, str, bool | None]] = VARIANTS,
) -> dict[str, Any]:
    """Ask every question in every variant (the corpus must be ingested); returns the report."""
    styles = {q.id: q.style for q in eval_set.questions}
    scores: list[ModeScore] = []
    misses: dict[str, list[dict[str, Any]]] = {}
    for label, mode, rerank in variants:
        ranks: dict[str, int | None] = {}
        moments: dict[str, bool] = {}
        latencies: list[float] = []
        misses[label] = []
        for q in eval_set.questions:
            started = time.perf_counter()
            results = grace.search(q.question, k=EVAL_K, mode=mode, rerank=rerank)
            latencies.append((time.perf_counter() - started) * 1000)
            ranks[q.id] = first_hit_rank(results, q)
            if q.spoken:
                moments[q.id] = bool(results) and is_moment_hit(results[0], q)
            if ranks[q.id] != 1:
                top = results[0] if results else None
                misses[label].append(
                    {
                        "id": q.id,
                        "question": q.question,
                        "expected": _expected_label(q),
                        "rank": ranks[q.id],
                        "top": getattr(top, "citation", None) if top is not None else None,
                    }
                )
        scores.append(score(label, ranks, moments, latencies, styles))
    return {
        "eval_set": str(eval_set.path) if eval_set.path else None,
        "sources": len(eval_set.sources),
        "spoken_sources": sum(1 for s in eval_set.sources if _is_media(s.file)),
        "questions": len(eval_set.questions),
        "k": EVAL_K,
        "modes": {s.mode: asdict(s) for s in scores},
        "misses": misses,
    }


def evaluate(
    set_path: str | Path,
    home: str | Path | None = None,
    variants: Sequence[tuple[str, str, bool | None]] = VARIANTS,
    progress: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """Load the eval set, ingest its corpus into `home` (default: a temporary GRACE_HOME, never
    the user's own), with consent granted by a policy rule for the corpus's origins, and score
    every variant. Engine settings (embedder, chunking, fusion, ...) come from the environment
    as usual, so `GRACE_KEYWORD_WEIGHT=0.1 grace eval` measures a change before making it."""
    import tempfile

    from grace_pipelines.api import Grace
    from grace_pipelines.governance.consent import PolicyRule

    eval_set = load_eval_set(set_path)
    rule = PolicyRule(name="eval-corpus", origins=sorted({s.origin for s in eval_set.sources}), owner_only=False)
    with tempfile.TemporaryDirectory(prefix="grace-eval-") as tmp:
        grace = Grace(Path(home) if home else Path(tmp), consent_policy=[rule])
        started = time.perf_counter()
        ingest_corpus(grace, eval_set, progress=progress)
        ingest_s = time.perf_counter() - started
        report = run_eval(grace, eval_set, variants)
    report["ingest_s"] = round(ingest_s, 1)
    report["settings"] = {
        name: getattr(grace.settings, name)
        for name in (
            "embedder",
            "chunk_chars",
            "chunk_overlap",
            "search_fusion",
            "keyword_weight",
            "search_rerank",
            "rerank_depth",
            "rerank_alpha",
        )
    }
    report["recorded_to"] = record_summary(report)
    return report


# ---- the latest result, for the control room (the `search_quality` asset) ------------------------
SUMMARY_FILE = Path("eval") / "latest.json"  # under GRACE_HOME, 0600


def summary_of(report: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    """What the control room shows of a report: figures per mode, corpus size, when. No question
    text (a miss quotes its question; the summary does not)."""
    keep = ("questions", "recall_at_1", "recall_at_5", "mrr", "moment_at_1", "p50_ms")
    return {
        "evaluated_at": (at or datetime.now(timezone.utc)).isoformat(),
        "eval_set": report.get("eval_set"),
        "sources": report.get("sources"),
        "questions": report.get("questions"),
        "k": report.get("k"),
        "modes": {mode: {k: m.get(k) for k in keep} for mode, m in report.get("modes", {}).items()},
        "settings": report.get("settings", {}),
    }


def record_summary(report: dict[str, Any], home: str | Path | None = None) -> str | None:
    """Write the report's summary to `home` (default: the GRACE_HOME of the environment) as
    eval/latest.json (0600, atomic); only into a home that exists (an evaluation never creates
    one). Returns the file written, or None."""
    import json

    from grace_pipelines.crypto.files import atomic_write_bytes
    from grace_pipelines.settings import default_home

    root = Path(home) if home is not None else default_home()
    if not root.is_dir():
        return None
    path = root.resolve() / SUMMARY_FILE
    path.parent.mkdir(mode=0o700, exist_ok=True)
    atomic_write_bytes(path, json.dumps(summary_of(report), indent=2, default=str).encode("utf-8"))
    return str(path)


def latest_summary(home: str | Path) -> dict[str, Any] | None:
    """The summary `record_summary` last wrote under `home`, or None (never evaluated); an
    unreadable file is an error naming it."""
    import json

    path = Path(home) / SUMMARY_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalSetError(f"{path}: unreadable evaluation summary ({exc}); run `grace eval` again") from None


def _expected_label(q: EvalQuestion) -> str:
    if q.window is not None:
        return f"{q.source} @ {q.window[0]:.1f}-{q.window[1]:.1f} s"
    if q.page is not None:
        return f"{q.source}, p. {q.page}"
    if q.heading is not None:
        return f"{q.source} § {q.heading}"
    assert q.lines is not None
    return f"{q.source}, lines {q.lines[0]}-{q.lines[1]}"


def _is_media(name: str) -> bool:
    from grace_pipelines.ingest.media import kind_of

    return kind_of(name) in ("audio", "video")
