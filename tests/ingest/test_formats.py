"""Every supported container goes through the same graph: FLAC, M4A, WebM/Opus audio, MP4
video (its audio track) and a Markdown document cited by line."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from grace_pipelines.api import Grace

from ..conftest import FIXTURES


@pytest.mark.slow  # five ingests, one per container; the fast tier ingests mp3/ogg/wav
def test_formats_end_to_end(home: Path, manifest) -> None:
    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance)
        names = ["reminder.flac", "reminder.m4a", "reminder.webm", "reminder.mp4", "project_notes.md"]
        outcomes = grace.ingest([FIXTURES / n for n in names], wait=True)
        assert {o.title: o.state for o in outcomes} == {n: "awaiting_consent" for n in names}
        for name in names:
            grace.grant(name, "me", "all", wait=True)
        states = {s.title: (s.state, s.kind) for s in grace.status()}
        assert states == {
            "reminder.flac": ("searchable", "audio"),
            "reminder.m4a": ("searchable", "audio"),
            "reminder.webm": ("searchable", "audio"),
            "reminder.mp4": ("searchable", "video"),
            "project_notes.md": ("searchable", "document"),
        }

        renewal = next(s for s in manifest["reminder.mp4"]["sentences"] if "insurance needs renewal" in s["text"])
        hits = grace.search("When must the car insurance be renewed?", k=4, mode="hybrid")
        assert {h.title for h in hits} == {"reminder.flac", "reminder.m4a", "reminder.webm", "reminder.mp4"}
        for hit in hits:
            assert hit.start_s <= renewal["start_s"] + 0.5 and hit.end_s >= renewal["end_s"] - 0.5

        owner = grace.search("Who is the product owner of Orion?", k=1)[0]
        assert owner.title == "project_notes.md" and owner.kind == "document"
        assert owner.start_s is None and owner.line_start is not None
        lines = (FIXTURES / "project_notes.md").read_text().splitlines()
        covered = "\n".join(lines[owner.line_start - 1 : owner.line_end])
        assert "Dana Whitfield" in covered
        assert owner.heading == "Launch and Ownership"
        assert owner.citation == f"project_notes.md § Launch and Ownership, lines {owner.line_start}-{owner.line_end}"
