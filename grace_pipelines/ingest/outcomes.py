"""One outcome per path a person gave `grace ingest`, in the order given: refused or ignored
(with the reason; they still have the file), quarantined on its content, or the source's state,
also when another process registered or refused it first; a sidecar and a path given twice
report with the media they belong to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.state import StateDB
from grace_pipelines.ingest.intake import Intake
from grace_pipelines.ingest.media import safe_name
from grace_pipelines.ingest.scan_records import ScanResult
from grace_pipelines.ingest.status import SourceStatus


def ingest_outcomes(
    items: list[Intake],
    scan: ScanResult,
    *,
    wait: bool,
    origin: str | None,
    db: StateDB,
    status_of: Callable[[SourceRow], SourceStatus],
) -> list[SourceStatus]:
    """`items` as `drop_files` judged them, `scan` what the inbox scan of their targets found."""
    told = _Outcomes(scan, wait=wait, origin=origin, db=db, status_of=status_of)
    outcomes: list[SourceStatus | None] = [None if item.state in FOLLOWERS else told.of(item) for item in items]
    for index, item in enumerate(items):
        if item.state in FOLLOWERS:  # told with the media it belongs to, once that one is known
            first = outcomes[item.media if item.state == "sidecar" else item.same_as]  # type: ignore[index]
            assert first is not None
            outcomes[index] = _follower(item, first, items)
    return [o for o in outcomes if o is not None]


FOLLOWERS = ("sidecar", "same")  # a sidecar given beside its media; the same file given twice


def _follower(item: Intake, first: SourceStatus, items: list[Intake]) -> SourceStatus:
    if item.state == "sidecar":
        note = f"consent sidecar of {items[item.media].name}"  # type: ignore[index]
        return SourceStatus(first.source_key, item.name, None, first.origin, first.state, f"{note}; {first.why}")
    return SourceStatus(
        first.source_key, first.title, first.kind, first.origin, first.state, f"given twice; {first.why}"
    )


class _Outcomes:
    def __init__(
        self,
        scan: ScanResult,
        *,
        wait: bool,
        origin: str | None,
        db: StateDB,
        status_of: Callable[[SourceRow], SourceStatus],
    ) -> None:
        self.scan, self.wait, self.origin, self.db, self.status_of = scan, wait, origin, db, status_of
        self._refused_elsewhere: dict[str, str] | None = None

    def quarantined_by_another_process(self, title: str) -> str | None:
        if self._refused_elsewhere is None:
            self._refused_elsewhere = {q["filename"]: q["reason"] for q in self.db.list_quarantine()}
        return self._refused_elsewhere.get(title)

    def of(self, item: Intake) -> SourceStatus:
        kind, origin = (None if item.kind == "sidecar" else item.kind), self.origin
        if item.target is None:
            return SourceStatus(
                None,
                item.name,
                kind,
                origin,
                item.state if item.state != "pending" else "refused",
                item.reason or f"{item.shown}: not ingested",
            )
        title = safe_name(item.target.name)
        if not self.wait:
            return SourceStatus(None, title, kind, origin, "processing", "in the inbox; the inbox sensor picks it up")
        found = self.scan.outcomes.get(str(item.target))
        if found is not None and found.outcome == "quarantined":
            return SourceStatus(found.key, title, kind, origin, "quarantined", found.reason)
        key = found.key if found is not None and found.key else (item.late_for or (item.sha256 or "")[:16])
        row = self.db.get_source(key) if key else None
        if row is None:
            reason = self.quarantined_by_another_process(title) if found is None else None
            if reason is not None:  # another process refused it first
                return SourceStatus(None, title, kind, origin, "quarantined", reason)
            return SourceStatus(None, title, kind, origin, "processing", "in the inbox; another process is handling it")
        return self._registered(item, row, found)

    def _registered(self, item: Intake, row: SourceRow, found: Any) -> SourceStatus:
        status = self.status_of(row)
        if item.late_for is not None:
            status.why = f"consent sidecar {item.name} applied to {row.title}; {status.why}"
        elif found is None or found.outcome == "registered":
            status.why = f"already registered by another process; {status.why}"
        elif found.outcome == "duplicate":
            status.why = f"the same bytes as source {row.key} ({row.title}); {status.why}"
        return status
