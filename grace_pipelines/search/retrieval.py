"""Retrieval: the best passages for a query, with citations, from the LanceDB chunk index.

Hybrid by default (vector + keyed-hash keyword halves, fused; search/fusion.py), then the
candidates' sentences are scored against the query in one embedding batch: results are
re-ranked by their best sentence and a recording's window narrows to that sentence (measured
on tests/eval: see the settings' search-quality knobs). Only sources that still have index
consent are returned; chunk text is decrypted here, for the results shown, and nowhere else.
A damaged source is skipped with a warning, never failing the whole search.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from grace_pipelines.db.schema import Stage, utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.errors import GraceError
from grace_pipelines.governance.consent import missing_parties
from grace_pipelines.search import sentences
from grace_pipelines.search.citations import citation_for, speaker_name
from grace_pipelines.search.filters import SearchFilters, all_source_keys, allowed_keys, speaker_labels
from grace_pipelines.search.fusion import cosine
from grace_pipelines.search.fusion import rerank as rerank_by_sentences
from grace_pipelines.settings import GraceSettings
from grace_pipelines.stores.blobs import TEXT_KEY, BlobError, open_bytes, open_text
from grace_pipelines.stores.vectors import MODES, SENTENCES_COLUMN, keys_filter
from grace_pipelines.text.keywords import blind_tokens


@dataclass
class SearchResult:
    rank: int
    score: float
    source_key: str
    title: str
    kind: str
    start_s: float | None
    end_s: float | None
    text: str
    citation: str
    chunk_index: int
    line_start: int | None = None
    line_end: int | None = None
    page: int | None = None
    heading: str | None = None
    passage_start_s: float | None = None  # the whole chunk's window; start_s/end_s pinpoint
    passage_end_s: float | None = None  # the sentence that best matches the query
    speaker: str | None = None  # who said the cited sentence: a voice's name, else "speaker N"
    # the evidence an answer reuses (never printed): [from, to, cosine] per piece, chunk cosine
    scored_pieces: list[tuple[int, int, float]] | None = field(default=None, repr=False, compare=False)
    piece_speakers: list[str | None] | None = field(default=None, repr=False, compare=False)
    chunk_cosine: float | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("scored_pieces")
        out.pop("piece_speakers")
        out.pop("chunk_cosine")
        return out


def _main_speaker(labels: list[str | None]) -> str | None:
    said = [label for label in labels if label]
    return max(set(said), key=said.count) if said else None


def _speaker_name(label: str | None, names: dict[str, str | None]) -> str | None:
    """`names`: every speaker of the recording (label -> name or None), so its count says
    whether the recording has several voices."""
    return speaker_name(label, names, many=len(names) > 1)


class Retriever:
    """Search over one GRACE_HOME's index with plain engine objects: `embedder` (embed,
    embed_query), `chunk_index` (the LanceDB store's search), `blob_store` (text keys)."""

    def __init__(self, settings: GraceSettings, db: StateDB, embedder: Any, chunk_index: Any, blob_store: Any) -> None:
        self.settings, self.db = settings, db
        self.embedder, self.chunk_index, self.blob_store = embedder, chunk_index, blob_store
        self.warnings: list[str] = []  # what the last search skipped and why (a damaged source)
        self._text_keys: dict[str, bytes | None] = {}
        self.query_vector: Any = None

    def search(
        self,
        query: str,
        k: int = 5,
        mode: str = "hybrid",
        rerank: bool | None = None,
        filters: SearchFilters | None = None,
    ) -> list[SearchResult]:
        """Best chunks for `query` with citations; only sources that still have index consent
        (and, with `filters`, only the sources they allow: search/filters.py, a prefilter).

        Vector and hybrid results are re-ranked by their best-matching sentence (setting
        `search_rerank`, on by default; `rerank=` overrides it per call) and a recording's window
        is narrowed to that sentence. Keyword mode is plain BM25, as asked."""
        if not query.strip():
            raise GraceError("the query is empty")
        if mode not in MODES:
            raise GraceError(f"unknown search mode {mode!r}; use one of: {', '.join(MODES)}")
        if k < 1:
            raise GraceError("k must be at least 1")
        rerank = self.settings.search_rerank if rerank is None else rerank
        self.warnings = []
        self._only = speaker_labels(self.db, filters) if filters is not None else None
        keys = allowed_keys(self.db, filters, self._only) if filters is not None else None
        if keys is not None and not keys:
            return []  # no source matches the filters
        where = keys_filter(keys, universe=all_source_keys(self.db)) if keys is not None else None
        embedder, store, blobs = self.embedder, self.chunk_index, self.blob_store
        vector = embedder.embed_query(query) if mode != "keyword" else None
        self.query_vector = vector  # an answer reuses it (search/answer.py)
        tokens = blind_tokens(blobs.index_key(), query) if mode != "vector" else ""
        depth = max(k, self.settings.rerank_depth) if rerank and mode != "keyword" else k
        hits = store.search(tokens, vector, k=depth * 3, mode=mode, where=where)
        text_keys: dict[str, bytes | None] = {}
        self._text_keys = text_keys
        self._names: dict[str, dict[str, str]] = {}  # this query's source text keys, for the sentence vectors
        allowed: dict[str, bool] = {}
        kept: list[tuple[Any, SearchResult]] = []
        self.warnings = []
        # every hit's source and its consent in two queries (one per source cost ~6 ms at 100k)
        hit_keys = list(dict.fromkeys(hit.row["source_key"] for hit in hits))
        allowed.update(self._consented(hit_keys))
        names = self.db.speaker_names_for(hit_keys)
        for hit in hits:
            key = hit.row["source_key"]
            if keys is not None and key not in keys:
                continue
            if not allowed[key]:
                continue
            said = sentences.speakers_of(hit.row.get("moments"))
            if self._only is not None and not set(said) & self._only.get(key, set()):
                continue  # the asked-for person says nothing in this passage
            r = hit.row
            try:
                if key not in text_keys:
                    text_keys[key] = blobs.text_key(key) if blobs.exists(key, TEXT_KEY) else None
                if text_keys[key] is None:
                    continue  # purged while the index still listed it
                text = open_text(text_keys[key], r["text_enc"], f"{key}:{int(r['chunk_index'])}")
                heading = (
                    open_text(text_keys[key], r["heading_enc"], f"{key}:{int(r['chunk_index'])}:heading")
                    if r.get("heading_enc")
                    else None
                )
            except BlobError as exc:
                # one damaged key or row must not break every search: skip that source, say so
                allowed[key] = False
                self.warnings.append(f"skipped {r.get('title') or key} ({key}): {exc}; run: grace keys verify")
                continue
            r = {**r, "heading": heading, "speaker": _speaker_name(_main_speaker(said), names.get(key, {}))}
            kept.append(
                (
                    hit,
                    SearchResult(
                        rank=0,
                        score=round(hit.score, 6),
                        source_key=key,
                        title=r["title"],
                        kind=r["kind"],
                        start_s=r.get("start_s"),
                        end_s=r.get("end_s"),
                        text=text,
                        citation=citation_for(r),
                        chunk_index=int(r["chunk_index"]),
                        line_start=r.get("line_start"),
                        line_end=r.get("line_end"),
                        page=r.get("page"),
                        heading=heading,
                        passage_start_s=r.get("start_s"),
                        passage_end_s=r.get("end_s"),
                        speaker=r["speaker"],
                    ),
                )
            )
            self._names[key] = names.get(key, {})
            if len(kept) >= depth:
                break
        if mode != "keyword" and kept:
            kept = self._sentences(query, vector, kept, rerank=rerank)
        results = [result for _, result in kept[:k]]
        for rank, result in enumerate(results, start=1):
            result.rank = rank
        return results

    def _sentences(
        self, query: str, vector: Any, kept: list[tuple[Any, SearchResult]], rerank: bool
    ) -> list[tuple[Any, SearchResult]]:
        """Score each result's sentences against the query (one embedding batch): re-rank by the
        best sentence when `rerank`, and narrow each recording's window to its best sentence."""
        query_vector = np.asarray(vector, dtype=np.float32)
        spans = [sentences.pieces_of(result.text, hit.row.get("moments")) for hit, result in kept]
        sims: list[np.ndarray | None] = []
        missing: list[int] = []  # rows from before sentence vectors: embedded now, in one batch
        for i, ((hit, result), pieces) in enumerate(zip(kept, spans)):
            stored = self._stored_sentence_vectors(hit.row, result, len(pieces), len(query_vector))
            if stored is None:
                sims.append(None)
                missing.append(i)
            else:
                sims.append(stored @ query_vector)
        texts = [kept[i][1].text[a:b] for i in missing for a, b, _, _ in spans[i]]
        if texts:
            flat, at = self.embedder.embed(texts) @ query_vector, 0
            for i in missing:
                sims[i] = flat[at : at + len(spans[i])]
                at += len(spans[i])
        sims = [s if s is not None else np.zeros(0, dtype=np.float32) for s in sims]
        said = [sentences.speakers_of(hit.row.get("moments")) for hit, _ in kept]
        if self._only is not None:
            sims = self._only_theirs(kept, said, sims)
        candidates = [hit for hit, _ in kept]
        for c in candidates:
            if c.cosine is None:  # a keyword-only hit under RRF fusion
                c.cosine = cosine(c.row.get("vector"), query_vector)
        for (_, result), c, pieces, s in zip(kept, candidates, spans, sims):
            result.scored_pieces = [(a, b, float(x)) for (a, b, _, _), x in zip(pieces, s)]
            labels = sentences.speakers_of(c.row.get("moments"))
            names = self._names.get(result.source_key, {})
            result.piece_speakers = [_speaker_name(lb, names) for lb in labels] if len(labels) == len(pieces) else None
            result.chunk_cosine = c.cosine
        by_id = {id(hit): (hit, result, pieces) for (hit, result), pieces in zip(kept, spans)}
        if rerank:
            ordered = rerank_by_sentences(
                candidates, sims, alpha=self.settings.rerank_alpha, keyword_weight=self.settings.keyword_weight
            )
        else:
            ordered = candidates
            for c, s in zip(candidates, sims):
                c.best_sentence = int(np.argmax(s)) if len(s) else None
        out = []
        labels_of = {id(hit): labels for (hit, _), labels in zip(kept, said)}
        for c in ordered:
            hit, result, pieces = by_id[id(c)]
            if rerank:
                result.score = round(c.score, 6)
            if c.best_sentence is not None and pieces[c.best_sentence][2] is not None:
                _, _, start, end = pieces[c.best_sentence]
                result.start_s, result.end_s = start, end
                labels = labels_of[id(hit)]
                label = labels[c.best_sentence] if c.best_sentence < len(labels) else None
                result.speaker = _speaker_name(label, self._names.get(result.source_key, {}))
                result.citation = citation_for(
                    {"title": result.title, "start_s": start, "end_s": end, "speaker": result.speaker}
                )
            out.append((hit, result))
        return out

    def _consented(self, keys: list[str]) -> dict[str, bool]:
        """Which of `keys` may be shown: not purged, every party's index consent in force."""
        rows, events, now = self.db.get_sources(keys), self.db.consent_events_for(keys), utcnow()
        return {
            key: rows.get(key) is not None
            and rows[key].stage not in (Stage.PURGING, Stage.PURGED)
            and not missing_parties(rows[key].participants, events[key], "index", now)
            for key in keys
        }

    def _only_theirs(self, kept: list[tuple[Any, SearchResult]], said: list[list[str | None]], sims: list[Any]):
        """A speaker filter: only that person's sentences can be cited (the others score -1)."""
        out = []
        for (_, result), labels, s in zip(kept, said, sims):
            mine = self._only.get(result.source_key, set()) if self._only else set()
            mask = np.array([label in mine for label in labels], dtype=bool)
            out.append(np.where(mask, s, -1.0).astype(np.float32) if len(mask) == len(s) else s)
        return out

    def _stored_sentence_vectors(self, row: dict[str, Any], result: SearchResult, count: int, dim: int) -> Any:
        """The row's sealed sentence vectors (n x dim), or None when it has none that fit."""
        sealed = row.get(SENTENCES_COLUMN)
        if not sealed:
            return None
        try:
            key = self._text_keys.get(result.source_key)
            if key is None:
                return None
            vectors = sentences.unpack(
                open_bytes(key, sealed, sentences.aad_for(result.source_key, result.chunk_index)), dim
            )
        except (BlobError, ValueError):
            return None  # damaged or from another model: embed them instead
        return vectors if len(vectors) == count else None
