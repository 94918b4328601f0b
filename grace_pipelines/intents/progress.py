"""How far an intent is, read from its sources' state, and where its status goes next (pure).

- searchable / notify: a source counts done once searchable; failed when its state says it will
  not get there (failed, no text layer, purged, quarantined: with the reason); everything else
  is pending with what it waits for (the inbox, consent, a stage of its run).
- reembed: of the covered sources still searchable (a purged one drops out: nothing to
  re-embed), done are those whose vectors came from the intent's model.

Statuses: open -> done | failed | overdue | cancelled; overdue -> done | failed | cancelled;
done, failed and cancelled are final. An intent is failed once nothing is pending and at least
one source failed; overdue once its deadline passed while work is pending.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from grace_pipelines.db.records import SourceRow

KINDS = ("searchable", "notify", "reembed")
STATUSES = ("open", "done", "failed", "overdue", "cancelled")
FINAL = ("done", "failed", "cancelled")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("done", "failed", "overdue", "cancelled"),
    "overdue": ("done", "failed", "cancelled"),
    "done": (),
    "failed": (),
    "cancelled": (),
}
FAILED_STAGES = {"failed": "failed", "no_text_layer": "no text layer", "purged": "purged", "purging": "being purged"}


@dataclass(frozen=True)
class Item:
    """One covered source: its key, title (the file name) and why it is where it is."""

    key: str
    title: str
    reason: str


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    failures: tuple[Item, ...] = ()
    pending: tuple[Item, ...] = ()
    excluded: tuple[Item, ...] = field(default=())  # reembed: covered, but nothing to re-embed any more

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def complete(self) -> bool:
        return self.done == self.total

    @property
    def settled(self) -> bool:
        """Nothing left that could still change: every source done or failed."""
        return not self.pending

    @property
    def fraction(self) -> float:
        return 1.0 if self.total == 0 else self.done / self.total

    def to_dict(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "total": self.total,
            "failed": self.failed,
            "failures": [vars(i) for i in self.failures],
            "pending": [vars(i) for i in self.pending],
            "excluded": [vars(i) for i in self.excluded],
        }


def _pending_reason(row: SourceRow) -> str:
    if row.stage == "awaiting_consent":
        return f"awaiting consent: {row.reason}" if row.reason else "awaiting consent"
    if row.stage == "registered":
        return "waiting for its run" if row.launched_at is None else "launched, not started yet"
    return f"in progress: {row.stage}"


def progress_of(
    kind: str,
    keys: Sequence[str],
    rows: Mapping[str, SourceRow],
    *,
    model: str | None = None,
    quarantined: Mapping[str, str] | None = None,
    titles: Mapping[str, str] | None = None,
) -> Progress:
    """The progress of an intent of `kind` over `keys`, given the sources' rows (a key without a
    row is not registered yet: shown by its submitted title), the quarantine reasons of refused files."""
    quarantined, titles = quarantined or {}, titles or {}
    done = 0
    failures: list[Item] = []
    pending: list[Item] = []
    excluded: list[Item] = []
    for key in keys:
        row = rows.get(key)
        if row is None:
            title = titles.get(key, key)
            if key in quarantined:
                failures.append(Item(key, title, f"quarantined: {quarantined[key]}"))
            elif kind == "reembed":
                excluded.append(Item(key, title, "no longer known"))
            else:
                pending.append(Item(key, title, "not registered yet (waiting in the inbox)"))
            continue
        if kind == "reembed":
            if row.stage in ("purged", "purging"):
                excluded.append(Item(key, row.title, "purged since: nothing to re-embed"))
            elif row.stage == "searchable" and row.embedding_model == model:
                done += 1
            elif row.stage == "failed":
                failures.append(Item(key, row.title, row.reason or "failed"))
            else:
                pending.append(Item(key, row.title, "embedded with an earlier model"))
            continue
        if row.stage == "searchable":
            done += 1
        elif row.stage in FAILED_STAGES:
            label = FAILED_STAGES[row.stage]
            failures.append(Item(key, row.title, f"{label}: {row.reason}" if row.reason else label))
        else:
            pending.append(Item(key, row.title, _pending_reason(row)))
    total = done + len(failures) + len(pending)
    return Progress(total, done, tuple(failures), tuple(pending), tuple(excluded))


def next_status(status: str, progress: Progress, deadline: datetime | None, now: datetime) -> str:
    """Where an intent goes given its progress at `now` (final statuses stay)."""
    if status in FINAL:
        return status
    if progress.complete:
        return "done"
    if progress.settled:
        return "failed"
    if deadline is not None and now > deadline:
        return "overdue"
    return status


def can_move(status: str, to: str) -> bool:
    return to in TRANSITIONS.get(status, ())


def projected_finish(now: datetime, remaining_s: Sequence[float], workers: int = 1) -> datetime:
    """When the pending work should be over: its estimated seconds shared by `workers`."""
    return now + timedelta(seconds=sum(remaining_s) / max(workers, 1))


def on_time(status: str, deadline: datetime | None, projected: datetime | None) -> bool:
    """False for an overdue intent and for an open one projected to finish after its deadline."""
    if status == "overdue":
        return False
    if status != "open" or deadline is None or projected is None:
        return True
    return projected <= deadline
