"""LanceDB table `chunks`: vectors plus a blind full-text index, searched three ways.

No plaintext rests here: chunk text is stored AES-GCM encrypted (`text_enc`, under the
source's text key from the blob store) and the keyword index covers `keywords`, the keyed
hashes of the chunk's stems (grace_pipelines.text.keywords); keyword queries arrive hashed
the same way. Vectors are stored as they are (a documented trade-off).

Rows have deterministic ids `{source_key}:{chunk_index}` and are written with a merge-insert
that also deletes the source's surplus rows, so re-materializing a source replaces its chunks
and never duplicates them. Search is vector (cosine), keyword (LanceDB's native BM25
full-text index, stemmed) or hybrid (both, fused by reciprocal rank).
"""

from __future__ import annotations

import re
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
from pydantic import Field

TABLE = "chunks"
MODES = ("hybrid", "vector", "keyword")
RRF_K = 60
_KEY_RE = re.compile(r"^[0-9a-f]{16}$")


class VectorStoreError(RuntimeError):
    """The vector store cannot do what was asked; the message says why."""


def chunks_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("source_key", pa.string(), nullable=False),
            pa.field("chunk_index", pa.int32(), nullable=False),
            pa.field("text_enc", pa.binary()),  # nonce || AES-GCM(text), per-source text key
            pa.field("keywords", pa.string()),  # space-joined HMAC tokens of the stems
            pa.field("title", pa.string()),
            pa.field("kind", pa.string()),
            pa.field("start_s", pa.float64()),
            pa.field("end_s", pa.float64()),
            pa.field("line_start", pa.int32()),
            pa.field("line_end", pa.int32()),
            pa.field("page", pa.int32()),
            pa.field("heading_enc", pa.binary()),  # the section heading, sealed like the text
            pa.field("moments", pa.string()),  # JSON [[from, to, start_s, end_s], ...] per sentence
            pa.field("model", pa.string()),
            pa.field("model_version", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dim)),
        ]
    )


@dataclass
class Hit:
    row: dict[str, Any]
    score: float


_OPEN: dict[str, Any] = {}
_OPEN_LOCK = threading.Lock()


def _connect(uri: str) -> Any:
    import lancedb

    with _OPEN_LOCK:
        if uri not in _OPEN:
            _OPEN[uri] = lancedb.connect(uri)
        return _OPEN[uri]


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise VectorStoreError(f"invalid source key {key!r}")
    return key


class VectorStore(dg.ConfigurableResource):
    """The LanceDB database under GRACE_HOME/lancedb (or any LanceDB URI)."""

    uri: str = Field(description="LanceDB URI (a local folder by default)")
    optimize_unindexed_rows: int = Field(
        2_000,
        description="Fold new rows into the full-text index (and compact) once this many are unindexed; "
        "unindexed rows are still searched, but by a slow flat scan.",
    )

    ann_min_rows: int = Field(50_000, description="Build the approximate vector index from this many rows")
    ann_ef: int = Field(200, description="HNSW search breadth (recall vs speed)")
    ann_refine_factor: int = Field(5, description="Re-rank this many times k candidates with exact vectors")

    def maintain(self) -> dict[str, Any]:
        """Off-peak upkeep: compact and fold new rows into the indices; build (or rebuild) the
        IVF_HNSW_SQ vector index once the table reaches `ann_min_rows` (below that, exact
        search is fast enough and exact)."""
        import time

        from lancedb.index import IvfHnswSq

        table = self.table()
        if table is None:
            return {"rows": 0, "vector_index": "none", "optimize_s": 0.0, "index_build_s": 0.0}
        started = time.perf_counter()
        table.optimize()
        optimize_s = time.perf_counter() - started
        rows = table.count_rows()
        names = {ix.name: ix for ix in table.list_indices()}
        build_s = 0.0
        if rows >= self.ann_min_rows:
            stats = table.index_stats("vector_idx") if "vector_idx" in names else None
            unindexed = (stats.num_unindexed_rows or 0) if stats else rows
            if stats is None or unindexed > rows // 10:  # fresh, or >10% of rows outside it
                started = time.perf_counter()
                table.create_index("vector", config=IvfHnswSq(distance_type="cosine", num_partitions=max(1, rows // 50_000)), replace=True)
                build_s = time.perf_counter() - started
        final = {ix.name for ix in table.list_indices()}
        return {
            "rows": rows,
            "vector_index": "IVF_HNSW_SQ" if "vector_idx" in final else "none (exact search)",
            "optimize_s": round(optimize_s, 3),
            "index_build_s": round(build_s, 3),
            "versions": len(table.list_versions()),
        }

    def _db(self) -> Any:
        return _connect(self.uri)

    def table(self) -> Any | None:
        db = self._db()
        try:
            return db.open_table(TABLE)
        except (FileNotFoundError, ValueError):
            return None

    def _table_for(self, dim: int) -> Any:
        table = self.table()
        if table is None:
            try:
                table = self._db().create_table(TABLE, schema=chunks_schema(dim))
            except (ValueError, OSError):  # created concurrently
                table = self._db().open_table(TABLE)
        existing = table.schema.field("vector").type.list_size
        if existing != dim:
            raise VectorStoreError(
                f"table {TABLE!r} holds {existing}-d vectors but the embedder gives {dim}-d; "
                "re-embed into a new table before mixing models"
            )
        return table

    def count(self, source_key: str | None = None) -> int:
        table = self.table()
        if table is None:
            return 0
        return table.count_rows(f"source_key = '{_check_key(source_key)}'" if source_key else None)

    def upsert_source(self, source_key: str, rows: list[dict[str, Any]], dim: int) -> int:
        """Replace every row of `source_key` with `rows`; returns rows written."""
        _check_key(source_key)
        table = self._table_for(dim)
        if rows:
            data = pa.Table.from_pylist(rows, schema=chunks_schema(dim))
            (
                table.merge_insert("id")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .when_not_matched_by_source_delete(f"source_key = '{source_key}'")
                .execute(data)
            )
        else:
            table.delete(f"source_key = '{source_key}'")
        self._ensure_fts(table)
        return len(rows)

    def purge_source(self, source_key: str) -> dict[str, int]:
        """Delete a source's rows so the bytes are gone from disk, not only hidden: delete,
        then compact and remove every older table version (their files held the rows)."""
        from datetime import timedelta

        table = self.table()
        if table is None:
            return {"rows": 0, "versions_removed": 0}
        rows = self.count(source_key)
        versions_before = len(table.list_versions())
        table.delete(f"source_key = '{_check_key(source_key)}'")
        # delete_unverified: also files of versions younger than 7 days (ours, just written);
        # callers serialise writers through the "index_writer" pool.
        with warnings.catch_warnings():  # we mean it: no older version may keep the purged rows
            warnings.filterwarnings("ignore", message=r"optimize\(cleanup_older_than=0\)")
            table.optimize(cleanup_older_than=timedelta(0), delete_unverified=True)
        versions_after = len(table.list_versions())
        return {"rows": rows, "versions_removed": max(0, versions_before + 2 - versions_after)}

    def delete_source(self, source_key: str) -> int:
        table = self.table()
        if table is None:
            return 0
        before = self.count(source_key)
        table.delete(f"source_key = '{_check_key(source_key)}'")
        return before

    def _ensure_fts(self, table: Any) -> None:
        """Create the BM25 index on first use; later, `optimize()` folds new rows into it
        incrementally and compacts the small fragments each upsert leaves."""
        from lancedb.index import FTS

        if "keywords_idx" not in [ix.name for ix in table.list_indices()]:
            table.create_index(
                "keywords",
                config=FTS(
                    base_tokenizer="whitespace", lower_case=False, stem=False, remove_stop_words=False,
                    ascii_folding=False, with_position=False,
                ),
                replace=True,
            )
            return
        stats = table.index_stats("keywords_idx")
        if stats is not None and (stats.num_unindexed_rows or 0) >= self.optimize_unindexed_rows:
            table.optimize()

    # ---- search --------------------------------------------------------------------------
    def search(
        self, query_tokens: str, vector: np.ndarray | None, k: int = 5, mode: str = "hybrid",
        candidates: int = 50,
    ) -> list[Hit]:
        """Top `k` rows; `query_tokens` are the query's blind keyword tokens."""
        if mode not in MODES:
            raise VectorStoreError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        table = self.table()
        if table is None or k <= 0:
            return []
        if mode == "vector":
            return self._vector(table, vector, k, self.ann_ef, self.ann_refine_factor)
        if mode == "keyword":
            return self._keyword(table, query_tokens, k)
        pool = max(candidates, k)
        return fuse_rrf(
            [self._vector(table, vector, pool, self.ann_ef, self.ann_refine_factor), self._keyword(table, query_tokens, pool)], k
        )

    @staticmethod
    def _vector(table: Any, vector: np.ndarray | None, k: int, ef: int = 200, refine: int = 5) -> list[Hit]:
        """Cosine top-k: exact without a vector index; with one, HNSW breadth `ef` and an exact
        re-rank of `refine` x k candidates (both ignored by exact search)."""
        if vector is None:
            raise VectorStoreError("vector search needs a query vector")
        rows = (
            table.search(np.asarray(vector, dtype=np.float32), vector_column_name="vector")
            .distance_type("cosine")
            .ef(max(ef, k * refine))  # HNSW must look at least at every candidate it re-ranks
            .refine_factor(refine)
            .limit(k)
            .to_list()
        )
        return [Hit(row, 1.0 - float(row.pop("_distance"))) for row in rows]

    @staticmethod
    def _keyword(table: Any, tokens: str, k: int) -> list[Hit]:
        """`tokens`: the query's blind tokens (space-separated hex), never plain words."""
        terms = " ".join(t for t in tokens.split() if re.fullmatch(r"[0-9a-f]{16}", t))
        if not terms:
            return []
        rows = table.search(terms, query_type="fts", fts_columns="keywords").limit(k).to_list()
        return [Hit(row, float(row.pop("_score"))) for row in rows]


def fuse_rrf(rankings: list[list[Hit]], k: int, rrf_k: int = RRF_K) -> list[Hit]:
    """Reciprocal rank fusion: score = sum over rankings of 1 / (rrf_k + rank); equal scores
    (1st + 2nd vs 2nd + 1st) go to the hit whose raw scores are stronger relative to the best."""
    scores: dict[str, float] = {}
    strength: dict[str, float] = {}  # tie-break: each ranking's score relative to its best
    rows: dict[str, dict[str, Any]] = {}
    for ranking in rankings:
        top = max((abs(h.score) for h in ranking), default=0.0) or 1.0
        for rank, hit in enumerate(ranking, start=1):
            key = hit.row["id"]
            scores[key] = scores.get(key, 0.0) + 1.0 / (rrf_k + rank)
            strength[key] = strength.get(key, 0.0) + hit.score / top
            rows.setdefault(key, hit.row)
    best = sorted(scores, key=lambda key: (round(scores[key], 12), strength[key]), reverse=True)[:k]
    return [Hit(rows[key], scores[key]) for key in best]
