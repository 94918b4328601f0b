"""Ranking policy: convex fusion, reciprocal rank fusion and the sentence re-rank (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from grace_pipelines.search.fusion import Candidate, fuse_convex, fuse_rrf, keyword_bonus, rerank


def _vec(*ids_and_cos: tuple[str, float]) -> list[Candidate]:
    return [Candidate({"id": i}, cosine=c, score=c) for i, c in ids_and_cos]


def _kw(*ids_and_bm25: tuple[str, float]) -> list[Candidate]:
    return [Candidate({"id": i}, bm25=b, score=b) for i, b in ids_and_bm25]


def test_keyword_bonus_saturates_and_is_zero_without_evidence() -> None:
    assert keyword_bonus(None) == 0.0 and keyword_bonus(0.0) == 0.0
    assert keyword_bonus(5.0, weight=0.1, half=5.0) == pytest.approx(0.05)
    assert keyword_bonus(1e9, weight=0.1) < 0.1
    assert keyword_bonus(2.0) < keyword_bonus(4.0)


def test_fuse_convex_adds_a_bounded_bonus_and_reads_cosine_of_keyword_only_hits() -> None:
    query = np.array([1.0, 0.0], dtype=np.float32)
    keyword_only = Candidate({"id": "k", "vector": [0.6, 0.8]}, bm25=12.0)
    fused = fuse_convex(_vec(("a", 0.9), ("b", 0.7)), [Candidate({"id": "b"}, bm25=3.0), keyword_only], query, k=10)
    by_id = {c.id: c for c in fused}
    assert [c.id for c in fused] == ["a", "b", "k"]
    assert by_id["a"].score == pytest.approx(0.9)
    assert by_id["b"].score == pytest.approx(0.7 + keyword_bonus(3.0))
    assert by_id["k"].cosine == pytest.approx(0.6) and by_id["k"].score == pytest.approx(0.6 + keyword_bonus(12.0))


def test_fuse_convex_lets_keywords_break_a_near_tie_only() -> None:
    query = np.array([1.0, 0.0], dtype=np.float32)
    fused = fuse_convex(_vec(("a", 0.80), ("b", 0.79), ("c", 0.50)), _kw(("b", 8.0), ("c", 30.0)), query, k=3)
    assert [c.id for c in fused] == ["b", "a", "c"], (
        "a strong keyword match cannot lift a weak semantic one past a strong one"
    )
    assert fuse_convex([], [], query, k=5) == []
    assert len(fuse_convex(_vec(("a", 0.8), ("b", 0.7)), [], query, k=1)) == 1


def test_fuse_rrf_scores_and_order() -> None:
    fused = fuse_rrf([_vec(("a", 0.9), ("b", 0.8), ("c", 0.7)), _kw(("c", 3.0), ("a", 2.0), ("d", 1.0))], k=10)
    scores = {c.id: c.score for c in fused}
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62) and scores["d"] == pytest.approx(1 / 63)
    assert [c.id for c in fused] == ["a", "c", "b", "d"]
    assert {c.id: (c.cosine, c.bm25) for c in fused}["c"] == (0.7, 3.0), "both halves' evidence is kept"


def test_fuse_rrf_edges() -> None:
    fused = fuse_rrf([_vec(("x", 0.9), ("y", 0.8), ("z", 0.7))], k=2, rrf_k=0)
    assert [c.score for c in fused] == pytest.approx([1.0, 0.5])
    assert fuse_rrf([], k=5) == [] and fuse_rrf([[], []], k=5) == [] and fuse_rrf([_vec(("a", 0.5))], k=0) == []


def test_rerank_prefers_the_chunk_with_the_best_sentence_and_records_it() -> None:
    diluted = Candidate({"id": "diluted"}, cosine=0.55)  # one sentence answers, the rest is other talk
    uniform = Candidate({"id": "uniform"}, cosine=0.60)  # every sentence half-relevant
    ranked = rerank([uniform, diluted], [[0.5, 0.52, 0.49], [0.2, 0.81, 0.1]], alpha=0.5)
    assert [c.id for c in ranked] == ["diluted", "uniform"]
    assert ranked[0].best_sentence == 1 and ranked[0].score == pytest.approx(0.5 * 0.81 + 0.5 * 0.55)
    assert ranked[1].best_sentence == 1


def test_rerank_without_sentences_uses_the_chunk_and_keeps_the_keyword_bonus() -> None:
    plain = Candidate({"id": "p"}, cosine=0.4, bm25=5.0)
    ranked = rerank([plain], [[]], alpha=0.7, keyword_weight=0.1, bm25_half=5.0)
    assert ranked[0].best_sentence is None and ranked[0].score == pytest.approx(0.4 + 0.05)
    with pytest.raises(ValueError):
        rerank([plain], [], alpha=0.5)  # one list of sentence scores per candidate
