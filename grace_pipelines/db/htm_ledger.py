"""The HTM ledger: the sources' sizing and launch columns, the launches log and the tier events,
as the dispatcher, the SLA sensor and the metrics read and write them. Claims are atomic (one
UPDATE guarded by `launched_at IS NULL`), so two launchers never start the same source."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.schema import (
    DONE_STAGES,
    QUEUED_STAGES,
    Stage,
    htm_events_table,
    launches_table,
    sources_table,
)
from grace_pipelines.db.state import StateDB


class Ledger:
    """The HTM tables in the state database (sources' ledger columns, launches, tier events)."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def waiting(self) -> list[SourceRow]:
        c = sources_table.c
        query = (
            sources_table.select()
            .where(c.stage.in_(QUEUED_STAGES), c.launched_at.is_(None), c.size_class.is_not(None))
            .order_by(c.priority.desc(), c.dropped_at)
        )
        with self.db.begin() as conn:
            return [SourceRow(**r._mapping) for r in conn.execute(query)]

    def stuck(self, before: datetime) -> list[SourceRow]:
        """Launched singly before `before` yet still only registered: the run request may have
        been lost (a daemon restart between claim and request); re-requesting with the same run
        key is harmless, Dagster drops a run key it has seen."""
        c = sources_table.c
        query = sources_table.select().where(
            c.stage.in_(QUEUED_STAGES), c.launched_at < before, c.route == "run", c.run_key.is_not(None)
        )
        with self.db.begin() as conn:
            return [SourceRow(**r._mapping) for r in conn.execute(query)]

    def unfinished(self) -> list[SourceRow]:
        """Sources the system owes work (not done, not held for consent)."""
        c = sources_table.c
        query = sources_table.select().where(
            c.stage.not_in((*DONE_STAGES, Stage.AWAITING_CONSENT)), c.size_class.is_not(None)
        )
        with self.db.begin() as conn:
            return [SourceRow(**r._mapping) for r in conn.execute(query)]

    def in_flight(self, size: str) -> dict[str, int]:
        """Launched, unfinished sources of a size class, per origin."""
        c = sources_table.c
        query = (
            sa.select(c.origin, sa.func.count())
            .where(
                c.size_class == size, c.launched_at.is_not(None), c.stage.not_in((*DONE_STAGES, Stage.AWAITING_CONSENT))
            )
            .group_by(c.origin)
        )
        with self.db.begin() as conn:
            return {origin: int(n) for origin, n in conn.execute(query)}

    def running_heavy(self) -> int:
        c = sources_table.c
        query = sa.select(sa.func.count()).where(
            c.size_class == "heavy", c.launched_at.is_not(None), c.stage.not_in((*DONE_STAGES, Stage.AWAITING_CONSENT))
        )
        with self.db.begin() as conn:
            return int(conn.execute(query).scalar_one())

    def launches_since(self, since: datetime) -> dict[str, int]:
        c = launches_table.c
        query = sa.select(c.origin, sa.func.count()).where(c.at >= since).group_by(c.origin)
        with self.db.begin() as conn:
            return {origin: int(n) for origin, n in conn.execute(query)}

    def claim(self, keys: Sequence[str], run_key: str, now: datetime, route_name: str, priority: int) -> list[str]:
        """Mark waiting sources launched; returns those this call claimed (others were taken).
        One UPDATE for the lot, then a read-back by run key (a claim's run key is unique)."""
        c = sources_table.c
        with self.db.begin() as conn:
            conn.execute(
                sources_table.update()
                .where(c.key.in_(list(keys)), c.launched_at.is_(None))
                .values(launched_at=now, run_key=run_key, route=route_name, priority=priority)
            )
            claimed = {r.key for r in conn.execute(sa.select(c.key).where(c.key.in_(list(keys)), c.run_key == run_key))}
        return [k for k in keys if k in claimed]

    def record_launch(self, launch: Any, now: datetime) -> None:
        with self.db.begin() as conn:
            conn.execute(
                launches_table.insert().values(
                    origin=launch.origin,
                    size_class=launch.size_class,
                    sources=len(launch.keys),
                    reason=launch.reason,
                    at=now,
                )
            )

    def set_route(self, key: str, route_name: str, priority: int) -> None:
        with self.db.begin() as conn:
            conn.execute(
                sources_table.update().where(sources_table.c.key == key).values(route=route_name, priority=priority)
            )

    def record_event(self, row: SourceRow, kind: str, now: datetime, detail: str | None = None) -> bool:
        """Record a tier (or starvation) event once per source; False if it was recorded before."""
        try:
            with self.db.begin() as conn:
                conn.execute(
                    htm_events_table.insert().values(
                        source_key=row.key,
                        kind=kind,
                        origin=row.origin,
                        size_class=row.size_class or "normal",
                        at=now,
                        detail=detail,
                    )
                )
            return True
        except sa.exc.IntegrityError:
            return False

    def events(self, since: datetime | None = None) -> list[dict[str, object]]:
        query = htm_events_table.select().order_by(htm_events_table.c.id)
        if since is not None:
            query = query.where(htm_events_table.c.at >= since)
        with self.db.begin() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
