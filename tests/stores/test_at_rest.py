"""Nothing a person said or wrote rests in plaintext under GRACE_HOME, the search index
included; tampering and wrong keys are clear errors naming the blob."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from grace_pipelines.api import Grace
from grace_pipelines.stores.blobs import BlobError, forget_keyrings

from ..conftest import FIXTURES

# each test ingests: tests/crypto covers tampering and wrong keys fast, and the fast purge test
# scans GRACE_HOME for plaintext
pytestmark = pytest.mark.slow


def _scan(root: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            lowered = data.lower()
            if any(n in data or n.lower() in lowered for n in needles):
                hits.append(str(path.relative_to(root)))
    return hits


def test_no_plaintext_after_ingest(home: Path) -> None:
    grace = Grace(home)
    grace.init()
    with grace.instance():
        outcomes = grace.ingest([FIXTURES / "standup.mp3", FIXTURES / "project_notes.md"], wait=True)
        grace.grant("project_notes.md", "me", "all", wait=True)
    assert {o.state for o in outcomes} <= {"searchable", "awaiting_consent"}
    assert grace.search("When is the quarterly report due?", k=1)[0].title == "standup.mp3"
    assert grace.search("Dana Whitfield", k=1, mode="keyword")[0].title == "project_notes.md"
    raw = (FIXTURES / "standup.mp3").read_bytes()[:4096]
    phrases = [
        b"quarterly report",
        b"budget figures",
        b"Dana Whitfield",
        b"customer analytics dashboard",
        b"Orion is the internal codename",
        raw[1024:1088],
        raw[:4096],
    ]
    assert _scan(home, phrases) == []
    key_file = home / "keys" / "master.key"
    assert key_file.stat().st_mode & 0o077 == 0, "master key file is private"


def test_tampered_blob_and_wrong_master_key_are_clear_errors(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance)
        grace.ingest([FIXTURES / "groceries.ogg"], wait=True)
        key = grace.resolve("groceries.ogg").key
        store = grace.defs.resources["blob_store"]
        blob = home / "store" / key / "transcript.json"
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0x01
        blob.write_bytes(bytes(data))
        with pytest.raises(BlobError) as err:
            store.get_json(key, "transcript.json")
        assert f"{key}/transcript.json" in str(err.value)

        forget_keyrings()
        monkeypatch.setenv("GRACE_MASTER_KEY", "A" * 43 + "=")  # a valid but wrong 32-byte key
        with pytest.raises(Exception) as wrong:
            store.get_bytes(key, "original")
        assert "wrong master key" in str(wrong.value)
    forget_keyrings()
