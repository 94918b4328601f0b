"""VectorStore on a real LanceDB folder: replace-on-upsert, three search modes, errors, tables per model.

Rows are stored as the embeddings asset writes them: text sealed (here a stand-in: the bytes
themselves; encryption is tested in tests/stores/test_at_rest.py) and keywords as blind tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grace_pipelines.resources.vector_store import (
    TABLE,
    VectorStore,
    VectorStoreError,
    table_name_for,
)
from grace_pipelines.text.keywords import blind_tokens

DIM = 8
KEY = b"test-index-key-0123456789abcdef!"


class BlindStore(VectorStore):
    """Hashes plain-word queries the way Grace.search does before they reach the store."""

    def search(self, query_tokens: str, vector, k: int = 5, mode: str = "hybrid", candidates: int = 50):  # type: ignore[override]
        return super().search(blind_tokens(KEY, query_tokens), vector, k=k, mode=mode, candidates=candidates)


A = "aaaaaaaaaaaaaaaa"
B = "0123456789abcdef"

A_TEXTS = [
    "Notes from several meetings about the database migration to Postgres",
    "Buy oat milk, coffee beans and fresh basil at the market",
    "The deadline for the quarterly report has moved to Friday",
]
B_TEXTS = [
    "Marco is worried about downtime during the switch over",
    "The dentist appointment is on Tuesday afternoon",
    "Priya will send the budget figures by Wednesday",
    "The insurance policy number is in the blue folder",
]


def unit_vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def make_rows(key: str, texts: list[str], vectors: np.ndarray) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{key}:{i}",
            "source_key": key,
            "chunk_index": i,
            "text_enc": text.encode(),
            "keywords": blind_tokens(KEY, text),
            "moments": "[]",
            "title": f"title {key}",
            "kind": "audio",
            "start_s": float(i),
            "end_s": float(i) + 0.5,
            "line_start": None,
            "line_end": None,
            "model": "test-model",
            "model_version": "1",
            "vector": vec.tolist(),
        }
        for i, (text, vec) in enumerate(zip(texts, vectors))
    ]


@pytest.fixture
def store(tmp_path: Path) -> VectorStore:
    return BlindStore(uri=str(tmp_path / "lancedb"))


@pytest.fixture
def filled(store: VectorStore) -> tuple[VectorStore, np.ndarray, np.ndarray]:
    va, vb = unit_vectors(len(A_TEXTS), 1), unit_vectors(len(B_TEXTS), 2)
    assert store.upsert_source(A, make_rows(A, A_TEXTS, va), DIM) == len(A_TEXTS)
    assert store.upsert_source(B, make_rows(B, B_TEXTS, vb), DIM) == len(B_TEXTS)
    return store, va, vb


def all_ids(store: VectorStore) -> list[str]:
    table = store.table()
    assert table is not None
    return sorted(table.to_arrow().column("id").to_pylist())


def test_empty_store(store: VectorStore) -> None:
    assert store.table() is None
    assert store.count() == 0
    assert store.count(A) == 0
    assert store.search("anything", unit_vectors(1, 0)[0], k=3, mode="hybrid") == []
    assert store.delete_source(A) == 0


def test_upsert_two_sources_and_count(filled: Any) -> None:
    store, _, _ = filled
    assert store.count() == len(A_TEXTS) + len(B_TEXTS)
    assert store.count(A) == len(A_TEXTS)
    assert store.count(B) == len(B_TEXTS)
    assert all_ids(store) == sorted([f"{A}:{i}" for i in range(3)] + [f"{B}:{i}" for i in range(4)])


def test_reupsert_with_fewer_rows_replaces_without_duplicates(filled: Any) -> None:
    store, _, vb = filled
    new_vectors = unit_vectors(2, 3)
    new_texts = ["Rewritten first chunk about the parallel run", "Rewritten second chunk about rollback"]
    # re-materialise B twice: idempotent, never duplicates
    for _ in range(2):
        assert store.upsert_source(B, make_rows(B, new_texts, new_vectors), DIM) == 2
        assert store.count(B) == 2
        assert store.count(A) == len(A_TEXTS)
        assert store.count() == len(A_TEXTS) + 2
    assert all_ids(store) == sorted([f"{A}:{i}" for i in range(3)] + [f"{B}:0", f"{B}:1"])
    # the rows carry the new content, and the dropped chunk is no longer searchable
    table = store.table()
    rows = {r["id"]: r for r in table.search().where(f"source_key = '{B}'").to_list()}
    assert rows[f"{B}:0"]["text_enc"].decode() == new_texts[0]
    np.testing.assert_allclose(rows[f"{B}:1"]["vector"], new_vectors[1], atol=1e-6)
    assert store.search("dentist appointment", None, k=5, mode="keyword") == []
    # the surplus rows B:2 and B:3 are gone from vector search too
    for old in vb[2:]:
        ids = [h.row["id"] for h in store.search("x", old, k=10, mode="vector")]
        assert len(ids) == len(A_TEXTS) + 2
        assert f"{B}:2" not in ids and f"{B}:3" not in ids
    # and new words are findable right away
    hits = store.search("rollback", None, k=5, mode="keyword")
    assert [h.row["id"] for h in hits] == [f"{B}:1"]


def test_upsert_empty_rows_clears_source(filled: Any) -> None:
    store, _, _ = filled
    assert store.upsert_source(A, [], DIM) == 0
    assert store.count(A) == 0
    assert store.count(B) == len(B_TEXTS)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("meeting", f"{A}:0"),  # stored text says "meetings"
        ("migrations", f"{A}:0"),  # stored text says "migration"
        ("appointments", f"{B}:1"),
        ("figure", f"{B}:2"),
        ("Wednesday's budget?", f"{B}:2"),  # punctuation is stripped from the query
    ],
)
def test_keyword_search_is_stemmed(filled: Any, query: str, expected: str) -> None:
    store, _, _ = filled
    hits = store.search(query, None, k=5, mode="keyword")
    assert hits, f"no keyword hit for {query!r}"
    assert hits[0].row["id"] == expected
    assert hits[0].score > 0
    assert "_score" not in hits[0].row


def test_keyword_search_without_matches_or_terms(filled: Any) -> None:
    store, _, _ = filled
    assert store.search("xylophone", None, k=5, mode="keyword") == []
    assert store.search("?!", None, k=5, mode="keyword") == []  # no word characters at all


def test_vector_search_returns_identical_vector_first(filled: Any) -> None:
    store, va, vb = filled
    for key, vectors in ((A, va), (B, vb)):
        for i, vec in enumerate(vectors):
            hits = store.search("ignored", vec, k=3, mode="vector")
            assert len(hits) == 3
            assert hits[0].row["id"] == f"{key}:{i}"
            assert hits[0].score == pytest.approx(1.0, abs=1e-4)
            assert "_distance" not in hits[0].row
            scores = [h.score for h in hits]
            assert scores == sorted(scores, reverse=True)
            assert all(s < 1.0 - 1e-3 for s in scores[1:])


def test_vector_search_is_cosine_not_l2(filled: Any) -> None:
    store, va, _ = filled
    # a scaled query vector has the same cosine similarity
    hits = store.search("ignored", va[2] * 7.5, k=1, mode="vector")
    assert hits[0].row["id"] == f"{A}:2"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)


def test_vector_mode_needs_a_vector(filled: Any) -> None:
    store, _, _ = filled
    with pytest.raises(VectorStoreError, match="vector"):
        store.search("deadline", None, k=3, mode="vector")


def test_hybrid_ranks_row_top_in_both_first(filled: Any) -> None:
    store, _, vb = filled
    # keyword "budget figures" only matches B:2; its vector is the query vector
    hits = store.search("budget figures", vb[2], k=4, mode="hybrid")
    assert hits[0].row["id"] == f"{B}:2"
    assert hits[0].cosine == pytest.approx(1.0, abs=1e-5) and hits[0].bm25 > 0
    assert 1.0 < hits[0].score <= 1.05 + 1e-6, "cosine plus a keyword bonus of at most keyword_weight"
    assert len(hits) == 4
    assert all(h.score < hits[0].score for h in hits[1:])


def test_hybrid_keyword_evidence_is_a_bonus_not_a_takeover(filled: Any) -> None:
    store, va, _ = filled
    # vector points at A:1 (groceries); keyword points at B:0 (downtime). Convex fusion keeps the
    # exact semantic match first and lifts B:0 by its bonus; every row keeps its cosine evidence.
    hits = store.search("downtime", va[1], k=len(A_TEXTS) + len(B_TEXTS), mode="hybrid")
    by_id = {h.row["id"]: h for h in hits}
    assert hits[0].row["id"] == f"{A}:1" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    b0 = by_id[f"{B}:0"]
    assert b0.bm25 > 0 and 0 < b0.score - b0.cosine <= 0.05 + 1e-9
    assert all(h.bm25 is None and h.score == pytest.approx(h.cosine) for h in hits if h.row["id"] != f"{B}:0")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hybrid_rrf_fusion_still_available(tmp_path: Path, filled: Any) -> None:
    store, va, _ = filled
    rrf = BlindStore(uri=store.uri, fusion="rrf")
    hits = rrf.search("downtime", va[1], k=3, mode="hybrid")
    # B:0 is 1st by keyword and somewhere in the vector ranking: RRF puts it above A:1 (1st by vector only)
    assert [h.row["id"] for h in hits[:2]] == [f"{B}:0", f"{A}:1"]
    assert hits[1].score == pytest.approx(1 / 61)
    with pytest.raises(VectorStoreError, match="unknown fusion"):
        BlindStore(uri=store.uri, fusion="borda").search("downtime", va[1], k=3, mode="hybrid")


def test_k_limits_results(filled: Any) -> None:
    store, va, _ = filled
    assert len(store.search("the", va[0], k=2, mode="vector")) == 2
    assert store.search("budget", va[0], k=0, mode="hybrid") == []


@pytest.mark.parametrize("mode", ["semantic", "", "HYBRID", "bm25"])
def test_invalid_mode_raises(filled: Any, mode: str) -> None:
    store, va, _ = filled
    with pytest.raises(VectorStoreError, match="unknown search mode"):
        store.search("budget", va[0], k=3, mode=mode)


def test_invalid_mode_raises_even_on_empty_store(store: VectorStore) -> None:
    with pytest.raises(VectorStoreError):
        store.search("budget", None, k=3, mode="semantic")


@pytest.mark.parametrize("key", ["short", "A" * 16, "aaaaaaaaaaaaaaaa' OR '1'='1", "../aaaaaaaaaaaaaa", "g" * 16])
def test_invalid_source_key_raises(filled: Any, key: str) -> None:
    store, va, _ = filled
    with pytest.raises(VectorStoreError, match="invalid source key"):
        store.upsert_source(key, make_rows(key, ["text"], va[:1]), DIM)
    with pytest.raises(VectorStoreError, match="invalid source key"):
        store.count(key)
    with pytest.raises(VectorStoreError, match="invalid source key"):
        store.delete_source(key)
    assert store.count() == len(A_TEXTS) + len(B_TEXTS)


def test_invalid_source_key_raises_on_fresh_store(store: VectorStore) -> None:
    with pytest.raises(VectorStoreError, match="invalid source key"):
        store.upsert_source("not-a-key", [], DIM)
    assert store.table() is None


def test_dimension_mismatch_raises(filled: Any) -> None:
    store, _, _ = filled
    wide = np.ones((1, 16), dtype=np.float32) / 4.0
    rows = make_rows(A, ["sixteen dims"], wide)
    with pytest.raises(VectorStoreError) as info:
        store.upsert_source(A, rows, 16)
    message = str(info.value)
    assert "8" in message and "16" in message
    assert "8-d" in message and "16-d" in message
    # nothing was changed
    assert store.count(A) == len(A_TEXTS)


def test_table_name_per_model_and_dimension() -> None:
    assert table_name_for("all-MiniLM-L6-v2-int8-onnx", 384, default_model="all-MiniLM-L6-v2-int8-onnx") == TABLE
    assert table_name_for("text-embedding-3-small", 1536) == "chunks__text_embedding_3_small__1536d"
    assert table_name_for("text-embedding-3-small", 512) != table_name_for("text-embedding-3-small", 1536)
    assert table_name_for("../evil; DROP", 8) == "chunks__evil_drop__8d"


def test_each_model_has_its_own_table_and_purge_covers_all(filled: Any) -> None:
    store, va, _ = filled
    wide = BlindStore(uri=store.uri, table_name=table_name_for("other-model", 16))
    wide_vectors = np.ones((2, 16), dtype=np.float32) / 4.0
    assert wide.upsert_source(A, make_rows(A, A_TEXTS[:2], wide_vectors), 16) == 2
    assert store.chunk_tables() == sorted([TABLE, "chunks__other_model__16d"])
    # a search reads only its own model's table: no 8-d row meets a 16-d query or the reverse
    assert {h.row["source_key"] for h in store.search("x", va[0], k=10, mode="vector")} == {A, B}
    assert len(wide.search("x", wide_vectors[0], k=10, mode="vector")) == 2
    assert wide.count() == 2 and store.count() == len(A_TEXTS) + len(B_TEXTS)
    report = store.purge_source(A)
    assert report["rows"] == len(A_TEXTS) + 2, "the old model's rows are purged too"
    assert store.count(A) == 0 and wide.count(A) == 0 and store.count(B) == len(B_TEXTS)


def test_delete_source_removes_rows(filled: Any) -> None:
    store, va, _ = filled
    assert store.delete_source(A) == len(A_TEXTS)
    assert store.count(A) == 0
    assert store.count(B) == len(B_TEXTS)
    assert store.search("migration", None, k=5, mode="keyword") == []
    hits = store.search("x", va[0], k=10, mode="vector")
    assert hits and all(h.row["source_key"] == B for h in hits)
    assert store.delete_source(A) == 0


def test_reopened_store_sees_same_rows(filled: Any, tmp_path: Path) -> None:
    store, _, vb = filled
    again = VectorStore(uri=store.uri)
    assert again.count() == store.count()
    assert again.search("x", vb[3], k=1, mode="vector")[0].row["id"] == f"{B}:3"


def test_maintain_builds_the_vector_index_at_the_threshold_and_search_stays_right(tmp_path: Path) -> None:
    small = BlindStore(uri=str(tmp_path / "small"), ann_min_rows=1_000)
    big = BlindStore(uri=str(tmp_path / "big"), ann_min_rows=50)
    vectors = unit_vectors(60, 7)
    texts = [f"chunk number {i} about topic {i % 7}" for i in range(60)]
    for store in (small, big):
        for s in range(3):
            key = f"{s:016x}"
            store.upsert_source(key, make_rows(key, texts[s * 20 : (s + 1) * 20], vectors[s * 20 : (s + 1) * 20]), DIM)
    assert small.maintain()["vector_index"] == "none (exact search)"
    report = big.maintain()
    assert report["vector_index"] == "IVF_HNSW_SQ" and report["rows"] == 60
    assert "vector_idx" in {ix.name for ix in big.table().list_indices()}
    for i in (0, 25, 59):
        top = big.search("", vectors[i], k=1, mode="vector")[0]
        assert top.row["id"] == f"{i // 20:016x}:{i % 20}" and top.score > 0.99


def test_upsert_sources_merges_many_sources_at_once(filled: Any) -> None:
    store, va, vb = filled
    c = "cccccccccccccccc"
    before_versions = len(store.table().list_versions())
    written = store.upsert_sources(
        {A: make_rows(A, A_TEXTS[:1], va[:1]), c: make_rows(c, ["a new source"], vb[:1])}, DIM
    )
    assert written == 2
    versions = len(store.table().list_versions())
    assert versions <= before_versions + 2, "one merge (plus index upkeep), not one per source"
    assert store.count(A) == 1, "A's surplus rows are gone, as with upsert_source"
    assert store.count(c) == 1 and store.count(B) == len(B_TEXTS), "other sources untouched"
    assert store.upsert_sources({}, DIM) == 0
    with pytest.raises(VectorStoreError):
        store.upsert_sources({"not-a-key": []}, DIM)
