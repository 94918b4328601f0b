"""The `Grace` facade's speaker verbs: voices remembered across recordings (audio/profiles.py)
and the transcript export (audio/export.py). A mixin so api.py stays one screenful per concern."""

from __future__ import annotations

from typing import Any

from grace_pipelines.db.schema import utcnow
from grace_pipelines.errors import GraceError


class SpeakersMixin:
    """`Grace.speakers()`, `name_speaker`, `merge_speakers`, `forget_speaker`, `export`."""

    db: Any
    clients: Any

    def resolve(self, ref: str) -> Any:  # Grace's
        raise NotImplementedError

    def speakers(self, ref: str | None = None) -> list[dict[str, Any]]:
        """Every recording's speakers (or one source's): label, name, how, similarity, seconds."""
        key = self.resolve(ref).key if ref else None
        rows = self.db.source_speakers(key)
        titles = {k: r.title for k, r in self.db.get_sources(sorted({s["source_key"] for s in rows})).items()}
        return [
            {
                "source_key": s["source_key"],
                "title": titles.get(s["source_key"]),
                "label": s["label"],
                "name": s["name"],
                "how": s["how"],
                "similarity": s["similarity"],
                "seconds": round(s["seconds"], 1),
                "first_s": s["first_s"],
            }
            for s in rows
        ]

    def release_waiting(self, keys: Any) -> dict[str, bool]:  # Grace's
        raise NotImplementedError

    def _release_held_recordings(self) -> list[str]:
        """Run the index stages of recordings a naming released (a voice now accounted for)."""
        from grace_pipelines.db.schema import Stage
        from grace_pipelines.ingest.consent_gate import consent_check_result

        held = sorted({s["source_key"] for s in self.db.source_speakers()})
        waiting = [k for k, r in self.db.get_sources(held).items() if r.stage == Stage.AWAITING_CONSENT]
        released = [k for k, ok in self.release_waiting(waiting).items() if ok] if waiting else []
        for row in self.db.get_sources([k for k in waiting if k not in released]).values():
            if row.stage == Stage.AWAITING_CONSENT:
                consent_check_result(self.db, row, "index")  # the hold's reason, as it stands now
        return released

    def name_speaker(
        self, ref: str, label: str, name: str, *, actor: str | None = None, wait: bool = True
    ) -> dict[str, Any]:
        """Name speaker `label` (S1, S2...) of a recording; that voice is labelled everywhere.
        A name outside a recording's participants makes that person one (their grant is then
        needed); `wait`: index now what the naming released (a voice nobody had declared)."""
        from grace_pipelines.audio.profiles import name_speaker
        from grace_pipelines.governance.audit.log import record

        who = actor or "api"
        done = name_speaker(self.db, self.clients.blob_store, self.resolve(ref).key, label, name, who)
        record(self.db, actor=who, action="speakers.name", subject=done["name"], details={"source": done["source_key"]})
        if wait:
            done["released"] = self._release_held_recordings()
        return done

    def merge_speakers(self, name: str, into: str, *, actor: str | None = None) -> dict[str, Any]:
        from grace_pipelines.audio.profiles import merge_profiles
        from grace_pipelines.governance.audit.log import record

        done = merge_profiles(self.db, self.clients.blob_store, name, into)
        record(self.db, actor=actor or "api", action="speakers.merge", subject=done["name"], details=done)
        return done

    def forget_speaker(self, name: str, *, actor: str | None = None) -> dict[str, Any]:
        """Delete a person's voice profile and every voice embedding of theirs (audited receipt)."""
        from grace_pipelines.audio.profiles import forget_profile
        from grace_pipelines.governance.audit.log import record

        done = forget_profile(self.db, self.clients.blob_store, name)
        record(self.db, actor=actor or "api", action="speakers.forget", subject=done["name"], details=done)
        return done

    def export(self, ref: str, fmt: str) -> str:
        """A recording's transcript with speakers and timings as srt | vtt | md | json (decrypted
        only into the returned text); refused without the index consent of every participant."""
        from grace_pipelines.audio.export import render
        from grace_pipelines.audio.profiles import names_for
        from grace_pipelines.governance.consent import missing_parties
        from grace_pipelines.stores.blobs import TRANSCRIPT

        row = self.resolve(ref)
        missing = missing_parties(row.participants, self.db.consent_events_for([row.key])[row.key], "index", utcnow())
        if missing:
            raise GraceError(f"{row.title}: no index consent from {', '.join(missing)}; nothing exported")
        if not self.clients.blob_store.exists(row.key, TRANSCRIPT):
            raise GraceError(f"{row.title}: no transcript yet (state: {row.stage})")
        payload = self.clients.blob_store.get_json(row.key, TRANSCRIPT)
        return render(payload, fmt, title=row.title, names=names_for(self.db, row.key))
