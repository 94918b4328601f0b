"""The chunk index as a Dagster resource: LanceDB tables of sealed chunks, vectors and blind keywords.

The index itself (one table per embedding model, merge-insert upserts, purges that leave no
old versions, vector / keyword / hybrid search) is the plain class
`grace_pipelines.stores.vectors.ChunkIndex`; this resource holds its configuration and
delegates every method to it, so assets keep calling `vector_store.search(...)` and the Python
API can use the plain class. The names below are re-exported from there for older imports.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import numpy as np
from pydantic import Field, PrivateAttr

from grace_pipelines.search.fusion import BM25_HALF, KEYWORD_WEIGHT, Candidate
from grace_pipelines.stores.vectors import (
    FUSIONS,
    MODES,
    TABLE,
    ChunkIndex,
    VectorStoreError,
    chunks_schema,
    connect,
    search_pool,
    table_name_for,
)

__all__ = [
    "FUSIONS",
    "MODES",
    "TABLE",
    "ChunkIndex",
    "VectorStore",
    "VectorStoreError",
    "chunks_schema",
    "connect",
    "search_pool",
    "table_name_for",
]


class VectorStore(dg.ConfigurableResource):
    """The LanceDB database under GRACE_HOME/lancedb (or any LanceDB URI)."""

    uri: str = Field(description="LanceDB URI (a local folder by default)")
    table_name: str = Field(TABLE, description="The current embedding model's table (table_name_for)")
    fusion: str = Field("convex", description="Hybrid fusion: convex (cosine + keyword bonus) or rrf")
    keyword_weight: float = Field(KEYWORD_WEIGHT, ge=0, description="Weight of the keyword bonus in hybrid scores")
    bm25_half: float = Field(BM25_HALF, gt=0, description="BM25 score at which the keyword bonus is half its weight")
    optimize_unindexed_rows: int = Field(
        2_000,
        description="Fold new rows into the full-text index (and compact) once this many are unindexed; "
        "unindexed rows are still searched, but by a slow flat scan.",
    )

    ann_min_rows: int = Field(50_000, description="Build the approximate vector index from this many rows")
    ann_ef: int = Field(200, description="HNSW search breadth (recall vs speed)")
    ann_refine_factor: int = Field(5, description="Re-rank this many times k candidates with exact vectors")

    _client: ChunkIndex | None = PrivateAttr(default=None)

    def client(self) -> ChunkIndex:
        if self._client is None:
            self._client = ChunkIndex(
                uri=self.uri,
                table_name=self.table_name,
                fusion=self.fusion,
                keyword_weight=self.keyword_weight,
                bm25_half=self.bm25_half,
                optimize_unindexed_rows=self.optimize_unindexed_rows,
                ann_min_rows=self.ann_min_rows,
                ann_ef=self.ann_ef,
                ann_refine_factor=self.ann_refine_factor,
            )
        return self._client

    # ---- upkeep ----------------------------------------------------------------------------
    def maintain(self) -> dict[str, Any]:
        """Off-peak upkeep: compaction, index fold-in, the vector index from `ann_min_rows`."""
        return self.client().maintain()

    def temp_files(self) -> list[str]:
        return self.client().temp_files()

    def remove_temp_files(self, older_than_s: float = 0.0) -> list[str]:
        return self.client().remove_temp_files(older_than_s)

    # ---- tables ----------------------------------------------------------------------------
    def _db(self) -> Any:
        return self.client()._db()

    def table(self, name: str | None = None) -> Any | None:
        return self.client().table(name)

    def chunk_tables(self) -> list[str]:
        return self.client().chunk_tables()

    def _table_for(self, dim: int) -> Any:
        return self.client()._table_for(dim)

    def _ensure_fts(self, table: Any) -> None:
        self.client()._ensure_fts(table)

    # ---- rows ------------------------------------------------------------------------------
    def count(self, source_key: str | None = None) -> int:
        return self.client().count(source_key)

    def upsert_source(self, source_key: str, rows: list[dict[str, Any]], dim: int) -> int:
        """Replace every row of `source_key` with `rows`; returns rows written."""
        return self.client().upsert_source(source_key, rows, dim)

    def upsert_sources(self, rows_by_source: dict[str, list[dict[str, Any]]], dim: int) -> int:
        """`upsert_source` for many sources in ONE merge (a batch run)."""
        return self.client().upsert_sources(rows_by_source, dim)

    def purge_source(self, source_key: str) -> dict[str, int]:
        """Delete a source's rows from every chunks table, with the old versions that held them."""
        return self.client().purge_source(source_key)

    def delete_source(self, source_key: str) -> int:
        return self.client().delete_source(source_key)

    # ---- search ----------------------------------------------------------------------------
    def search(
        self,
        query_tokens: str,
        vector: np.ndarray | None,
        k: int = 5,
        mode: str = "hybrid",
        candidates: int = 20,
    ) -> list[Candidate]:
        """Top `k` rows of the current model's table; `query_tokens` are the query's blind
        keyword tokens. Each result carries its cosine and BM25 evidence for re-ranking."""
        return self.client().search(query_tokens, vector, k=k, mode=mode, candidates=candidates)

    _vector = staticmethod(ChunkIndex._vector)  # hybrid's halves, timed apart by bench/search_scale.py
    _keyword = staticmethod(ChunkIndex._keyword)
