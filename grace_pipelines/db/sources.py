"""The source registry: one row per dropped source, its stage and its HTM ledger columns;
and the quarantine log of files refused on their content."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.repository import Repository
from grace_pipelines.db.schema import (
    STAGES,
    Stage,
    quarantine_table,
    sources_table,
    utcnow,
)


class SourceRepository(Repository):
    """Sources and the quarantine log (mixed into StateDB)."""

    def register_source(
        self,
        *,
        key: str,
        sha256: str,
        filename: str,
        title: str,
        kind: str,
        ext: str,
        origin: str,
        size: int,
        duration_s: float | None,
        participants: Sequence[str],
        inbox_path: str | None,
        dropped_at: datetime | None = None,
        recorded_at: datetime | None = None,
        **ledger: Any,
    ) -> bool:
        """Insert a new source (with its HTM ledger values, see grace_pipelines.htm.dispatcher.plan);
        False (and nothing changed) if the key is already known. `recorded_at`: when it was
        recorded (creation-time tag, else the file's mtime), kept apart from `dropped_at`."""
        now = dropped_at or utcnow()
        try:
            with self.begin() as conn:
                conn.execute(
                    sources_table.insert().values(
                        key=key,
                        sha256=sha256,
                        filename=filename,
                        title=title,
                        kind=kind,
                        ext=ext,
                        origin=origin,
                        bytes=size,
                        duration_s=duration_s,
                        participants=list(participants),
                        inbox_path=inbox_path,
                        dropped_at=now,
                        recorded_at=recorded_at,
                        stage=Stage.REGISTERED,
                        reason=None,
                        updated_at=now,
                        **ledger,
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def get_source(self, key: str) -> SourceRow | None:
        with self.begin() as conn:
            row = conn.execute(sources_table.select().where(sources_table.c.key == key)).first()
        return SourceRow(**row._mapping) if row else None

    def get_sources(self, keys: Sequence[str]) -> dict[str, SourceRow]:
        """The known ones among `keys`, in one query (search looks up every hit's source)."""
        if not keys:
            return {}
        with self.begin() as conn:
            rows = conn.execute(sources_table.select().where(sources_table.c.key.in_(list(set(keys)))))
            return {r.key: SourceRow(**r._mapping) for r in rows}

    def list_sources(self) -> list[SourceRow]:
        with self.begin() as conn:
            rows = conn.execute(sources_table.select().order_by(sources_table.c.dropped_at))
            return [SourceRow(**r._mapping) for r in rows]

    def find_source(self, ref: str) -> SourceRow | None:
        """A source by key, unique key prefix, file name, title, or a path ending in the name."""
        candidates = self.sources_matching(ref, limit=2)
        return candidates[0] if len(candidates) == 1 else None

    def sources_matching(self, ref: str, limit: int = 5) -> list[SourceRow]:
        """Every source `ref` could mean (at most `limit`): the exact key alone when it is one."""
        ref = ref.strip()
        name = ref.replace("\\", "/").rsplit("/", 1)[-1]
        exact = self.get_source(ref)
        if exact:
            return [exact]
        c = sources_table.c
        match = sa.or_(c.filename == name, c.title == name)
        if len(ref) >= 4 and all(ch in "0123456789abcdef" for ch in ref):  # a key prefix (hex: no LIKE wildcards)
            match = sa.or_(match, c.key.like(f"{ref}%"))
        with self.begin() as conn:  # in SQL: thousands of sources are not read to find one
            return [SourceRow(**r._mapping) for r in conn.execute(sources_table.select().where(match).limit(limit))]

    def update_source(self, key: str, **values: Any) -> None:
        values["updated_at"] = utcnow()
        with self.begin() as conn:
            conn.execute(sources_table.update().where(sources_table.c.key == key).values(**values))

    def stale_embeddings(self, model: str, limit: int | None = None) -> list[str]:
        """Searchable sources whose vectors came from another embedding model (or an unknown
        one), oldest first: the work a model change leaves."""
        c = sources_table.c
        query = (
            sa.select(c.key)
            .where(c.stage == Stage.SEARCHABLE, sa.or_(c.embedding_model.is_(None), c.embedding_model != model))
            .order_by(c.dropped_at)
        )
        if limit is not None:
            query = query.limit(limit)
        with self.begin() as conn:
            return [row.key for row in conn.execute(query)]

    def set_stage(self, key: str, stage: str, reason: str | None = None) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        self.update_source(key, stage=stage, reason=reason)

    def sources_in_stages(self, stages: Sequence[str]) -> list[SourceRow]:
        with self.begin() as conn:
            rows = conn.execute(sources_table.select().where(sources_table.c.stage.in_(list(stages))))
            return [SourceRow(**r._mapping) for r in rows]

    def record_quarantine(self, *, filename: str, path: str, reason: str, source_key: str | None = None) -> None:
        with self.begin() as conn:
            conn.execute(
                quarantine_table.insert().values(
                    filename=filename, path=path, reason=reason, source_key=source_key, at=utcnow()
                )
            )

    def list_quarantine(self) -> list[dict[str, Any]]:
        with self.begin() as conn:
            rows = conn.execute(quarantine_table.select().order_by(quarantine_table.c.id))
            return [dict(r._mapping) for r in rows]
