"""Recovery and purge promises, each a regression test for a fault found on main:
a purge whose LanceDB delete committed before a kill is finished (versions cleaned, bytes
gone); `Grace.purge` returns its own source's receipt; one tampered text key does not break
every search; a process waiting for a pool slot goes on when the holder is killed, and stops
on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import wave
from pathlib import Path

import dagster as dg
import pytest

from grace_pipelines.api import Grace

from ..conftest import FIXTURES, drop_file
from .test_faults import GRACE, OWNER_GRANTS_ALL, ROOT, _env, _grace, _lance_files_containing, consented

NOTES = (
    "# Plans\n\nThe zebra quartet rehearses on Thursday. Budget sign-off waits for Priya.\n\n"
    "# Travel\n\nWe moved the offsite to the lake house because the hotel cancelled.\n"
)


def _doc(tmp_path: Path, name: str, text: str = NOTES) -> Path:
    return drop_file(tmp_path, name=name, data=text, **OWNER_GRANTS_ALL, age_s=None)


def test_purge_interrupted_after_the_delete_commit_is_finished(tmp_path: Path) -> None:
    grace = Grace(tmp_path / "grace")
    grace.ingest([_doc(tmp_path, "victim-notes.md")], wait=True)
    row = grace.db.find_source("victim-notes.md")
    assert row is not None and row.stage == "searchable"
    store = grace.defs.resources["vector_store"]
    # what a kill right after LanceDB's delete commit leaves: the journal entry, no current rows,
    # and the rows still in the data files of older versions
    grace.db.begin_purge(row.key, {"remove_original": True, "reason": "consent revoked"}, run_id=None)
    store.table().delete(f"source_key = '{row.key}'")
    assert store.count(row.key) == 0
    assert _lance_files_containing(grace.settings.home, [b"victim-notes.md"])
    assert grace.status_of(row.key).state == "purging"
    assert grace.search("zebra quartet rehearsal", k=3) == []  # a purge in progress is never shown

    report = grace.recover()  # any entry point: finishes the journaled purge
    assert report.purges and report.purges[0]["source_key"] == row.key
    receipt = report.receipts[row.key]
    assert receipt["resumed"] is True and receipt["original_removed"] is True
    assert _lance_files_containing(grace.settings.home, [b"victim-notes.md"]) == []
    assert grace.status_of(row.key).state == "purged"
    assert grace.db.unfinished_purges() == []
    assert grace.recover().purges == []  # finished exactly once
    assert grace.audit_verify()["ok"]


@pytest.mark.slow  # a race regression over two ingests
def test_purge_returns_its_own_receipt_when_another_source_finishes_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grace = Grace(tmp_path / "grace")
    grace.ingest(
        [_doc(tmp_path, "a-notes.md"), _doc(tmp_path, "b-notes.md", "# B\n\nThe garden needs tomatoes.\n")], wait=True
    )
    a, b = grace.db.find_source("a-notes.md"), grace.db.find_source("b-notes.md")
    import grace_pipelines.assets.purge as purge_module

    real = purge_module.purge_source

    def concurrent(key: str, **kwargs):  # B's purge lands while A's runs
        receipt = real(key, **kwargs)
        with grace.instance() as instance:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    "purge_receipt", partition=b.key, metadata={"receipt": dg.MetadataValue.json({"source_key": b.key})}
                )
            )
        return receipt

    monkeypatch.setattr(purge_module, "purge_source", concurrent)
    receipt = grace.purge(a.key)
    assert receipt is not None and receipt["source_key"] == a.key


@pytest.mark.slow  # starts `grace` twice in subprocesses
def test_one_tampered_text_key_skips_that_source_and_says_so(tmp_path: Path) -> None:
    grace = Grace(tmp_path / "grace")
    fine = _doc(tmp_path, "fine-notes.md", "# Fine\n\nThe zebra quartet plays jazz on Fridays.\n")
    grace.ingest([_doc(tmp_path, "broken-notes.md"), fine], wait=True)
    broken = grace.db.find_source("broken-notes.md")
    key_file = grace.settings.store / broken.key / "text.key"
    data = bytearray(key_file.read_bytes())
    data[-3] ^= 0xFF
    key_file.write_bytes(bytes(data))
    hits = grace.search("zebra quartet", k=5)
    assert [h.title for h in hits] == ["fine-notes.md"]
    assert len(grace.search_warnings) == 1 and "broken-notes.md" in grace.search_warnings[0]
    result = _grace(grace.settings.home, "search", "zebra quartet", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert [r["title"] for r in payload["results"]] == ["fine-notes.md"] and len(payload["skipped"]) == 1
    assert "broken-notes.md" in result.stderr  # said on stderr too
    assert _grace(grace.settings.home, "ask", "who plays jazz?").returncode == 0


def _long_recording(path: Path, minutes: float) -> Path:
    with wave.open(str(FIXTURES / "migration.wav")) as src:
        params, frames = src.getparams(), src.readframes(src.getnframes())
    silence = b"\x00\x00" * 16000
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        total = 0.0
        while total < minutes * 60:
            out.writeframes(frames + silence)
            total += len(frames) / 2 / 16000 + 1
    return path


def _wait_stage(grace_home: Path, title: str, stages: set[str], timeout: float = 120) -> str:
    from grace_pipelines.db.state import StateDB

    deadline = time.time() + timeout
    while time.time() < deadline:
        if (grace_home / "grace.db").exists():
            for row in StateDB(f"sqlite:///{grace_home / 'grace.db'}").list_sources():
                if row.title == title and row.stage in stages:
                    return row.stage
        time.sleep(0.05)
    raise AssertionError(f"{title} never reached {stages}")


@pytest.mark.slow
def test_a_waiter_goes_on_when_the_slot_holder_is_killed_and_stops_on_sigterm(tmp_path: Path) -> None:
    home = tmp_path / "grace"
    assert _grace(home, "init").returncode == 0
    long_a = _long_recording(consented(tmp_path / "long-a.wav"), 4)
    long_c = _long_recording(consented(tmp_path / "long-c.wav"), 4.5)
    note = _doc(tmp_path, "waiting-notes.md")

    def start(*paths: Path) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*GRACE, "ingest", *map(str, paths), "--wait", "--json"],
            cwd=ROOT,
            env=_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # 1. A holds the transcription slot; B waits for it; A is killed: B must go on
    holder = start(long_a)
    _wait_stage(home, "long-a.wav", {"stored"})
    waiter = start(note)
    _wait_stage(home, "waiting-notes.md", {"stored"})
    time.sleep(1.0)
    assert waiter.poll() is None  # waiting for the slot
    holder.kill()
    holder.wait()
    out, errs = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, errs
    assert {s["title"]: s["state"] for s in json.loads(out)["sources"]}["waiting-notes.md"] == "searchable"

    # 2. C holds the slot (A's resume is done by now or runs in C); D waits; SIGTERM ends D at once
    holder = start(long_c)
    _wait_stage(home, "long-c.wav", {"stored"})
    waiter = start(_doc(tmp_path, "second-notes.md", "# Second\n\nThe garden needs tomatoes.\n"))
    _wait_stage(home, "second-notes.md", {"stored"})
    time.sleep(1.0)
    assert waiter.poll() is None
    sent = time.time()
    waiter.send_signal(signal.SIGTERM)
    waiter.wait(timeout=15)
    assert waiter.returncode == 128 + signal.SIGTERM
    assert time.time() - sent < 10
    holder.wait(timeout=300)
    # the next command resumes what the terminated one left
    again = _grace(home, "ingest", str(tmp_path / "second-notes.md"), "--wait", "--json")
    assert again.returncode == 0, again.stderr
    states = {s["title"]: s["state"] for s in json.loads(again.stdout)["sources"]}
    assert states["second-notes.md"] == "searchable"


def test_a_killed_writers_temp_copy_is_removed_by_the_purge(tmp_path: Path) -> None:
    """A rotation or write killed between write and rename leaves `store/<key>/.tmp-<pid>-*`,
    a sealed copy that listing skipped: the purge (and recovery) must remove it."""
    grace = Grace(tmp_path / "grace")
    grace.ingest([_doc(tmp_path, "temp-notes.md")], wait=True)
    row = grace.db.find_source("temp-notes.md")
    folder = grace.settings.store / row.key
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs: the writer that was killed
    leftover = folder / f".tmp-{gone.pid}-abc123"
    leftover.write_bytes((folder / "original").read_bytes())
    live = folder / f".tmp-{__import__('os').getpid()}-live"  # a writer still at work: kept
    live.write_bytes(b"in progress")
    store = grace.defs.resources["blob_store"]
    assert store.temp_files(row.key) == [f"{row.key}/{leftover.name}"]
    assert any(t.endswith(leftover.name) for t in grace.doctor()["temp_files"])
    receipt = grace.purge(row.key, remove_original=True)  # recovery, or the purge itself, removes it
    assert receipt["original_removed"]
    assert not leftover.exists() and live.exists()
    assert list(folder.iterdir()) == [live]
    # the purge's own sweep, for a leftover that appears after recovery ran
    leftover.write_bytes(b"sealed copy")
    assert store.remove_temp_files(row.key) == [f"{row.key}/{leftover.name}"] and live.exists()


def test_doctor_finds_and_repairs_lancedb_leftovers_and_loose_modes(tmp_path: Path) -> None:
    grace = Grace(tmp_path / "grace")
    grace.ingest([_doc(tmp_path, "lance-notes.md")], wait=True)
    versions = next((grace.settings.lancedb).rglob("_versions"))
    leftover = versions / ".tmp_commit_killed"  # what a writer killed mid-commit leaves
    leftover.write_bytes(b"partial manifest")
    loose = grace.settings.store / "stray.txt"
    loose.write_text("x")
    loose.chmod(0o644)
    report = grace.doctor()
    assert not report["healthy"]
    assert any(t.endswith(".tmp_commit_killed") for t in report["temp_files"])
    assert any(p["path"].endswith("stray.txt") and p["mode"] == "0o644" for p in report["permissions"])
    assert leftover.exists()  # a report changes nothing
    repaired = grace.doctor(repair=True)
    assert repaired["healthy"] and repaired["permissions_fixed"] == 1
    assert not leftover.exists() and (loose.stat().st_mode & 0o777) == 0o600
    assert grace.doctor()["healthy"]
    assert grace.search("zebra quartet", k=1)[0].title == "lance-notes.md"  # the index still works
