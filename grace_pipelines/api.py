"""`Grace`: the Python API (ingest, search, ask, consent, keys, status) that the CLI is built on.

A thin facade over the domains: ingest/ (drop, scan, status), search/ (retrieval, answers,
playback), governance/ (consent, purge, vault, audit), crypto/ (keys), htm/ (metrics) and
runtime/ (running the jobs in process on the GRACE_HOME's Dagster instance, recovery first).
Work always runs through the Dagster asset graph on that instance (runs show up in the web UI);
nothing here transcribes or indexes on a side path. It never imports sensors or assets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg

from grace_pipelines import tags as tag
from grace_pipelines.audio.facade import SpeakersMixin
from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.schema import utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.engines.clients import Clients, clients_for
from grace_pipelines.errors import SYSTEM_FAILURE, GraceError
from grace_pipelines.governance.consent_records import decide
from grace_pipelines.governance.holds import consent_overview, released
from grace_pipelines.governance.purge import requested_plan
from grace_pipelines.ingest.drop import drop_files
from grace_pipelines.ingest.inbox import scan_inbox
from grace_pipelines.ingest.intake import Intake
from grace_pipelines.ingest.outcomes import ingest_outcomes
from grace_pipelines.ingest.scan_records import ScanResult
from grace_pipelines.ingest.status import SourceStatus, status_for
from grace_pipelines.playbooks.facade import PlaybooksMixin
from grace_pipelines.runtime.execution import JobRunner, Progress
from grace_pipelines.runtime.instance import write_instance_config
from grace_pipelines.runtime.recovery import RecoveryReport
from grace_pipelines.search.retrieval import Retriever, SearchResult
from grace_pipelines.settings import GraceSettings, load_settings
from grace_pipelines.stores.blobs import keyring_for

__all__ = ["SYSTEM_FAILURE", "Grace", "GraceError", "SearchResult", "SourceStatus"]


class Grace(PlaybooksMixin, SpeakersMixin):
    """Grace for one GRACE_HOME. `Grace(home)`; pass `instance=` to use a given Dagster instance."""

    search_warnings: list[str] = []  # what the last search skipped and why (a damaged source)

    def __init__(
        self, home: str | Path | None = None, *, instance: dg.DagsterInstance | None = None, **overrides: Any
    ) -> None:
        if home is not None:
            overrides["home"] = Path(home)
        self.settings: GraceSettings = load_settings(**overrides)
        self._instance = instance
        self.settings.ensure_dirs()
        self.db = StateDB(self.settings.state_url, keys_dir=str(self.settings.keys_dir))
        self.runner = JobRunner(
            self.settings,
            self.db,
            defs=lambda: self.defs,
            stores=lambda: (self.clients.blob_store, self.clients.chunk_index),
            instance=instance,
            prepare=self.init,
        )

    # ---- setup ----------------------------------------------------------------------------
    def init(self) -> Path:
        """Create GRACE_HOME, its folders and a Dagster instance config (idempotent)."""
        self.settings.ensure_dirs()
        keyring_for(str(self.settings.keys_dir))  # master key file (0600) and keyring, once
        write_instance_config(self.settings)
        return self.settings.home

    @cached_property
    def defs(self) -> dg.Definitions:
        from grace_pipelines.definitions import (
            build_definitions,  # builds the engines: only when work runs
        )

        return build_definitions(self.settings)

    @cached_property
    def clients(self) -> Clients:
        """The embedder, chunk index and blob store as plain objects (search and ask use these)."""
        return clients_for(self.settings)

    @contextmanager
    def instance(self) -> Iterator[dg.DagsterInstance]:
        with self.runner.instance() as instance:
            yield instance

    @property
    def log_level(self) -> str:
        return self.runner.log_level

    @log_level.setter
    def log_level(self, level: str) -> None:
        self.runner.log_level = level

    # ---- ingest ---------------------------------------------------------------------------
    def drop(self, paths: Sequence[str | Path], origin: str | None = None) -> list[Intake]:
        """Judge every path, then copy the good ones (and their `NAME.consent.json` sidecars)
        into the inbox, atomically and never over another file. One `Intake` per path, in order
        (see ingest/drop.py for the states)."""
        return drop_files(self.settings, self.db, paths, origin)

    def ingest(
        self,
        paths: Sequence[str | Path],
        origin: str | None = None,
        wait: bool = False,
        progress: Progress | None = None,
    ) -> list[SourceStatus]:
        """Drop files; with `wait`, register them and run the asset graph for each to the end.
        One outcome per given path, in the order given (see ingest/outcomes.py)."""
        items = self.drop(paths, origin)
        targets = {item.target for item in items if item.target is not None}
        scan = ScanResult()
        if wait and targets:
            scan = scan_inbox(self.settings, self.db, only=targets, settle_seconds=0)
            self.run_sources([d.key for d in scan.new + scan.retry], progress=progress)
            late = [o.key for o in scan.outcomes.values() if o.outcome == "consent_applied" and o.key]
            if late:
                self.release_waiting(late)  # what a late sidecar's grants were holding
        return ingest_outcomes(items, scan, wait=wait, origin=origin, db=self.db, status_of=self._status)

    def run_sources(
        self,
        keys: Iterable[str],
        asset_selection: Sequence[dg.AssetKey] | None = None,
        progress: Progress | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, bool]:
        """Run `ingest_job` for each source key (recovery first; resumed from the last completed
        stage); returns success per key."""
        return self.runner.run_sources(keys, asset_selection, progress, tags)

    def recover(
        self, *, repair: bool = True, wanted: set[str] | None = None, sweep_temp: bool = False
    ) -> RecoveryReport:
        """Find (and with `repair`, fix) what killed processes left: see runtime/execution.py."""
        return self.runner.recover(repair=repair, wanted=wanted, sweep_temp=sweep_temp)

    def doctor(self, *, repair: bool = False) -> dict[str, Any]:
        """What recovery finds and what is readable by others under GRACE_HOME; `repair` fixes it."""
        from grace_pipelines.runtime.doctor import doctor_report

        return doctor_report(self.settings, self.recover(repair=repair, sweep_temp=True), repair=repair)

    # ---- search, ask, play ----------------------------------------------------------------
    def search(
        self, query: str, k: int = 5, mode: str = "hybrid", rerank: bool | None = None, filters: Any = None
    ) -> list[SearchResult]:
        """Best chunks for `query` with citations; only sources that still have index consent
        (hybrid by default; vector and hybrid re-ranked by their best sentence unless `rerank=False`);
        `filters`: a search.filters.SearchFilters (parse_filters reads what people type)."""
        return self._search(query, k=k, mode=mode, rerank=rerank, filters=filters)[0]

    def _search(self, query: str, **how: Any) -> tuple[list[SearchResult], Any]:
        """The results and the query's vector (an answer reuses it)."""
        c = self.clients
        retriever = Retriever(self.settings, self.db, c.embedder, c.chunk_index, c.blob_store)
        try:
            return retriever.search(query, **how), retriever.query_vector
        finally:
            self.search_warnings = retriever.warnings

    def ask(self, question: str, k: int = 5, filters: Any = None) -> Any:
        """An answer with [n] citations: generated when a chat model is configured, else
        extractive (labelled); 'nothing found' when no passage is relevant."""
        from grace_pipelines.search.answer import answer_question

        results, vector = self._search(question, k=k, mode="hybrid", filters=filters)
        return answer_question(question, results, self.clients.embedder, self.settings, question_vec=vector)

    def clip(self, citation: str, *, context_s: float = 1.0, source_key: str | None = None) -> tuple[bytes, SourceRow]:
        """The cited window of a recording (plus `context_s` either side) as WAV bytes, decoded
        in memory from the sealed original. Only sources with index consent."""
        from grace_pipelines.search.playback import cited_clip

        return cited_clip(
            citation,
            db=self.db,
            blob_store=self.clients.blob_store,
            resolve=self.resolve,
            context_s=context_s,
            source_key=source_key,
        )

    # ---- consent and purge ----------------------------------------------------------------
    def resolve(self, ref: str) -> SourceRow:
        candidates = self.db.sources_matching(ref)
        if len(candidates) > 1:
            keys = ", ".join(c.key for c in candidates)
            raise GraceError(f"several sources match {ref!r} ({keys}): use a source key")
        if not candidates:
            raise GraceError(f"no source matches {ref!r} (use a source key, or the file name of a drop)")
        return candidates[0]

    def grant(
        self,
        ref: str,
        party: str,
        scope: str = "all",
        *,
        actor: str | None = None,
        wait: bool = False,
        expires_at: datetime | None = None,
    ) -> list[int]:
        """Record `party`'s consent for `scope` (optionally until `expires_at`, UTC); `wait` runs
        what it released now."""
        row = self.resolve(ref)
        ids = decide(self.db, row, party=party, scope=scope, action="grant", actor=actor, expires_at=expires_at)
        if wait:
            self.release_waiting([row.key])
        return ids

    def revoke(
        self, ref: str, party: str, scope: str = "all", *, actor: str | None = None, wait: bool = False
    ) -> list[int]:
        """Record a revocation; search stops returning the source at once. The purge runs through
        `purge_job` (consent_sensor launches it; `wait` runs it now)."""
        row = self.resolve(ref)
        ids = decide(self.db, row, party=party, scope=scope, action="revoke", actor=actor)
        if wait:
            self.purge(row.key, reason=f"consent revoked by {party} ({scope})", only_if_needed=True)
        return ids

    def release_waiting(self, keys: Iterable[str]) -> dict[str, bool]:
        """Run now what consent was holding (what consent_sensor does under the daemon)."""
        outcome: dict[str, bool] = {}
        for row, allowed in released(self.db, self.clients.blob_store, keys):
            outcome.update(
                self.run_sources(
                    [row.key], asset_selection=[dg.AssetKey(a) for a in allowed.assets], tags={tag.TRIGGER: "consent"}
                )
            )
        return outcome

    def consent_list(self, pending: bool = False) -> list[dict[str, Any]]:
        """Per source and scope: participants, who granted, who is missing."""
        return consent_overview(self.db, pending=pending)

    def purge(
        self,
        ref: str,
        *,
        reason: str = "purge requested",
        remove_original: bool | None = None,
        only_if_needed: bool = False,
    ) -> dict[str, Any] | None:
        """Run `purge_job` for a source now; returns its receipt (None if nothing to purge).
        Journaled: one a kill interrupted is finished by the next call or any recovery."""
        row = self.resolve(ref)
        finished = self.recover(wanted={row.key}).receipts.get(row.key)
        if finished and (remove_original is not True or finished["original_removed"]):
            return finished  # an interrupted purge of this source, finished just now
        plan = requested_plan(
            self.db,
            row.key,
            purge_original_on_revoke=self.settings.purge_original_on_revoke,
            reason=reason,
            remove_original=remove_original,
            only_if_needed=only_if_needed,
        )
        if plan is None:
            return None
        return self.runner.purge(row.key, plan)

    # ---- keys, vault, audit -----------------------------------------------------------------
    def rotate_keys(self) -> dict[str, Any]:
        """Materialize `keyring` (rotate, re-wrap, verify, retire) on the GRACE_HOME instance."""
        return self.runner.rotate_keys()

    def refresh_layers(self) -> dict[str, Any]:
        """Run `layers_job` now, in process (the control room's four layered views, which
        `layers_schedule` refreshes every 15 minutes); returns the run, the assets and each check."""
        from grace_pipelines.runtime.execution import failure_message
        from grace_pipelines.runtime.recovery import run_tags

        job = self.defs.resolve_job_def("layers_job")
        with self.instance() as instance:
            result = job.execute_in_process(
                instance=instance,
                tags={tag.TRIGGER: "refresh", **run_tags()},
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": self.log_level}}}},
            )
        return {
            "run_id": result.run_id,
            "success": result.success,
            "error": None if result.success else failure_message(result),
            "assets": sorted(
                e.step_materialization_data.materialization.asset_key.to_user_string()
                for e in result.get_asset_materialization_events()
            ),
            "checks": [
                {
                    "asset": e.asset_key.to_user_string(),
                    "check": e.check_name,
                    "passed": e.passed,
                    "severity": e.severity.value,
                    "description": e.description,
                }
                for e in result.get_asset_check_evaluations()
            ],
        }

    def key_status(self) -> dict[str, Any]:
        from grace_pipelines.crypto.rotation import status
        from grace_pipelines.stores.sealed import sealed_things

        blobs = self.clients.blob_store
        return status(blobs.keyring(), sealed_things(blobs.root, self.db)).to_dict()

    def verify_keys(self) -> dict[str, Any]:
        from grace_pipelines.crypto.rotation import verify
        from grace_pipelines.stores.sealed import sealed_things

        blobs = self.clients.blob_store
        return verify(blobs.keyring(), sealed_things(blobs.root, self.db)).to_dict()

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

    # ---- status -----------------------------------------------------------------------------
    def status_of(self, key: str) -> SourceStatus:
        row = self.db.get_source(key)
        if row is None:
            raise GraceError(f"unknown source {key}")
        return self._status(row)

    def _status(self, row: SourceRow) -> SourceStatus:
        return status_for(row, self.settings, self.db, self._embedding_model)

    @cached_property
    def _embedding_model(self) -> str:
        return self.clients.embedder.code_version()

    def status(self) -> list[SourceStatus]:
        out = [self._status(row) for row in self.db.list_sources()]
        for q in self.db.list_quarantine():
            out.append(SourceStatus(q["source_key"], q["filename"], None, None, "quarantined", q["reason"]))
        return out

    def reembed(self, progress: Progress | None = None) -> dict[str, bool]:
        """Re-embed (embeddings only, chunks reused) every searchable source an earlier embedding
        model indexed, now; `reembed_sensor` does the same under `grace dev`."""
        keys = self.db.stale_embeddings(self._embedding_model)
        return self.run_sources(
            keys,
            asset_selection=[dg.AssetKey("embeddings")],
            progress=progress,
            tags={tag.REASON: "reembed", tag.EMBEDDING_MODEL: self._embedding_model},
        )

    def htm(self, window_s: float = 3600.0) -> dict[str, Any]:
        """HTM figures for the last `window_s` seconds (as the `htm_metrics` asset records them)."""
        from grace_pipelines.htm.metrics import htm_report, markdown
        from grace_pipelines.runtime.throughput import stage_throughput

        now = utcnow()
        with self.instance() as instance:
            stages = stage_throughput(instance, self.db, now - timedelta(seconds=window_s))
        report = htm_report(self.db, now, timedelta(seconds=window_s), stages=stages)
        report["markdown"] = markdown(report)
        return report

    # ---- intents ------------------------------------------------------------------------------
    def submit_intent(
        self,
        kind: str,
        sources: Sequence[str | Path] = (),
        *,
        by: str | None = None,
        model: str | None = None,
        description: str | None = None,
        actor: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Ask for `searchable` (these sources or files, by `by`), `notify` (tell me when they are
        searchable) or `reembed` (everything with `model`, by `by`); see intents/service.py."""
        from grace_pipelines.intents.service import submit_request

        embedder = lambda: self.clients.embedder  # noqa: E731 - built only for a reembed intent
        return submit_request(
            self.db,
            self.settings,
            kind,
            sources,
            by=by,
            model=model,
            embedder=embedder,
            description=description,
            actor=actor or "api",
            now=now or utcnow(),
        )

    def intent_status(self, intent_id: int) -> dict[str, Any]:
        """Progress now (done/total, failures and pending with reasons), projection, event times."""
        from grace_pipelines.intents.service import status_of

        return status_of(self.db, self.settings, intent_id, utcnow())

    def intents(self, open_only: bool = False) -> list[dict[str, Any]]:
        from grace_pipelines.intents.service import overview

        return overview(self.db, self.settings, utcnow(), open_only=open_only)

    def cancel_intent(self, intent_id: int, actor: str | None = None) -> dict[str, Any]:
        from grace_pipelines.intents.service import cancel

        return cancel(self.db, self.settings, intent_id, actor=actor or "api", now=utcnow())
