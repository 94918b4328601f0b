"""`Grace`: the Python API (ingest, search, consent, status) that the CLI is built on.

Work always runs through the Dagster asset graph on the instance in GRACE_HOME (runs show up
in the web UI); nothing here transcribes or indexes on a side path.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg

from grace_pipelines.governance.consent import (
    MAX_SIDECAR_BYTES,
    ConsentError,
    expand_scope,
    grant_command,
    missing_parties,
)
from grace_pipelines.db.htm_ledger import Ledger
from grace_pipelines.ingest.inbox import (
    ORIGINS,
    Intake,
    ScanResult,
    inbox_names,
    judge_inputs,
    scan_inbox,
)
from grace_pipelines.ingest.media import SIDECAR_SUFFIX, MediaError, safe_name, safe_text
from grace_pipelines.resources.blob_store import BlobError, keyring_for, open_text
from grace_pipelines.text.keywords import blind_tokens
from grace_pipelines.runtime.recovery import RecoveryReport
from grace_pipelines.settings import GraceSettings, load_settings
from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.schema import utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.consent_records import record_consent

def dagster_yaml(settings: GraceSettings) -> str:
    """The Dagster instance config `grace init` writes: SQLite storage under GRACE_HOME, a run
    queue that is fair across origins, and the pool limits (HTM: grace_pipelines/htm)."""
    return f"""\
# Dagster instance for this GRACE_HOME (SQLite storage under this folder).
# For PostgreSQL storage see dagster.postgres.example.yaml in the grace-pipelines repository.
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: {settings.max_concurrent_runs}
    tag_concurrency_limits:
      # fairness: one origin (a flood of voice memos, a document dump) gets at most this many
      # run slots, so another origin always finds one free; runs carry the tag grace/origin
      - key: grace/origin
        value:
          applyLimitPerUniqueValue: true
        limit: {min(settings.origin_run_limit, settings.max_concurrent_runs)}
  pools:
    default_limit: {settings.transcription_pool_limit}   # pools "transcription" (Whisper) and "index_writer" (LanceDB)
run_queue:
  dequeue_interval_seconds: 1   # default 5; measured: drop-to-searchable median 12.3 s -> 7.9 s
run_monitoring:
  # the daemon fails launches that never start; runs whose process died are found by
  # recovery_sensor (a pid check: the default run launcher has no health check of its own)
  enabled: true
  start_timeout_seconds: 180
  poll_interval_seconds: 30
"""


SYSTEM_FAILURE = "system failure"


class GraceError(Exception):
    """A user error (bad argument, unknown source, ...): the CLI exits 1 with this message."""


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SourceStatus:
    source_key: str | None
    title: str
    kind: str | None
    origin: str | None
    state: str  # awaiting_consent | processing | searchable | failed | quarantined | purging | purged | no_text_layer
    why: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


LINE_CITED = (".md", ".markdown", ".txt")  # formats whose lines a reader can open and count


def citation_for(row: dict[str, Any]) -> str:
    """`talk.m4a @ 00:11-00:17`, `guide.pdf, p. 2`, `notes.md § Risks, lines 3-9`."""
    title = row.get("title") or row.get("source_key")
    if row.get("page") is not None:
        return f"{title}, p. {row['page']}"
    if row.get("heading") and row.get("line_start") is not None and str(title).lower().endswith(LINE_CITED):
        a, b = row["line_start"], row.get("line_end") or row["line_start"]
        return f"{title} § {row['heading']}, " + (f"line {a}" if a == b else f"lines {a}-{b}")
    if row.get("heading"):
        return f"{title} § {row['heading']}"
    if row.get("start_s") is not None:
        start, end = row["start_s"], row.get("end_s")
        # floor the start and ceil the end so the shown window contains what was said
        return f"{title} @ {clock(int(start))}-{clock(-(-end // 1) if end is not None else None)}"
    if row.get("line_start") is not None:
        a, b = row["line_start"], row.get("line_end") or row["line_start"]
        return f"{title}, line {a}" if a == b else f"{title}, lines {a}-{b}"
    return str(title)


class Grace:
    """Grace for one GRACE_HOME. `Grace(home)`; pass `instance=` to use a given Dagster instance."""

    def __init__(self, home: str | Path | None = None, *, instance: dg.DagsterInstance | None = None, **overrides: Any) -> None:
        if home is not None:
            overrides["home"] = Path(home)
        self.settings: GraceSettings = load_settings(**overrides)
        self._instance = instance
        self.settings.ensure_dirs()
        self.db = StateDB(self.settings.state_url, keys_dir=str(self.settings.keys_dir))

    # ---- setup ----------------------------------------------------------------------------
    def init(self) -> Path:
        """Create GRACE_HOME, its folders and a Dagster instance config (idempotent)."""
        self.settings.ensure_dirs()
        keyring_for(str(self.settings.keys_dir))  # master key file (0600) and keyring, once
        dagster_home = self.settings.dagster_home
        dagster_home.mkdir(mode=0o700, parents=True, exist_ok=True)
        config = dagster_home / "dagster.yaml"
        if not config.exists():
            config.write_text(dagster_yaml(self.settings), encoding="utf-8")
        return self.settings.home

    @cached_property
    def defs(self) -> dg.Definitions:
        from grace_pipelines.definitions import build_definitions

        return build_definitions(self.settings)

    @contextmanager
    def instance(self) -> Iterator[dg.DagsterInstance]:
        if self._instance is not None:
            yield self._instance
            return
        self.init()
        instance = dg.DagsterInstance.from_config(str(self.settings.dagster_home))
        try:
            yield instance
        finally:
            instance.dispose()

    # ---- ingest ---------------------------------------------------------------------------
    def drop(self, paths: Sequence[str | Path], origin: str | None = None) -> list[Intake]:
        """Judge every path first (name, type, size, link-ness: nothing refused is copied), then
        copy the good ones (and any `NAME.consent.json` beside them) into the inbox, atomically
        and never over another file (a second `notes.md` becomes `notes-2.md`).

        One `Intake` per path, in order: `dropped` (with its `target` in the inbox), `refused`
        or `ignored` (with the reason; the user still has the file), `sidecar` (travels with
        the media given beside it), `same` (the same file given twice) or `failed` (copying
        into the inbox failed: a system failure)."""
        if origin is not None and origin not in ORIGINS:
            raise GraceError(f"unknown origin {origin!r}; use one of: {', '.join(ORIGINS)}")
        folder = self.settings.inbox / origin if origin else self.settings.inbox
        folder.mkdir(parents=True, exist_ok=True)
        items = judge_inputs(self.settings, self.db, paths)
        for item in items:
            if item.state != "pending":
                continue
            try:
                if item.late_for is not None:  # a sidecar for a source registered earlier
                    target = folder / item.inbox_name
                    item.sha256 = _atomic_copy(item.path, target, max_bytes=MAX_SIDECAR_BYTES)
                    item.state, item.target = "dropped", target
                    continue
                for name in inbox_names(item.inbox_name):
                    target = folder / name
                    beside = folder / (name + SIDECAR_SUFFIX)
                    if os.path.lexists(target) or (item.sidecar is not None and os.path.lexists(beside)):
                        continue
                    placed: list[Path] = []

                    def place_sidecar(src: Path | None = item.sidecar, dst: Path = beside, done: list[Path] = placed) -> None:
                        if src is not None:  # first, so the media never shows up without it
                            _atomic_copy(src, dst, max_bytes=MAX_SIDECAR_BYTES)
                            done.append(dst)

                    try:
                        item.sha256 = _atomic_copy(item.path, target, max_bytes=self.settings.max_file_bytes,
                                                   before_place=place_sidecar)
                    except FileExistsError:
                        for extra in placed:
                            extra.unlink(missing_ok=True)
                        continue  # another process took this name meanwhile: the next one
                    except BaseException:
                        for extra in placed:
                            extra.unlink(missing_ok=True)
                        raise
                    item.state, item.target = "dropped", target
                    break
                else:
                    item.refuse(f"{item.shown}: no free name for it in the inbox")
            except FileExistsError:
                item.refuse(f"{item.shown}: a consent sidecar of that name is already waiting in the inbox")
            except MediaError as exc:
                item.refuse(str(exc))
            except OSError as exc:
                item.state = "failed"
                item.reason = safe_text(f"{SYSTEM_FAILURE}: could not copy {item.shown} into the inbox "
                                        f"({exc.strerror or type(exc).__name__})")
        return items

    def ingest(
        self,
        paths: Sequence[str | Path],
        origin: str | None = None,
        wait: bool = False,
        progress: Callable[[str, str], None] | None = None,
    ) -> list[SourceStatus]:
        """Drop files; with `wait`, register them and run the asset graph for each to the end.

        One outcome per given path, in the order given: `refused` (not copied: missing, a
        directory, a link, an unsupported type, empty or too large, a broken sidecar),
        `ignored` (a hidden or temporary name, an orphan sidecar), `quarantined` (refused on
        its content after the copy), or the source's state, also when another process
        registered it first."""
        items = self.drop(paths, origin)
        targets = {item.target for item in items if item.target is not None}
        scan = ScanResult()
        if wait and targets:
            scan = scan_inbox(self.settings, self.db, only=targets, settle_seconds=0)
            self.run_sources([d.key for d in scan.new + scan.retry], progress=progress)
            late = [o.key for o in scan.outcomes.values() if o.outcome == "consent_applied" and o.key]
            if late:
                self.release_waiting(late)  # what a late sidecar's grants were holding
        refused_elsewhere: dict[str, str] = {}

        def quarantined_by_another_process(title: str) -> str | None:
            if not refused_elsewhere:
                refused_elsewhere.update({q["filename"]: q["reason"] for q in self.db.list_quarantine()})
            return refused_elsewhere.get(title)

        def outcome(item: Intake) -> SourceStatus:
            kind = None if item.kind == "sidecar" else item.kind
            if item.target is None:
                return SourceStatus(None, item.name, kind, origin, item.state if item.state != "pending" else "refused",
                                    item.reason or f"{item.shown}: not ingested")
            title = safe_name(item.target.name)
            if not wait:
                return SourceStatus(None, title, kind, origin, "processing", "in the inbox; the inbox sensor picks it up")
            found = scan.outcomes.get(str(item.target))
            if found is not None and found.outcome == "quarantined":
                return SourceStatus(found.key, title, kind, origin, "quarantined", found.reason)
            key = found.key if found is not None and found.key else (item.late_for or (item.sha256 or "")[:16])
            row = self.db.get_source(key) if key else None
            if row is None:
                reason = quarantined_by_another_process(title) if found is None else None
                if reason is not None:  # another process refused it first
                    return SourceStatus(None, title, kind, origin, "quarantined", reason)
                return SourceStatus(None, title, kind, origin, "processing", "in the inbox; another process is handling it")
            status = self._status(row)
            if item.late_for is not None:
                status.why = f"consent sidecar {item.name} applied to {row.title}; {status.why}"
            elif found is None or found.outcome == "registered":
                status.why = f"already registered by another process; {status.why}"
            elif found.outcome == "duplicate":
                status.why = f"the same bytes as source {row.key} ({row.title}); {status.why}"
            return status

        outcomes: list[SourceStatus | None] = [None] * len(items)
        for index, item in enumerate(items):
            if item.state not in ("sidecar", "same"):
                outcomes[index] = outcome(item)
        for index, item in enumerate(items):
            if item.state in ("sidecar", "same"):
                first = outcomes[item.media if item.state == "sidecar" else item.same_as]  # type: ignore[index]
                assert first is not None
                note = f"consent sidecar of {items[item.media].name}" if item.state == "sidecar" else "given twice"  # type: ignore[index]
                outcomes[index] = SourceStatus(first.source_key, item.name if item.state == "sidecar" else first.title,
                                               first.kind if item.state == "same" else None, first.origin, first.state,
                                               f"{note}; {first.why}")
        return [o for o in outcomes if o is not None]

    def run_sources(
        self,
        keys: Iterable[str],
        asset_selection: Sequence[dg.AssetKey] | None = None,
        progress: Callable[[str, str], None] | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, bool]:
        """Run `ingest_job` for each source key on the GRACE_HOME instance; returns success per key.

        Recovery runs first (runs of dead processes failed, their pool slots freed), and a source
        that an interrupted run left past `registered` is taken on from its last completed stage."""
        keys = list(dict.fromkeys(keys))
        report = self.recover(wanted=set(keys))  # also when there is nothing new: a re-run resumes
        outcome = {k: ok for k, ok in report.outcomes.items() if k in keys}  # resumed by recovery
        rest = [k for k in keys if k not in outcome]
        outcome.update(self._execute_sources(rest, asset_selection, progress, tags) if rest else {})
        return outcome

    def _execute_sources(
        self,
        keys: list[str],
        asset_selection: Sequence[dg.AssetKey] | None = None,
        progress: Callable[[str, str], None] | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, bool]:
        from grace_pipelines.runtime.recovery import RESUME_SELECTION, run_tags, watching_for_dead_runs

        outcome: dict[str, bool] = {}
        job = self.defs.resolve_job_def("ingest_job")
        # launched here and now: the dispatcher must not launch them a second time
        Ledger(self.db).claim(keys, f"api:{time.time_ns()}", utcnow(), "run", 0)
        with self.instance() as instance, watching_for_dead_runs(instance):
            instance.add_dynamic_partitions("sources", [k for k in keys if not instance.has_dynamic_partition("sources", k)])
            for key in keys:
                row = self.db.get_source(key)
                if progress:
                    progress(key, row.title if row else key)
                selection = list(asset_selection) if asset_selection else None
                if selection is None and row is not None and row.stage in RESUME_SELECTION:
                    selection = [dg.AssetKey(a) for a in RESUME_SELECTION[row.stage]]  # resume, do not redo
                result = job.execute_in_process(
                    run_config=self._run_config(),
                    instance=instance,
                    partition_key=key,
                    asset_selection=selection,
                    tags={"grace/source": key, "grace/origin": row.origin if row else "manual", **run_tags(), **(tags or {})},
                    raise_on_error=False,
                )
                outcome[key] = result.success
                if not result.success:
                    self._record_unexpected_failure(key, result)
        return outcome

    def recover(self, *, repair: bool = True, wanted: set[str] | None = None, sweep_temp: bool = False) -> RecoveryReport:
        """Find what killed processes left (dead runs, pool slots, stuck sources, unfinished
        purges, temporary files) and, with `repair`, fix it: mark the runs failed, free the
        slots, finish the purges, resume the sources from their last completed stage (only
        `wanted` ones and those whose run just died or that are stale), remove the temp files."""
        from grace_pipelines.runtime.recovery import recover

        resources = self.defs.resources
        with self.instance() as instance:
            report = recover(instance, self.settings, self.db, repair=repair, wanted=wanted, sweep_temp=sweep_temp,
                             blob_store=resources["blob_store"], vector_store=resources["vector_store"])
        if not repair:
            return report
        for item in report.purges:  # journaled purges a kill interrupted: finish them first
            report.receipts[item["source_key"]] = self._run_purge(item["source_key"], item["plan"])
        for item in report.resume:
            report.outcomes.update(self._execute_sources(
                [item.key], [dg.AssetKey(a) for a in item.assets], tags={"grace/trigger": "recovery"}))
        claimed = Ledger(self.db).claim(report.requeued, f"recovery:{time.time_ns()}", utcnow(), "run", 0)
        if claimed:  # a lost launch: run it here unless the daemon's dispatcher took it first
            report.outcomes.update(self._execute_sources(claimed, tags={"grace/trigger": "recovery"}))
        return report

    def _record_unexpected_failure(self, key: str, result: dg.ExecuteInProcessResult) -> None:
        """A run that failed for a reason no stage recorded (not consent, not bad input) is a
        system failure: say so in the source's state instead of leaving it 'processing'."""
        row = self.db.get_source(key)
        if row is None or row.stage in ("awaiting_consent", "failed", "no_text_layer"):
            return
        detail = _failure_message(result) or "the run failed"
        self.db.set_stage(key, "failed", reason=f"{SYSTEM_FAILURE}: {detail[:300]}")

    def _run_config(self) -> dict[str, Any]:
        return {
            "ops": {"chunks": {"config": {"chunk_chars": self.settings.chunk_chars, "chunk_overlap": self.settings.chunk_overlap}}},
            "loggers": {"console": {"config": {"log_level": self.log_level}}},
        }

    log_level = "CRITICAL"  # runs are logged to the Dagster instance; the console stays quiet
    search_warnings: list[str] = []  # what the last search skipped and why (a damaged source)

    def doctor(self, *, repair: bool = False) -> dict[str, Any]:
        """What recovery finds (dead runs, leaked pool slots, stuck sources, unfinished purges,
        temporary files) and what is readable by others under GRACE_HOME; `repair` fixes it all."""
        from grace_pipelines.stores.permissions import loose_paths, tighten

        report = self.recover(repair=repair, sweep_temp=True)
        loose = loose_paths(self.settings.home, skip=[self.settings.inbox])
        fixed = tighten(p for p, _ in loose) if repair else 0
        if repair:
            loose = loose_paths(self.settings.home, skip=[self.settings.inbox])
        stuck = [{"source_key": r.key, "stage": r.stage, "why": r.why} for r in report.resume]
        stuck += [{"source_key": k, "stage": "registered", "why": "its launch or run was lost"} for k in report.requeued]
        problems = {
            "dead_runs": report.dead_runs,
            "slots": report.slots_freed,
            "stuck_sources": stuck,
            "unfinished_purges": [p["source_key"] for p in report.purges],
            "temp_files": report.temp_files,
            "permissions": [{"path": str(p.relative_to(self.settings.home.parent)) if p != self.settings.home else str(p),
                             "mode": oct(m)} for p, m in loose],
        }
        found = report.found_anything or bool(loose) or bool(fixed)
        return {
            "home": str(self.settings.home),
            "repaired": repair,
            "healthy": not found if not repair else not loose,
            "permissions_fixed": fixed,
            "recovery_s": report.seconds,
            "resumed": report.outcomes,
            **problems,
        }

    # ---- search ---------------------------------------------------------------------------
    def search(self, query: str, k: int = 5, mode: str = "hybrid", rerank: bool | None = None) -> list[SearchResult]:
        """Best chunks for `query` with citations; only sources that still have index consent.

        Vector and hybrid results are re-ranked by their best-matching sentence (setting
        `search_rerank`, on by default; `rerank=` overrides it per call) and a recording's window
        is narrowed to that sentence. Keyword mode is plain BM25, as asked."""
        from grace_pipelines.resources.vector_store import MODES

        if not query.strip():
            raise GraceError("the query is empty")
        if mode not in MODES:
            raise GraceError(f"unknown search mode {mode!r}; use one of: {', '.join(MODES)}")
        if k < 1:
            raise GraceError("k must be at least 1")
        rerank = self.settings.search_rerank if rerank is None else rerank
        resources = self.defs.resources
        embedder, store, blobs = resources["embedder"], resources["vector_store"], resources["blob_store"]
        vector = embedder.embed_query(query) if mode != "keyword" else None
        tokens = blind_tokens(blobs.index_key(), query) if mode != "vector" else ""
        depth = max(k, self.settings.rerank_depth) if rerank and mode != "keyword" else k
        hits = store.search(tokens, vector, k=depth * 3, mode=mode)
        text_keys: dict[str, bytes | None] = {}
        allowed: dict[str, bool] = {}
        kept: list[tuple[Any, SearchResult]] = []
        self.search_warnings = []
        for hit in hits:
            key = hit.row["source_key"]
            if key not in allowed:
                row = self.db.get_source(key)
                allowed[key] = row is not None and row.stage not in ("purging", "purged") and not missing_parties(
                    row.participants, self.db.consent_events(key), "index", utcnow()
                )
            if not allowed[key]:
                continue
            r = hit.row
            try:
                if key not in text_keys:
                    text_keys[key] = blobs.text_key(key) if blobs.exists(key, "text.key") else None
                if text_keys[key] is None:
                    continue  # purged while the index still listed it
                text = open_text(text_keys[key], r["text_enc"], f"{key}:{int(r['chunk_index'])}")
                heading = (
                    open_text(text_keys[key], r["heading_enc"], f"{key}:{int(r['chunk_index'])}:heading")
                    if r.get("heading_enc") else None
                )
            except BlobError as exc:
                # one damaged key or row must not break every search: skip that source, say so
                allowed[key] = False
                self.search_warnings.append(f"skipped {r.get('title') or key} ({key}): {exc}; run: grace keys verify")
                continue
            r = {**r, "heading": heading}
            kept.append((hit, SearchResult(
                rank=0, score=round(hit.score, 6), source_key=key, title=r["title"], kind=r["kind"],
                start_s=r.get("start_s"), end_s=r.get("end_s"), text=text, citation=citation_for(r),
                chunk_index=int(r["chunk_index"]), line_start=r.get("line_start"), line_end=r.get("line_end"),
                page=r.get("page"), heading=heading, passage_start_s=r.get("start_s"), passage_end_s=r.get("end_s"),
            )))
            if len(kept) >= depth:
                break
        if mode != "keyword" and kept:
            kept = self._sentences(query, vector, kept, rerank=rerank)
        results = [result for _, result in kept[:k]]
        for rank, result in enumerate(results, start=1):
            result.rank = rank
        return results

    def _sentences(self, query: str, vector: Any, kept: list[tuple[Any, SearchResult]], rerank: bool) -> list[tuple[Any, SearchResult]]:
        """Score each result's sentences against the query (one embedding batch): re-rank by the
        best sentence when `rerank`, and narrow each recording's window to its best sentence."""
        import numpy as np

        from grace_pipelines.search.fusion import cosine
        from grace_pipelines.search.fusion import rerank as rerank_by_sentences
        from grace_pipelines.text.chunking import sentence_spans

        spans: list[list[tuple[int, int, float | None, float | None]]] = []
        for hit, result in kept:
            moments = json.loads(hit.row.get("moments") or "[]")
            if moments:
                spans.append([(int(m[0]), int(m[1]), float(m[2]), float(m[3])) for m in moments])
            else:
                spans.append([(a, b, None, None) for a, b in sentence_spans(result.text)])
        texts = [result.text[a:b] for (_, result), pieces in zip(kept, spans) for a, b, _, _ in pieces]
        if not texts:
            return kept
        query_vector = np.asarray(vector, dtype=np.float32)
        flat = self.defs.resources["embedder"].embed(texts) @ query_vector
        sims, at = [], 0
        for pieces in spans:
            sims.append(flat[at : at + len(pieces)])
            at += len(pieces)
        candidates = [hit for hit, _ in kept]
        for c in candidates:
            if c.cosine is None:  # a keyword-only hit under RRF fusion
                c.cosine = cosine(c.row.get("vector"), query_vector)
        by_id = {id(hit): (hit, result, pieces) for (hit, result), pieces in zip(kept, spans)}
        if rerank:
            ordered = rerank_by_sentences(candidates, sims, alpha=self.settings.rerank_alpha,
                                          keyword_weight=self.settings.keyword_weight)
        else:
            ordered = candidates
            for c, s in zip(candidates, sims):
                c.best_sentence = int(np.argmax(s)) if len(s) else None
        out = []
        for c in ordered:
            hit, result, pieces = by_id[id(c)]
            if rerank:
                result.score = round(c.score, 6)
            if c.best_sentence is not None and pieces[c.best_sentence][2] is not None:
                _, _, start, end = pieces[c.best_sentence]
                result.start_s, result.end_s = start, end
                result.citation = citation_for({"title": result.title, "start_s": start, "end_s": end})
            out.append((hit, result))
        return out

    # ---- ask ------------------------------------------------------------------------------
    def ask(self, question: str, k: int = 5) -> Any:
        """An answer with [n] citations: from a chat model when one is configured, else
        extractive (labelled); 'nothing found' when no passage is relevant."""
        from grace_pipelines.search.answer import NOT_FOUND, Answer, Citation, extractive, generate, passage_scores, relevant

        results = self.search(question, k=k, mode="hybrid")
        embedder = self.defs.resources["embedder"]
        question_vec = embedder.embed_query(question)
        scores = passage_scores(question_vec, [r.text for r in results], embedder.embed)
        kept = relevant(results, scores, self.settings.answer_min_similarity)
        if not kept:
            return Answer(question=question, answer=NOT_FOUND, mode="not_found")
        citations = [
            Citation(n=i, citation=r.citation, source_key=r.source_key, title=r.title, kind=r.kind,
                     start_s=r.start_s, end_s=r.end_s, text=r.text, similarity=round(sim, 4))
            for i, (r, sim) in enumerate(kept, start=1)
        ]
        if not self.settings.chat_model:
            return Answer(question=question, answer=extractive(question_vec, citations, embedder.embed), mode="extractive",
                          citations=citations)
        import openai

        from grace_pipelines.resources.credentials import api_key_for

        key = api_key_for(
            os.environ.get(self.settings.openai_api_key_env), credential=self.settings.openai_credential,
            state_url=self.settings.state_url, keys_dir=str(self.settings.keys_dir),
            purpose="answering", actor="ask:chat", error=GraceError,
        )
        client = openai.OpenAI(api_key=key, base_url=self.settings.openai_base_url, max_retries=3)
        try:
            text = generate(question, citations, client=client, model=self.settings.chat_model)
        except openai.OpenAIError as exc:
            raise RuntimeError(f"the chat endpoint failed ({type(exc).__name__})") from None
        return Answer(question=question, answer=text, mode="generated", citations=citations, model=self.settings.chat_model)

    # ---- playback -------------------------------------------------------------------------
    def clip(self, citation: str, *, context_s: float = 1.0, source_key: str | None = None) -> tuple[bytes, SourceRow]:
        """The cited window of a recording (plus `context_s` either side) as WAV bytes,
        decoded in memory from the sealed original. Only sources with index consent."""
        from grace_pipelines.audio.clip import clip_wav
        from grace_pipelines.search.citations import parse_citation

        try:
            cited = parse_citation(citation)
        except ValueError as exc:
            raise GraceError(str(exc)) from None
        row = self.db.get_source(source_key) if source_key else self.resolve(cited.title)
        if row is None:
            raise GraceError(f"no recording matches {cited.title!r}")
        if row.kind == "document":
            raise GraceError(f"{row.title} is a document; only recordings can be played")
        if missing_parties(row.participants, self.db.consent_events(row.key), "index", utcnow()):
            raise GraceError(f"{row.title} has no consent to be searched or played")
        blobs = self.defs.resources["blob_store"]
        if not blobs.exists(row.key, "original"):
            raise GraceError(f"{row.title}: the recording is not stored (purged?)")
        try:
            wav = clip_wav(blobs.get_bytes(row.key, "original"), cited.start_s, cited.end_s, context_s=context_s, name=row.title)
        except ValueError as exc:
            raise GraceError(str(exc)) from None
        return wav, row

    # ---- consent --------------------------------------------------------------------------
    def resolve(self, ref: str) -> SourceRow:
        row = self.db.find_source(ref)
        if row is None:
            raise GraceError(f"no source matches {ref!r} (use a source key, or the file name of a drop)")
        return row

    def grant(
        self, ref: str, party: str, scope: str = "all", *, actor: str | None = None, wait: bool = False,
        expires_at: datetime | None = None,
    ) -> list[int]:
        """Record `party`'s consent for `scope` (optionally until `expires_at`, UTC)."""
        if expires_at is not None and (expires_at.tzinfo is None or expires_at <= utcnow()):
            raise GraceError("expires_at must be a timezone-aware time in the future")
        return self._consent(ref, party, scope, "grant", actor=actor, wait=wait, expires_at=expires_at)

    def revoke(self, ref: str, party: str, scope: str = "all", *, actor: str | None = None, wait: bool = False) -> list[int]:
        """Record a revocation; search stops returning the source at once. The purge of what
        was derived runs through `purge_job` (consent_sensor launches it; `wait` runs it now)."""
        ids = self._consent(ref, party, scope, "revoke", actor=actor, wait=False)
        if wait:
            row = self.resolve(ref)
            self.purge(row.key, reason=f"consent revoked by {party} ({scope})", only_if_needed=True)
        return ids

    def purge(self, ref: str, *, reason: str = "purge requested", remove_original: bool | None = None,
              only_if_needed: bool = False) -> dict[str, Any] | None:
        """Run `purge_job` for a source now; returns this source's receipt (None if nothing to
        purge). Journaled: a purge interrupted by a kill is finished by the next call (or by
        any entry point's recovery)."""
        from grace_pipelines.sensors.consent import purge_plan

        row = self.resolve(ref)
        recovered = self.recover(wanted={row.key})
        finished = recovered.receipts.get(row.key)
        if finished and (remove_original is not True or finished["original_removed"]):
            return finished  # an interrupted purge of this source, finished just now
        row = self.resolve(row.key)
        plan = purge_plan(self.db, row.key, purge_original_on_revoke=self.settings.purge_original_on_revoke, now=utcnow())
        if plan is None:
            if only_if_needed:
                return None
            plan = {"remove_original": False, "reason": reason}
        if remove_original is not None:
            plan["remove_original"] = remove_original
        if not only_if_needed:
            plan["reason"] = reason
        return self._run_purge(row.key, plan)

    def _run_purge(self, key: str, plan: dict[str, Any]) -> dict[str, Any] | None:
        from grace_pipelines.runtime.recovery import run_tags, watching_for_dead_runs

        job = self.defs.resolve_job_def("purge_job")
        title = (self.db.get_source(key) or SimpleNamespace(title=key)).title
        with self.instance() as instance, watching_for_dead_runs(instance):
            if not instance.has_dynamic_partition("sources", key):
                instance.add_dynamic_partitions("sources", [key])
            result = job.execute_in_process(
                run_config={"ops": {"purge_receipt": {"config": plan}}, "loggers": {"console": {"config": {"log_level": self.log_level}}}},
                instance=instance, partition_key=key, tags={"grace/source": key, "grace/trigger": "purge", **run_tags()},
                raise_on_error=False,
            )
            if not result.success:
                raise RuntimeError(f"purge of {title} failed; see run {result.run_id} in the Dagster UI")
        # this run's own receipt: another source's purge may have finished meanwhile
        for event in result.get_asset_materialization_events():
            materialization = event.step_materialization_data.materialization
            if materialization.partition == key and "receipt" in materialization.metadata:
                return materialization.metadata["receipt"].value  # type: ignore[return-value]
        return None

    def _consent(
        self, ref: str, party: str, scope: str, action: str, *, actor: str | None, wait: bool,
        expires_at: datetime | None = None,
    ) -> list[int]:
        row = self.resolve(ref)
        try:
            expand_scope(scope)
        except ConsentError as exc:
            raise GraceError(str(exc)) from None
        if party not in row.participants:
            raise GraceError(
                f"{party!r} is not a participant of {row.title} ({', '.join(row.participants)})"
            )
        ids = record_consent(
            self.db,
            source_key=row.key, party=party, scope=scope, action=action,
            method="api" if actor is None else "cli", actor=actor or _whoami(), expires_at=expires_at,
        )
        if wait and action == "grant":
            self.release_waiting([row.key])
        return ids

    def release_waiting(self, keys: Iterable[str]) -> dict[str, bool]:
        """Run now what consent was holding (what consent_sensor does under the daemon)."""
        from grace_pipelines.sensors.consent import waiting_requests

        blob_store = self.defs.resources["blob_store"]
        outcome: dict[str, bool] = {}
        for request in waiting_requests(self.db, blob_store, set(keys), tag=str(time.time_ns())):
            key = request.partition_key
            assert key is not None
            outcome.update(self.run_sources([key], asset_selection=request.asset_selection, tags={"grace/trigger": "consent"}))
        return outcome

    def consent_list(self, pending: bool = False) -> list[dict[str, Any]]:
        """Per source and scope: participants, who granted, who is missing."""
        out = []
        now = utcnow()
        for row in self.db.list_sources():
            events = self.db.consent_events(row.key)
            for scope in ("transcribe", "index"):
                missing = missing_parties(row.participants, events, scope, now)
                if pending and not missing:
                    continue
                out.append(
                    {
                        "source_key": row.key,
                        "title": row.title,
                        "scope": scope,
                        "participants": row.participants,
                        "granted": [p for p in row.participants if p not in missing],
                        "missing": missing,
                        "commands": [grant_command(row.key, p, scope) for p in missing],
                    }
                )
        return out

    # ---- keys and audit --------------------------------------------------------------------
    def rotate_keys(self) -> dict[str, Any]:
        """Materialize `keyring` (rotate, re-wrap, verify, retire) on the GRACE_HOME instance."""
        from grace_pipelines.runtime.recovery import run_tags

        self.recover()
        job = self.defs.resolve_job_def("key_rotation_job")
        with self.instance() as instance:
            result = job.execute_in_process(
                instance=instance, tags={"grace/trigger": "cli", **run_tags()}, raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": self.log_level}}}},
            )
            if not result.success:  # the step's own message names the blobs that do not open
                detail = _failure_message(result) or "see the run in the Dagster UI"
                raise RuntimeError(f"key rotation failed (run {result.run_id[:8]}): {detail[:1000]}")
            event = instance.get_latest_materialization_event(dg.AssetKey("keyring"))
        return event.asset_materialization.metadata["report"].value  # type: ignore[union-attr,return-value]

    def key_status(self) -> dict[str, Any]:
        from grace_pipelines.assets.keyring import sealed_things
        from grace_pipelines.crypto.rotation import status

        blobs, state = self.defs.resources["blob_store"], self.defs.resources["state"]
        return status(blobs.keyring(), sealed_things(blobs, state)).to_dict()

    def verify_keys(self) -> dict[str, Any]:
        from grace_pipelines.assets.keyring import sealed_things
        from grace_pipelines.crypto.rotation import verify

        blobs, state = self.defs.resources["blob_store"], self.defs.resources["state"]
        return verify(blobs.keyring(), sealed_things(blobs, state)).to_dict()

    # ---- vault ----------------------------------------------------------------------------
    @property
    def vault(self) -> Any:
        from grace_pipelines.governance.vault import Vault

        return Vault(self.db, keyring_for(str(self.settings.keys_dir)))

    def audit_verify(self) -> dict[str, Any]:
        from grace_pipelines.governance.audit import AuditLog

        return AuditLog(self.db).verify().to_dict()

    def audit_tail(self, n: int = 20) -> list[dict[str, Any]]:
        from grace_pipelines.governance.audit import AuditLog

        return [e.to_dict() for e in AuditLog(self.db).tail(n)]

    # ---- status ---------------------------------------------------------------------------
    def status_of(self, key: str) -> SourceStatus:
        row = self.db.get_source(key)
        if row is None:
            raise GraceError(f"unknown source {key}")
        return self._status(row)

    def _status(self, row: SourceRow) -> SourceStatus:
        status = _status(row)
        if status.state == "processing" and row.stage == "registered" and row.launched_at is None and row.route == "defer" and row.sla_due:
            status.why = (f"heavy work, deferred to the off-peak window ({self.settings.offpeak_start:%H:%M}-"
                          f"{self.settings.offpeak_end:%H:%M} {self.settings.timezone}); due {row.sla_due:%Y-%m-%d %H:%M} UTC")
        elif status.state == "processing" and row.stage == "registered" and row.launched_at is None and row.sla_due:
            status.why = f"waiting to be launched ({row.size_class} {row.origin}, due {row.sla_due:%H:%M:%S} UTC)"
        if status.state == "searchable" and row.embedding_model != self._embedding_model:
            status.state = "processing"
            status.why = ("indexed by an earlier embedding model; reembed_sensor re-embeds it (or: grace reembed), "
                          "search skips it until then")
        if status.state == "awaiting_consent":
            now = utcnow()
            events = self.db.consent_events(row.key)
            waiting = [scope for scope in ("transcribe", "index") if missing_parties(row.participants, events, scope, now)]
            if not waiting:
                status.state = "processing"
                status.why = "consent complete; consent_sensor launches the held work (or: grace consent grant ... --wait)"
            else:
                lines = []
                for scope in waiting:
                    missing = missing_parties(row.participants, events, scope, now)
                    lines.append(f"{scope}: missing consent from {', '.join(missing)} (" + "; ".join(grant_command(row.key, p, scope) for p in missing) + ")")
                status.why = " | ".join(lines)
        return status

    @cached_property
    def _embedding_model(self) -> str:
        return self.defs.resources["embedder"].code_version()

    def reembed(self, progress: Callable[[str, str], None] | None = None) -> dict[str, bool]:
        """Re-embed (embeddings only, chunks reused) every searchable source that an earlier
        embedding model indexed, now; `reembed_sensor` does the same under `grace dev`."""
        from grace_pipelines.assets.embeddings import embeddings

        keys = self.db.stale_embeddings(self._embedding_model)
        return self.run_sources(keys, asset_selection=[embeddings.key], progress=progress,
                                tags={"grace/reason": "reembed", "grace/embedding_model": self._embedding_model})

    def htm(self, window_s: float = 3600.0) -> dict[str, Any]:
        """HTM figures for the last `window_s` seconds (as the `htm_metrics` asset records them)."""
        from datetime import timedelta

        from grace_pipelines.assets.htm_metrics import stage_throughput
        from grace_pipelines.htm.metrics import htm_report, markdown

        now = utcnow()
        with self.instance() as instance:
            stages = stage_throughput(instance, self.db, now - timedelta(seconds=window_s))
        report = htm_report(self.db, now, timedelta(seconds=window_s), stages=stages)
        report["markdown"] = markdown(report)
        return report

    def status(self) -> list[SourceStatus]:
        out = [self._status(row) for row in self.db.list_sources()]
        for q in self.db.list_quarantine():
            out.append(SourceStatus(q["source_key"], q["filename"], None, None, "quarantined", q["reason"]))
        return out


def _status(row: SourceRow) -> SourceStatus:
    stage = row.stage
    if stage == "searchable":
        state, why = "searchable", "transcribed, chunked and indexed"
    elif stage == "failed":
        state, why = "failed", row.reason or "failed"
    elif stage == "no_text_layer":
        state, why = "no_text_layer", row.reason or "no text layer"
    elif stage == "purging":
        state, why = "purging", "purge in progress (an interrupted purge is finished by the next grace command or recovery_sensor)"
    elif stage == "purged":
        state, why = "purged", row.reason or "purged"
    elif stage == "awaiting_consent":
        state, why = "awaiting_consent", row.reason or "waiting for consent"
    else:
        state, why = "processing", f"at stage {stage}"
    return SourceStatus(row.key, row.title, row.kind, row.origin, state, why)


def _failure_message(result: dg.ExecuteInProcessResult) -> str | None:
    """The first line of the root error of a failed step (Dagster wraps the user's error)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            return error.message.strip().splitlines()[0]
    return None


def _atomic_copy(
    src: Path, dst: Path, *, max_bytes: int | None = None, before_place: Callable[[], None] | None = None
) -> str:
    """Copy `src` to `dst` through a hidden temp file in the same folder (`.grace-*.<pid>.part`:
    recovery removes it if this process dies) and return the sha256 of the bytes copied.

    Never reads through a link (O_NOFOLLOW) or blocks on a pipe, never replaces an existing
    `dst` (FileExistsError), stops past `max_bytes` (a file still growing). `before_place` runs
    once the copy is complete, just before `dst` appears. Reading errors are MediaError (the
    input's fault, naming it); writing errors stay OSError (a system failure)."""
    import errno
    import hashlib
    import stat

    shown = safe_name(src.name)
    try:
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise MediaError(f"{shown}: is a symbolic link; links are never followed (give the file itself)") from None
        raise MediaError(f"{shown}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    tmp = dst.with_name(f".grace-{os.urandom(4).hex()}.{os.getpid()}.part")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "rb") as reader:
            st = os.fstat(reader.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise MediaError(f"{shown}: not a regular file")
            if max_bytes is not None and st.st_size > max_bytes:
                raise MediaError(f"{shown}: file is {st.st_size} bytes, above the limit of {max_bytes} bytes")
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as writer:
                copied = 0
                while True:
                    try:
                        block = reader.read(1 << 20)
                    except OSError as exc:
                        raise MediaError(f"{shown}: cannot read it ({exc.strerror or type(exc).__name__})") from None
                    if not block:
                        break
                    copied += len(block)
                    if max_bytes is not None and copied > max_bytes:
                        raise MediaError(f"{shown}: grew above the limit of {max_bytes} bytes while being copied")
                    digest.update(block)
                    writer.write(block)
        if before_place is not None:
            before_place()
        try:
            os.link(tmp, dst)  # atomic and never over an existing file
        except FileExistsError:
            raise
        except OSError as exc:  # a file system without hard links
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            if os.path.lexists(dst):
                raise FileExistsError(errno.EEXIST, "already exists", str(dst)) from None
            os.replace(tmp, dst)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return digest.hexdigest()


def _whoami() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return "unknown"
