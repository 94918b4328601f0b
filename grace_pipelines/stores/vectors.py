"""LanceDB tables of chunks: vectors plus a blind full-text index, searched three ways.

No plaintext rests here: chunk text is stored AES-GCM encrypted (`text_enc`, under the
source's text key from the blob store) and the keyword index covers `keywords`, the keyed
hashes of the chunk's stems (grace_pipelines.text.keywords); keyword queries arrive hashed
the same way. Vectors are stored as they are (a documented trade-off).

Rows have deterministic ids `{source_key}:{chunk_index}` and are written with a merge-insert
that also deletes the source's surplus rows, so re-materializing a source replaces its chunks
and never duplicates them. Search is vector (cosine), keyword (LanceDB's native BM25
full-text index, stemmed) or hybrid (both, fused: see grace_pipelines.search.fusion).

One table per embedding model and vector size (`table_name_for`): the default MiniLM writes
`chunks`, another model `chunks__<model>__<dim>d`. Switching models re-embeds into the new
table; a search reads only the current model's table, so vectors of two models never meet in
one ranking. A purge removes a source from every table, old models' included.

`ChunkIndex` is the index itself, with no Dagster in it: the `VectorStore` resource
(grace_pipelines.resources.vector_store) delegates to it, and the Python API and bench/ can use
it directly. Measured with LanceDB 0.40 at 100,000 x 384-d (STACK_NOTES.md): flat search
260 ms median, so from `ann_min_rows` rows an IVF_HNSW_SQ index (cosine; recall 0.91, 7.5 ms);
the native full-text index answers in about 5 ms, hybrid in about 17 ms.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from grace_pipelines.search.fusion import BM25_HALF, KEYWORD_WEIGHT, Candidate, cosine, fuse_convex, fuse_rrf

TABLE = "chunks"  # the default model's table; others get their own (table_name_for)
MODES = ("hybrid", "vector", "keyword")
SENTENCES_COLUMN = "sentences_enc"
FUSIONS = ("convex", "rrf")
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
            pa.field("sentences_enc", pa.binary()),  # sealed float16 vectors of its pieces (search/sentences.py)
            pa.field("model", pa.string()),
            pa.field("model_version", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dim)),
        ]
    )


def table_name_for(model_name: str, dim: int, default_model: str | None = None) -> str:
    """The table a model's vectors live in: `chunks` for the default model, otherwise
    `chunks__<model>__<dim>d` (model name reduced to letters, digits and underscores)."""
    if default_model is not None and model_name == default_model:
        return TABLE
    slug = re.sub(r"[^0-9a-z]+", "_", model_name.lower()).strip("_") or "model"
    return f"{TABLE}__{slug}__{dim}d"


# Both process-wide and cached, not locked: a race builds a second connection or pool once,
# which is harmless (a LanceDB connection is a cheap handle on the folder; the spare pool's
# threads are created only on submit and end with it).
@functools.cache
def connect(uri: str) -> Any:
    """One LanceDB connection per URI per process."""
    import lancedb

    return lancedb.connect(uri)


@functools.cache
def search_pool() -> ThreadPoolExecutor:
    """The threads that run hybrid search's vector half beside its keyword half."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="grace-search")


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise VectorStoreError(f"invalid source key {key!r}")
    return key


def keys_filter(keys: Collection[str], universe: Collection[str] | None = None) -> str | None:
    """A prefilter restricting a search to `keys` (validated source keys): `source_key IN (...)`,
    or, when `universe` (every key there is) is given and the complement is smaller, `NOT IN`
    the complement; None when that restricts nothing. An IN list costs per key (measured at 50,000
    rows: 1,000 keys +12 ms, 5,000 keys +80 ms on a vector search), so the shorter list is used."""
    wanted = sorted({_check_key(k) for k in keys})
    if universe is not None:
        rest = sorted(set(universe) - set(wanted))
        if not rest:
            return None
        if len(rest) < len(wanted):
            return "source_key NOT IN (" + ", ".join(f"'{_check_key(k)}'" for k in rest) + ")"
    if not wanted:
        return "false"
    return "source_key IN (" + ", ".join(f"'{k}'" for k in wanted) + ")"


@dataclass(frozen=True)
class ChunkIndex:
    """The LanceDB database under GRACE_HOME/lancedb (or any LanceDB URI)."""

    uri: str  # LanceDB URI (a local folder by default)
    table_name: str = TABLE  # the current embedding model's table (table_name_for)
    fusion: str = "convex"  # hybrid fusion: convex (cosine + keyword bonus) or rrf
    keyword_weight: float = KEYWORD_WEIGHT  # weight of the keyword bonus in hybrid scores
    bm25_half: float = BM25_HALF  # BM25 score at which the keyword bonus is half its weight
    # fold new rows into the full-text index (and compact) once this many are unindexed;
    # unindexed rows are still searched, but by a slow flat scan
    optimize_unindexed_rows: int = 2_000
    ann_min_rows: int = 50_000  # build the approximate vector index from this many rows
    ann_ef: int = 200  # HNSW search breadth (recall vs speed)
    ann_refine_factor: int = 5  # re-rank this many times k candidates with exact vectors

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
                table.create_index(
                    "vector",
                    config=IvfHnswSq(distance_type="cosine", num_partitions=max(1, rows // 50_000)),
                    replace=True,
                )
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
        return connect(self.uri)

    def table(self, name: str | None = None) -> Any | None:
        db = self._db()
        try:
            return db.open_table(name or self.table_name)
        except (FileNotFoundError, ValueError):
            return None

    def chunk_tables(self) -> list[str]:
        """Every chunks table in the database: the current model's and older models'."""
        names: list[str] = []
        token = None
        while True:  # list_tables pages (table_names() is deprecated)
            page = self._db().list_tables(page_token=token, limit=1000)
            names += page.tables
            token = page.page_token
            if not token:
                break
        return sorted(n for n in names if n == TABLE or n.startswith(f"{TABLE}__"))

    def _table_for(self, dim: int) -> Any:
        table = self.table()
        if table is None:
            try:
                table = self._db().create_table(self.table_name, schema=chunks_schema(dim))
            except (ValueError, OSError):  # created concurrently
                table = self._db().open_table(self.table_name)
        if SENTENCES_COLUMN not in table.schema.names:
            table = self._add_sentences_column(table)
        existing = table.schema.field("vector").type.list_size
        if existing != dim:
            raise VectorStoreError(
                f"table {self.table_name!r} holds {existing}-d vectors but the embedder gives {dim}-d; "
                "each model needs its own table (table_name_for)"
            )
        return table

    def _add_sentences_column(self, table: Any) -> Any:
        """A table written before sentence vectors (December 2026) gets the column, all null:
        its rows keep working (search embeds their sentences per query) until re-embedded."""
        try:
            table.add_columns(pa.field(SENTENCES_COLUMN, pa.binary()))
        except Exception:  # noqa: BLE001 - another process added it first; reopen and check
            pass
        table = self._db().open_table(self.table_name)
        if SENTENCES_COLUMN not in table.schema.names:
            raise VectorStoreError(f"table {self.table_name!r} could not get its {SENTENCES_COLUMN} column")
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

    def upsert_sources(self, rows_by_source: dict[str, list[dict[str, Any]]], dim: int) -> int:
        """`upsert_source` for many sources in ONE merge (a batch run): a merge scans the table,
        so one per batch instead of one per source is what keeps tiny batches cheap at scale."""
        for key in rows_by_source:
            _check_key(key)
        if not rows_by_source:
            return 0
        table = self._table_for(dim)
        rows = [r for group in rows_by_source.values() for r in group]
        keys = ", ".join(f"'{k}'" for k in rows_by_source)
        if rows:
            (
                table.merge_insert("id")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .when_not_matched_by_source_delete(f"source_key IN ({keys})")
                .execute(pa.Table.from_pylist(rows, schema=chunks_schema(dim)))
            )
        else:
            table.delete(f"source_key IN ({keys})")
        self._ensure_fts(table)
        return len(rows)

    def purge_source(self, source_key: str) -> dict[str, int]:
        """Delete a source's rows from every chunks table (older models' too) so the bytes are
        gone from disk, not only hidden: delete, then compact and remove every older table
        version (their files held the rows).

        Compaction and version cleanup run on every table whatever the current rows say: a
        purge killed after LanceDB's delete committed leaves no current rows, yet the deleted
        rows still sit in the data files of older versions (and, until compaction, of the current
        one behind a deletion file). A re-run must finish that, not skip it (found by kill -9
        trials: 3 of 5 left vectors, blind tokens and titles on disk)."""
        from datetime import timedelta

        _check_key(source_key)
        rows = versions_removed = 0
        for name in self.chunk_tables():
            table = self.table(name)
            if table is None:
                continue
            found = table.count_rows(f"source_key = '{source_key}'")
            rows += found
            versions_before = len(table.list_versions())
            if found:
                table.delete(f"source_key = '{source_key}'")
            # delete_unverified: also files of versions younger than 7 days (ours, just written);
            # callers serialise writers through the "index_writer" pool.
            with warnings.catch_warnings():  # we mean it: no older version may keep the purged rows
                warnings.filterwarnings("ignore", message=r"optimize\(cleanup_older_than=0\)")
                table.optimize(cleanup_older_than=timedelta(0), delete_unverified=True)
            versions_removed += max(0, versions_before + (2 if found else 1) - len(table.list_versions()))
        return {"rows": rows, "versions_removed": versions_removed}

    def temp_files(self) -> list[str]:
        """Temporary files LanceDB left in the database folder (a writer killed mid-commit
        leaves `_versions/.tmp*` and `*.tmp` parts), relative to the folder."""
        from pathlib import Path

        root = Path(self.uri)
        if not root.is_dir():
            return []
        found = [p for p in root.rglob("*") if p.is_file() and (p.name.startswith(".tmp") or p.name.endswith(".tmp"))]
        return sorted(str(p.relative_to(root)) for p in found)

    def remove_temp_files(self, older_than_s: float = 0.0) -> list[str]:
        """Remove LanceDB's leftover temporary files. Only call it when no writer can be active
        (no live run holds the `index_writer` pool) or with an age that no commit takes."""
        import time
        from pathlib import Path

        root, removed = Path(self.uri), []
        for rel in self.temp_files():
            path = root / rel
            try:
                if time.time() - path.stat().st_mtime >= older_than_s:
                    path.unlink()
                    removed.append(rel)
            except FileNotFoundError:
                continue
        return removed

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
                    base_tokenizer="whitespace",
                    lower_case=False,
                    stem=False,
                    remove_stop_words=False,
                    ascii_folding=False,
                    with_position=False,
                ),
                replace=True,
            )
            return
        stats = table.index_stats("keywords_idx")
        if stats is not None and (stats.num_unindexed_rows or 0) >= self.optimize_unindexed_rows:
            table.optimize()

    # ---- search --------------------------------------------------------------------------
    def search(
        self,
        query_tokens: str,
        vector: np.ndarray | None,
        k: int = 5,
        mode: str = "hybrid",
        candidates: int = 20,
        where: str | None = None,
    ) -> list[Candidate]:
        """Top `k` rows of the current model's table; `query_tokens` are the query's blind
        keyword tokens. Each result carries its cosine and BM25 evidence for re-ranking.
        `where` (from `keys_filter`) is applied before ranking (a prefilter), so k stays k."""
        if mode not in MODES:
            raise VectorStoreError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        table = self.table()
        if table is None or k <= 0:
            return []
        if mode == "vector":
            return self._vector(table, vector, k, self.ann_ef, self.ann_refine_factor, where=where)
        if mode == "keyword":
            return self._keyword(table, query_tokens, k, where=where)
        if vector is None:
            raise VectorStoreError("hybrid search needs a query vector")
        pool = max(candidates, k)
        # the two halves run at once (LanceDB releases the GIL). Measured at 1M rows on 2 busy
        # cores this gains little (LanceDB already uses both); 20 candidates instead of 50 took
        # hybrid p50 61 -> 41 ms, p99 85 -> 75 ms (bench/search_scale.py)
        # hybrid's vector half is a candidate pool, re-scored exactly from the rows' own vectors:
        # no LanceDB refine pass (it read refine x pool vectors more; see bench/search_scale.py)
        vector_future = search_pool().submit(self._vector, table, vector, pool, self.ann_ef, None, where=where)
        keyword_hits = self._keyword(table, query_tokens, pool, where=where)
        vector_hits = vector_future.result()
        if self.fusion == "rrf":
            return fuse_rrf([vector_hits, keyword_hits], k)
        if self.fusion != "convex":
            raise VectorStoreError(f"unknown fusion {self.fusion!r}; use one of {', '.join(FUSIONS)}")
        query = np.asarray(vector, dtype=np.float32)
        return fuse_convex(
            vector_hits, keyword_hits, query / (np.linalg.norm(query) or 1.0), k, self.keyword_weight, self.bm25_half
        )

    @staticmethod
    def _vector(
        table: Any, vector: np.ndarray | None, k: int, ef: int = 200, refine: int | None = 5, where: str | None = None
    ) -> list[Candidate]:
        """Cosine top-k: exact without a vector index; with one, HNSW breadth `ef` and an exact
        re-rank of `refine` x k candidates in LanceDB (both ignored by exact search). Without
        `refine` (hybrid's candidate pool) the rows' own vectors give the exact cosines here."""
        if vector is None:
            raise VectorStoreError("vector search needs a query vector")
        query = table.search(np.asarray(vector, dtype=np.float32), vector_column_name="vector").distance_type("cosine")
        query = query.ef(max(ef, k * (refine or 1)))  # HNSW must look at least at every candidate it returns
        if refine:
            query = query.refine_factor(refine)
        if where:
            query = query.where(where, prefilter=True)
        rows = query.limit(k).to_list()
        q = np.asarray(vector, dtype=np.float32)
        q = q / (np.linalg.norm(q) or 1.0)
        out = []
        for row in rows:
            distance = float(row.pop("_distance"))
            stored = row.get("vector")
            similarity = cosine(stored, q) if (not refine and stored is not None) else 1.0 - distance
            out.append(Candidate(row, cosine=similarity, score=similarity))
        if not refine:
            out.sort(key=lambda c: c.score, reverse=True)
        return out

    @staticmethod
    def _keyword(table: Any, tokens: str, k: int, where: str | None = None) -> list[Candidate]:
        """`tokens`: the query's blind tokens (space-separated hex), never plain words."""
        terms = " ".join(t for t in tokens.split() if re.fullmatch(r"[0-9a-f]{16}", t))
        if not terms:
            return []
        query = table.search(terms, query_type="fts", fts_columns="keywords")
        if where:
            query = query.where(where, prefilter=True)
        rows = query.limit(k).to_list()
        out = []
        for row in rows:
            bm25 = float(row.pop("_score"))
            out.append(Candidate(row, bm25=bm25, score=bm25))
        return out
