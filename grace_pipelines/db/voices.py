"""The voice tables (mixed into StateDB): profiles (a person's name) and each recording's
speakers with the profile each one is. The embeddings themselves stay sealed in the blob store."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from grace_pipelines.db.repository import Repository
from grace_pipelines.db.schema import source_speakers_table, utcnow, voice_profiles_table


class VoiceRepository(Repository):
    def profile_named(self, name: str) -> dict[str, Any] | None:
        c = voice_profiles_table.c
        with self.begin() as conn:
            row = conn.execute(
                voice_profiles_table.select().where(sa.func.lower(c.name) == name.strip().lower())
            ).first()
        return dict(row._mapping) if row else None

    def add_profile(self, name: str, actor: str) -> dict[str, Any]:
        with self.begin() as conn:
            new_id = conn.execute(
                voice_profiles_table.insert().values(name=name.strip(), created_at=utcnow(), created_by=actor)
            ).inserted_primary_key[0]
        return {"id": int(new_id), "name": name.strip()}

    def profiles(self) -> list[dict[str, Any]]:
        with self.begin() as conn:
            return [dict(r._mapping) for r in conn.execute(voice_profiles_table.select().order_by("name"))]

    def delete_profile(self, profile_id: int) -> None:
        with self.begin() as conn:
            conn.execute(
                source_speakers_table.update()
                .where(source_speakers_table.c.profile_id == profile_id)
                .values(profile_id=None, how=None, similarity=None, updated_at=utcnow())
            )
            conn.execute(voice_profiles_table.delete().where(voice_profiles_table.c.id == profile_id))

    def set_source_speakers(self, key: str, speakers: list[dict[str, Any]]) -> None:
        """Replace a recording's speakers (a re-transcription relabels them; names by a person
        are kept for labels that still exist)."""
        c = source_speakers_table.c
        with self.begin() as conn:
            named = {
                r.label: (r.profile_id, r.how, r.similarity)
                for r in conn.execute(source_speakers_table.select().where(c.source_key == key, c.how == "named"))
            }
            conn.execute(source_speakers_table.delete().where(c.source_key == key))
            for s in speakers:
                profile, how, similarity = named.get(s["label"], (None, None, None))
                conn.execute(
                    source_speakers_table.insert().values(
                        source_key=key,
                        label=s["label"],
                        seconds=s["seconds"],
                        first_s=s.get("first_s"),
                        last_s=s.get("last_s"),
                        profile_id=profile,
                        how=how,
                        similarity=similarity,
                        updated_at=utcnow(),
                    )
                )

    def source_speakers(self, key: str | None = None) -> list[dict[str, Any]]:
        """Speakers with their profile's name (None when unnamed), of one source or all."""
        s, p = source_speakers_table.c, voice_profiles_table.c
        query = (
            sa.select(source_speakers_table, p.name)
            .select_from(source_speakers_table.outerjoin(voice_profiles_table, s.profile_id == p.id))
            .order_by(s.source_key, s.label)
        )
        if key is not None:
            query = query.where(s.source_key == key)
        with self.begin() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def speaker_names_for(self, keys: list[str]) -> dict[str, dict[str, str | None]]:
        """source key -> label -> profile name (None when unnamed), for every speaker of `keys`."""
        s, p = source_speakers_table.c, voice_profiles_table.c
        out: dict[str, dict[str, str]] = {}
        if not keys:
            return out
        query = (
            sa.select(s.source_key, s.label, p.name)
            .select_from(source_speakers_table.outerjoin(voice_profiles_table, s.profile_id == p.id))
            .where(s.source_key.in_(keys))
        )
        with self.begin() as conn:
            for r in conn.execute(query):
                out.setdefault(r.source_key, {})[r.label] = r.name
        return out

    def assign_speaker(self, key: str, label: str, profile_id: int | None, how: str | None, similarity: float | None):
        c = source_speakers_table.c
        with self.begin() as conn:
            return conn.execute(
                source_speakers_table.update()
                .where(c.source_key == key, c.label == label)
                .values(profile_id=profile_id, how=how, similarity=similarity, updated_at=utcnow())
            ).rowcount

    def move_speakers(self, from_profile: int, to_profile: int) -> None:
        with self.begin() as conn:
            conn.execute(
                source_speakers_table.update()
                .where(source_speakers_table.c.profile_id == from_profile)
                .values(profile_id=to_profile, updated_at=utcnow())
            )

    def remove_source_speakers(self, key: str, labels: list[str]) -> None:
        c = source_speakers_table.c
        with self.begin() as conn:
            conn.execute(source_speakers_table.delete().where(c.source_key == key, c.label.in_(labels)))

    def forget_source_speakers(self, key: str) -> None:
        with self.begin() as conn:
            conn.execute(source_speakers_table.delete().where(source_speakers_table.c.source_key == key))

    def sources_spoken_by(self, profile_ids: list[int]) -> dict[str, set[str]]:
        """source key -> the labels there that are one of these profiles."""
        c = source_speakers_table.c
        out: dict[str, set[str]] = {}
        with self.begin() as conn:
            for r in conn.execute(source_speakers_table.select().where(c.profile_id.in_(profile_ids))):
                out.setdefault(r.source_key, set()).add(r.label)
        return out
