"""The purge journal: a purge is written down before anything is removed, so one that a kill
interrupted is found and finished by the next entry point (grace_pipelines.runtime.recovery)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from grace_pipelines.db.repository import Repository
from grace_pipelines.db.schema import Stage, purge_journal_table, sources_table, utcnow


class PurgeJournal(Repository):
    """The purge_journal table (mixed into StateDB)."""

    def begin_purge(self, key: str, plan: dict[str, Any], run_id: str | None) -> dict[str, Any]:
        """Write the purge down before anything is removed (or take over an unfinished one,
        keeping what the earlier attempt found); returns the journal entry."""
        c = purge_journal_table.c
        with self.begin() as conn:
            row = conn.execute(
                purge_journal_table.select().where(c.source_key == key, c.finished_at.is_(None)).order_by(c.id.desc())
            ).first()
            if row is None:
                new_id = conn.execute(
                    purge_journal_table.insert().values(
                        source_key=key,
                        plan=dict(plan),
                        progress={},
                        run_id=run_id,
                        started_at=utcnow(),
                    )
                ).inserted_primary_key[0]
                entry = {"id": int(new_id), "source_key": key, "plan": dict(plan), "progress": {}, "resumed": False}
            else:
                conn.execute(purge_journal_table.update().where(c.id == row.id).values(run_id=run_id))
                entry = {
                    "id": int(row.id),
                    "source_key": key,
                    "plan": dict(row.plan),
                    "progress": dict(row.progress or {}),
                    "resumed": True,
                }
            conn.execute(
                sources_table.update()
                .where(sources_table.c.key == key)
                .values(stage=Stage.PURGING, reason="purge in progress", updated_at=utcnow())
            )
        return entry

    def purge_progress(self, entry_id: int, **progress: Any) -> None:
        """Add what this attempt removed (counts and bytes add up, names join) to what earlier attempts removed."""
        c = purge_journal_table.c
        with self.begin() as conn:
            row = conn.execute(sa.select(c.progress).where(c.id == entry_id)).first()
            merged = dict(row.progress or {}) if row else {}
            for name, value in progress.items():
                if isinstance(value, int):
                    merged[name] = merged.get(name, 0) + value
                elif isinstance(value, list):
                    merged[name] = list(dict.fromkeys([*merged.get(name, []), *value]))
                else:
                    merged[name] = value
            conn.execute(purge_journal_table.update().where(c.id == entry_id).values(progress=merged))

    def purge_entry(self, entry_id: int) -> dict[str, Any] | None:
        with self.begin() as conn:
            row = conn.execute(purge_journal_table.select().where(purge_journal_table.c.id == entry_id)).first()
        return dict(row._mapping) if row else None

    def finish_purge(self, entry_id: int) -> None:
        with self.begin() as conn:
            conn.execute(
                purge_journal_table.update().where(purge_journal_table.c.id == entry_id).values(finished_at=utcnow())
            )

    def unfinished_purges(self) -> list[dict[str, Any]]:
        c = purge_journal_table.c
        with self.begin() as conn:
            rows = conn.execute(purge_journal_table.select().where(c.finished_at.is_(None)).order_by(c.id))
            return [dict(r._mapping) for r in rows]
