"""How search results are ordered: fusion of the vector and keyword halves, then a sentence
re-rank. Pure functions over scores; no LanceDB, no Dagster, so they are tuned and tested fast.

Tuned on the evaluation set in tests/eval (`grace eval`), where these choices measured best:

- **Convex fusion** beats reciprocal rank fusion: a hit's score is its cosine similarity plus a
  small, saturating bonus for keyword evidence, `keyword_weight * bm25 / (bm25 + bm25_half)`.
  RRF throws the scores away and lets a weak keyword match (one common word) outrank a strong
  semantic one; the bonus keeps exact terms (names, numbers, places) as a tie-breaker and a
  rescue for what the embedding missed, without letting them dominate.
- **Sentence re-rank** (`rerank`): a chunk holds several sentences and its vector is their
  blend, so a question matching one sentence scores low against the chunk. The top candidates
  are re-scored by `alpha * best sentence cosine + (1 - alpha) * chunk cosine + bonus`; the best
  sentence is also the moment a citation points at. This is the reranker Grace ships: no
  cross-encoder model is published inside a PyPI package that runs offline (flashrank,
  fastembed, rerankers and others download from a model hub at run time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

KEYWORD_WEIGHT = 0.05
BM25_HALF = 5.0  # BM25 score at which the keyword bonus reaches half its weight
SENTENCE_ALPHA = 0.5
RERANK_DEPTH = 10
RRF_K = 60


@dataclass
class Candidate:
    """One chunk row with the evidence for it: cosine to the query and BM25 (None: absent)."""

    row: dict[str, Any]
    cosine: float | None = None
    bm25: float | None = None
    score: float = 0.0
    best_sentence: int | None = None  # index into the sentences scored by `rerank`

    @property
    def id(self) -> str:
        return str(self.row["id"])


def keyword_bonus(bm25: float | None, weight: float = KEYWORD_WEIGHT, half: float = BM25_HALF) -> float:
    if not bm25 or bm25 <= 0:
        return 0.0
    return weight * bm25 / (bm25 + half)


def cosine(vector: Any, query: np.ndarray) -> float | None:
    if vector is None:
        return None
    v = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    return float(v @ query) / norm if norm else None


def fuse_convex(
    vector_hits: Sequence[Candidate],
    keyword_hits: Sequence[Candidate],
    query_vector: np.ndarray,
    k: int,
    keyword_weight: float = KEYWORD_WEIGHT,
    bm25_half: float = BM25_HALF,
) -> list[Candidate]:
    """Union of both halves scored `cosine + keyword bonus`. A keyword-only hit gets its cosine
    from its stored vector, so both halves are compared on the same scale."""
    merged: dict[str, Candidate] = {}
    for hit in vector_hits:
        merged[hit.id] = Candidate(hit.row, cosine=hit.cosine)
    for hit in keyword_hits:
        found = merged.setdefault(hit.id, Candidate(hit.row))
        found.bm25 = hit.bm25
    for c in merged.values():
        if c.cosine is None:
            c.cosine = cosine(c.row.get("vector"), query_vector)
        c.score = (c.cosine if c.cosine is not None else -1.0) + keyword_bonus(c.bm25, keyword_weight, bm25_half)
    return sorted(merged.values(), key=lambda c: c.score, reverse=True)[:k]


def fuse_rrf(rankings: Sequence[Sequence[Candidate]], k: int, rrf_k: int = RRF_K) -> list[Candidate]:
    """Reciprocal rank fusion (kept for comparison: `search_fusion = "rrf"`): score = sum over
    rankings of 1 / (rrf_k + rank); equal scores go to the hit with the stronger raw evidence."""
    scores: dict[str, float] = {}
    strength: dict[str, float] = {}
    merged: dict[str, Candidate] = {}
    for ranking in rankings:
        raw = [(c.cosine if c.cosine is not None else c.bm25) or 0.0 for c in ranking]
        top = max((abs(s) for s in raw), default=0.0) or 1.0
        for rank, (c, value) in enumerate(zip(ranking, raw), start=1):
            scores[c.id] = scores.get(c.id, 0.0) + 1.0 / (rrf_k + rank)
            strength[c.id] = strength.get(c.id, 0.0) + value / top
            found = merged.setdefault(c.id, Candidate(c.row))
            found.cosine = c.cosine if c.cosine is not None else found.cosine
            found.bm25 = c.bm25 if c.bm25 is not None else found.bm25
    best = sorted(scores, key=lambda key: (round(scores[key], 12), strength[key]), reverse=True)[:k]
    for key in best:
        merged[key].score = scores[key]
    return [merged[key] for key in best]


def rerank(
    candidates: Sequence[Candidate],
    sentence_cosines: Sequence[Sequence[float]],
    alpha: float = SENTENCE_ALPHA,
    keyword_weight: float = KEYWORD_WEIGHT,
    bm25_half: float = BM25_HALF,
) -> list[Candidate]:
    """Re-score candidates by their best sentence: `alpha * max sentence cosine + (1 - alpha) *
    chunk cosine + keyword bonus`; records which sentence was best. `sentence_cosines[i]` are
    candidate i's sentences' cosines to the query (empty: the chunk cosine stands in)."""
    out: list[Candidate] = []
    for c, sims in zip(candidates, sentence_cosines, strict=True):
        chunk = c.cosine if c.cosine is not None else -1.0
        if len(sims):
            best = int(np.argmax(sims))
            c.best_sentence = best
            sentence = float(sims[best])
        else:
            sentence = chunk
        c.score = alpha * sentence + (1 - alpha) * chunk + keyword_bonus(c.bm25, keyword_weight, bm25_half)
        out.append(c)
    return sorted(out, key=lambda c: c.score, reverse=True)
