"""The intents repository: requested outcomes with a deadline, the sources each covers, their
last recorded progress, and the once-only markers of their events.

Status changes and event markers are guarded UPDATEs (`WHERE status = ...`, `WHERE notified_at
IS NULL`), so two evaluators (a sensor tick and a CLI call) never fire the same event twice.
Lowering a covered source's SLA deadline touches only `sla_due` and `priority`, never
`updated_at`: recovery reads `updated_at` to tell a stuck source from a fresh one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from grace_pipelines import tags
from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.repository import Repository
from grace_pipelines.db.schema import (
    DONE_STAGES,
    intent_sources_table,
    intents_table,
    quarantine_table,
    sources_table,
)

LIVE_STATUSES = ("open", "overdue")  # intents still being worked on (their runs carry the tag)


@dataclass(frozen=True)
class IntentRow:
    id: int
    kind: str
    description: str
    deadline: datetime | None
    created_at: datetime
    created_by: str
    status: str
    model: str | None
    done: int
    total: int
    failed: int
    progress_at: datetime | None
    completed_at: datetime | None
    overdue_at: datetime | None
    notified_at: datetime | None
    keys: tuple[str, ...] = field(default=())
    titles: dict[str, str] = field(default_factory=dict)  # key -> title given at submit (may be unregistered)


class IntentRepository(Repository):
    """Intents and their sources (mixed into StateDB)."""

    def create_intent(
        self,
        *,
        kind: str,
        description: str,
        deadline: datetime | None,
        created_by: str,
        model: str | None,
        keys: Sequence[str],
        now: datetime,
        titles: Mapping[str, str] | None = None,
    ) -> int:
        with self.begin() as conn:
            intent_id = conn.execute(
                intents_table.insert().values(
                    kind=kind,
                    description=description,
                    deadline=deadline,
                    created_at=now,
                    created_by=created_by,
                    status="open",
                    model=model,
                    done=0,
                    total=len(keys),
                    failed=0,
                )
            ).inserted_primary_key[0]
            unique = list(dict.fromkeys(keys))
            if unique:
                conn.execute(
                    intent_sources_table.insert(),
                    [{"intent_id": intent_id, "source_key": k, "title": (titles or {}).get(k)} for k in unique],
                )
        return int(intent_id)

    def _rows(self, query: Any) -> list[IntentRow]:
        with self.begin() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            ids = [r["id"] for r in rows]
            keys: dict[int, list[str]] = {i: [] for i in ids}
            titles: dict[int, dict[str, str]] = {i: {} for i in ids}
            if ids:
                c = intent_sources_table.c
                for intent_id, key, title in conn.execute(
                    sa.select(c.intent_id, c.source_key, c.title).where(c.intent_id.in_(ids)).order_by(c.source_key)
                ):
                    keys[intent_id].append(key)
                    if title:
                        titles[intent_id][key] = title
        return [IntentRow(**r, keys=tuple(keys[r["id"]]), titles=titles[r["id"]]) for r in rows]

    def get_intent(self, intent_id: int) -> IntentRow | None:
        found = self._rows(intents_table.select().where(intents_table.c.id == intent_id))
        return found[0] if found else None

    def list_intents(self, statuses: Iterable[str] | None = None) -> list[IntentRow]:
        query = intents_table.select().order_by(intents_table.c.id)
        if statuses is not None:
            query = query.where(intents_table.c.status.in_(list(statuses)))
        return self._rows(query)

    def live_intent_ids(self, keys: Iterable[str]) -> list[int]:
        """The open or overdue intents covering any of `keys`, ascending."""
        keys = list(keys)
        if not keys:
            return []
        s, i = intent_sources_table.c, intents_table.c
        query = (
            sa.select(s.intent_id)
            .join(intents_table, i.id == s.intent_id)
            .where(s.source_key.in_(keys), i.status.in_(LIVE_STATUSES))
            .distinct()
            .order_by(s.intent_id)
        )
        with self.begin() as conn:
            return [int(r[0]) for r in conn.execute(query)]

    def sources_by_key(self, keys: Iterable[str]) -> dict[str, SourceRow]:
        keys = list(keys)
        if not keys:
            return {}
        with self.begin() as conn:
            rows = conn.execute(sources_table.select().where(sources_table.c.key.in_(keys)))
            return {r.key: SourceRow(**r._mapping) for r in rows}

    def quarantine_reasons(self, keys: Iterable[str]) -> dict[str, str]:
        """Why a covered file was refused on its content (the last entry per key)."""
        keys = list(keys)
        if not keys:
            return {}
        c = quarantine_table.c
        with self.begin() as conn:
            rows = conn.execute(sa.select(c.source_key, c.reason).where(c.source_key.in_(keys)).order_by(c.id))
            return {key: reason for key, reason in rows}

    def record_progress(self, intent_id: int, *, done: int, total: int, failed: int, now: datetime) -> None:
        with self.begin() as conn:
            conn.execute(
                intents_table.update()
                .where(intents_table.c.id == intent_id)
                .values(done=done, total=total, failed=failed, progress_at=now)
            )

    def move_intent(self, intent_id: int, *, from_statuses: Sequence[str], to: str, **values: Any) -> bool:
        """Set the status when it is still one of `from_statuses`; False when another caller moved it."""
        c = intents_table.c
        with self.begin() as conn:
            done = conn.execute(
                intents_table.update()
                .where(c.id == intent_id, c.status.in_(list(from_statuses)))
                .values(status=to, **values)
            )
        return done.rowcount == 1

    def claim_intent_event(self, intent_id: int, marker: str, now: datetime) -> bool:
        """Set `marker` (notified_at | overdue_at) once; True only for the caller that set it."""
        if marker not in ("notified_at", "overdue_at"):
            raise ValueError(f"unknown intent event marker {marker!r}")
        column = intents_table.c[marker]
        with self.begin() as conn:
            done = conn.execute(
                intents_table.update().where(intents_table.c.id == intent_id, column.is_(None)).values({marker: now})
            )
        return done.rowcount == 1

    def raise_for_deadline(self, keys: Iterable[str], deadline: datetime, priority_for: Callable[[str], int]) -> int:
        """For covered sources that still owe work: `sla_due` becomes min(sla_due, deadline) and
        the priority at least `priority_for(origin)`. Returns how many rows changed."""
        c = sources_table.c
        changed = 0
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(c.key, c.origin, c.sla_due, c.priority).where(
                    c.key.in_(list(keys)), c.stage.not_in(DONE_STAGES)
                )
            ).all()
            for key, origin, due, priority in rows:
                values: dict[str, Any] = {}
                if due is None or due > deadline:
                    values["sla_due"] = deadline
                floor = priority_for(origin)
                if priority is None or priority < floor:
                    values["priority"] = floor
                if values:
                    conn.execute(sources_table.update().where(c.key == key).values(**values))
                    changed += 1
        return changed


def intent_tags(db: IntentRepository, keys: Iterable[str]) -> dict[str, str]:
    """`{grace/intent: "3"}` (or "3,5") for the live intents covering `keys`; {} when none."""
    ids = db.live_intent_ids(keys)
    return {tags.INTENT: ",".join(str(i) for i in ids)} if ids else {}
