"""inbox_sensor on a real Dagster test instance: partitions, runs, cursor, partial files,
quarantine, duplicates and broken sidecars."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import pytest

from grace_pipelines.db.state import StateDB
from grace_pipelines.definitions import build_definitions
from grace_pipelines.ingest.inbox import scan_inbox
from grace_pipelines.settings import load_settings

from ..conftest import FIXTURES, Driver, drop_file

GRANT_ME = b'{"grants": [{"party": "me", "scopes": ["all"]}]}'


def _age(path: Path, seconds: float = 30) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


@pytest.fixture
def setup(home: Path):
    # tiny_batch_wait_s=0: tiny files launch on the tick that sees them (batching: tests/htm)
    settings = load_settings(home=home, settle_seconds=2.0, tiny_batch_wait_s=0)
    settings.ensure_dirs()
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        yield settings, defs, Driver(defs, instance), StateDB(settings.state_url)


def test_new_files_become_partitions_and_runs(setup) -> None:
    settings, _defs, driver, db = setup
    drop_file(settings.inbox, "standup.mp3")
    drop_file(settings.inbox / "meeting", "migration.wav")
    drop_file(settings.inbox, "project_notes.md")
    result = driver.tick("inbox_sensor")
    keys = {r.partition_key for r in result.run_requests}
    assert len(keys) == 3
    assert set(driver.instance.get_dynamic_partitions("sources")) == keys
    assert len({r.run_key for r in result.run_requests}) == 3
    sizes = {
        db.get_source(r.partition_key).title: (r.tags["grace/size_class"], int(r.tags["dagster/priority"]))
        for r in result.run_requests
    }
    assert sizes == {"standup.mp3": ("tiny", 20), "migration.wav": ("tiny", 10), "project_notes.md": ("tiny", 0)}
    assert all(r.tags["grace/origin"] == db.get_source(r.partition_key).origin for r in result.run_requests)
    origins = {db.get_source(k).title: db.get_source(k).origin for k in keys}
    assert origins == {"standup.mp3": "voice_note", "migration.wav": "meeting", "project_notes.md": "document"}
    for k in keys:
        assert len(k) == 16 and int(k, 16) >= 0
    # cursor: the next tick has nothing new
    again = driver.tick("inbox_sensor")
    assert again.run_requests == [] and again.skip_reason


def test_partial_and_hidden_files_wait(setup) -> None:
    settings, _defs, driver, db = setup
    fresh = drop_file(settings.inbox, "standup.mp3", age_s=None)  # still being written
    drop_file(settings.inbox, "groceries.ogg", name="groceries.ogg.part")
    drop_file(settings.inbox, "migration.wav", name=".hidden.wav")
    first = driver.tick("inbox_sensor")
    assert first.run_requests == []
    assert "1 still being written" in first.skip_reason.skip_message
    _age(fresh)
    second = driver.tick("inbox_sensor")
    assert [db.get_source(r.partition_key).title for r in second.run_requests] == ["standup.mp3"]
    os.rename(settings.inbox / "groceries.ogg.part", settings.inbox / "groceries.ogg")  # download finished
    third = driver.tick("inbox_sensor")
    assert [db.get_source(r.partition_key).title for r in third.run_requests] == ["groceries.ogg"]


def test_bad_files_are_quarantined_with_reason_and_others_go_on(setup) -> None:
    settings, _defs, driver, db = setup
    for name in ("corrupt.mp3", "empty.wav", "unknown.xyz", "standup.mp3"):
        drop_file(settings.inbox, name)
    hostile = "-rf \x1b[31mred\nname.wav"
    drop_file(settings.inbox, name=hostile, data=b"RIFF....not really a wave file")
    result = driver.tick("inbox_sensor")
    assert len(result.run_requests) == 1
    reasons = {q["filename"]: q["reason"] for q in db.list_quarantine()}
    assert "not decodable audio" in reasons["corrupt.mp3"]
    assert "empty (0 bytes)" in reasons["empty.wav"]
    assert "unsupported file type .xyz" in reasons["unknown.xyz"]
    hostile_entry = next(name for name in reasons if "red" in name)
    assert "\n" not in hostile_entry and "\x1b" not in hostile_entry
    files = sorted(p.name for p in settings.quarantine.iterdir())
    assert sum(f.endswith(".reason.txt") for f in files) == 4
    for reason_file in settings.quarantine.glob("*corrupt.mp3.reason.txt"):
        assert "corrupt.mp3" in reason_file.read_text() and "not decodable" in reason_file.read_text()
    # nothing lost: the quarantined bytes are kept
    kept = next(settings.quarantine.glob("*-corrupt.mp3"))
    assert kept.read_bytes() == (FIXTURES / "corrupt.mp3").read_bytes()
    assert [p.name for p in settings.inbox.iterdir()] == ["standup.mp3"]


def test_same_bytes_twice_make_one_source(setup) -> None:
    settings, _defs, driver, db = setup
    drop_file(settings.inbox, "standup.mp3")
    drop_file(settings.inbox, "standup.mp3", name="standup copy.mp3")
    result = driver.tick("inbox_sensor")
    assert len(result.run_requests) == 1
    assert len(db.list_sources()) == 1
    assert len(list(settings.inbox.iterdir())) == 1, "the duplicate copy is removed"
    drop_file(settings.inbox, "standup.mp3", name="standup again.mp3")
    assert driver.tick("inbox_sensor").run_requests == []
    assert len(db.list_sources()) == 1


def test_sidecar_grants_are_recorded_and_broken_sidecar_hits_only_its_source(setup) -> None:
    settings, _defs, driver, db = setup
    drop_file(settings.inbox, "standup.mp3.consent.json")
    drop_file(settings.inbox, "standup.mp3")
    drop_file(
        settings.inbox,
        name="groceries.ogg.consent.json",
        data=b'{"participants": ["me"], "grants": [{"party": "me", "scopes": ["teleport"]}]}',
    )
    drop_file(settings.inbox, "groceries.ogg")
    result = driver.tick("inbox_sensor")
    (request,) = result.run_requests
    row = db.get_source(request.partition_key)
    assert row.title == "standup.mp3" and row.participants == ["me", "priya"]
    rows = db.consent_rows(source_key=row.key)
    assert {(r["party"], r["scope"], r["method"]) for r in rows} == {
        ("me", "transcribe", "sidecar"),
        ("me", "index", "sidecar"),
        ("priya", "transcribe", "sidecar"),
        ("priya", "index", "sidecar"),
    }
    (q,) = db.list_quarantine()
    assert q["filename"] == "groceries.ogg"
    assert "groceries.ogg.consent.json" in q["reason"] and "unknown consent scope 'teleport'" in q["reason"]
    assert [p.name for p in settings.inbox.iterdir()] == ["standup.mp3"], "sidecars consumed, media waits for its run"


def test_late_sidecar_applies_to_registered_source(setup) -> None:
    settings, _defs, driver, db = setup
    drop_file(settings.inbox, "migration.wav")
    (request,) = driver.tick("inbox_sensor").run_requests
    drop_file(settings.inbox, name="migration.wav.consent.json", data=GRANT_ME)
    driver.tick("inbox_sensor")
    assert {r["scope"] for r in db.consent_rows(source_key=request.partition_key)} == {"transcribe", "index"}
    assert not (settings.inbox / "migration.wav.consent.json").exists()


def test_cursor_caps_work_per_tick_and_never_repeats(home: Path) -> None:
    settings = load_settings(home=home, settle_seconds=0.0, max_files_per_tick=40)
    settings.ensure_dirs()
    db = StateDB(settings.state_url)
    for i in range(100):
        drop_file(settings.inbox, name=f"note-{i:03d}.txt", data=f"note number {i}\n".encode())
    cursor, seen = None, []
    for _ in range(4):
        result = scan_inbox(settings, db, cursor)
        cursor = result.cursor
        seen.extend(d.key for d in result.new)
    assert len(seen) == 100 and len(set(seen)) == 100
    assert scan_inbox(settings, db, cursor).new == []


def test_dropping_a_failed_source_again_requests_a_fresh_run(setup) -> None:
    settings, _defs, driver, db = setup
    drop_file(settings.inbox, "standup.mp3")
    (first,) = driver.tick("inbox_sensor").run_requests
    db.set_stage(first.partition_key, "failed", reason="engine was down")
    (settings.inbox / "standup.mp3").unlink()
    drop_file(settings.inbox, "standup.mp3")
    (retry,) = driver.tick("inbox_sensor").run_requests
    assert retry.partition_key == first.partition_key
    assert retry.run_key != first.run_key
    assert db.get_source(first.partition_key).stage == "registered"


def test_a_file_named_like_a_credential_is_quarantined_without_leaking(setup) -> None:
    settings, _defs, driver, db = setup
    name = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX1234567890abcd.xyz"
    drop_file(settings.inbox, name=name, data=b"not media")
    driver.tick("inbox_sensor")  # must not raise
    (q,) = db.list_quarantine()
    assert "unsupported file type" in q["reason"]
    from grace_pipelines.governance.audit import AuditLog

    entry = AuditLog(db).tail(1)[0]
    assert entry.action == "quarantine" and entry.subject == "(redacted)"
    assert "ABCDEFGHIJKLMNOP" not in str(entry.to_dict())


def test_an_overlong_name_does_not_stop_the_inbox(setup) -> None:
    settings, _defs, driver, db = setup
    long_name = "meeting notes " + "x" * 236 + ".md"  # 253 bytes: NAME.consent.json cannot exist
    drop_file(settings.inbox, name=long_name, data=b"# Long\n\nA note with a very long name.\n")
    drop_file(settings.inbox, "standup.mp3")
    result = driver.tick("inbox_sensor")  # must not raise (ENAMETOOLONG on the sidecar probe)
    titles = sorted(db.get_source(r.partition_key).title for r in result.run_requests)
    assert len(titles) == 2 and titles[1] == "standup.mp3"
    assert titles[0].startswith("meeting notes xxx") and titles[0].endswith("~.md") and len(titles[0]) <= 120


def test_an_unexpected_error_quarantines_only_that_file(setup, monkeypatch) -> None:
    from grace_pipelines.ingest import inbox

    settings, _defs, driver, db = setup
    real_probe = inbox.probe

    def flaky_probe(path, *args, **kwargs):
        if path.name == "project_notes.md":
            raise RuntimeError("the probe fell over")
        return real_probe(path, *args, **kwargs)

    monkeypatch.setattr(inbox, "probe", flaky_probe)
    drop_file(settings.inbox, "project_notes.md")
    drop_file(settings.inbox, "standup.mp3")
    result = driver.tick("inbox_sensor")
    assert [db.get_source(r.partition_key).title for r in result.run_requests] == ["standup.mp3"]
    (q,) = db.list_quarantine()
    assert q["filename"] == "project_notes.md"
    assert q["reason"] == "project_notes.md: could not be judged (RuntimeError: the probe fell over)"
    assert next(settings.quarantine.glob("*-project_notes.md.reason.txt")).is_file()


def test_links_in_the_inbox_are_quarantined_never_followed(setup, tmp_path: Path) -> None:
    settings, _defs, driver, db = setup
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\nnever to be read\n")
    settings.inbox.mkdir(parents=True, exist_ok=True)
    (settings.inbox / "passwd.md").symlink_to("/etc/passwd")
    (settings.inbox / "dangling.wav").symlink_to(tmp_path / "nothing-here.wav")
    drop_file(settings.inbox, "groceries.ogg")
    (settings.inbox / "groceries.ogg.consent.json").symlink_to(secret)  # a link as its sidecar
    drop_file(settings.inbox, "standup.mp3")
    for name in ("passwd.md", "dangling.wav", "groceries.ogg.consent.json"):
        os.utime(settings.inbox / name, (time.time() - 30,) * 2, follow_symlinks=False)
    result = driver.tick("inbox_sensor")
    assert [db.get_source(r.partition_key).title for r in result.run_requests] == ["standup.mp3"]
    reasons = {q["filename"]: q["reason"] for q in db.list_quarantine()}
    assert set(reasons) == {"passwd.md", "dangling.wav", "groceries.ogg"}
    assert "passwd.md: is a symbolic link; links are never followed" in reasons["passwd.md"]
    assert "dangling.wav: is a symbolic link" in reasons["dangling.wav"]
    assert "groceries.ogg.consent.json' is a symbolic link" in reasons["groceries.ogg"]
    moved = {p.name: p for p in settings.quarantine.iterdir()}
    assert any(n.endswith("-passwd.md") and moved[n].is_symlink() for n in moved), "moved as a link"
    assert any(n.endswith("-groceries.ogg.consent.json") and moved[n].is_symlink() for n in moved)
    assert sum(n.endswith(".reason.txt") for n in moved) == 3
    assert secret.read_text().startswith("# Secret") and [p.name for p in settings.inbox.iterdir()] == ["standup.mp3"]
    assert driver.tick("inbox_sensor").run_requests == [], "reported once, not every tick"


def test_an_orphan_sidecar_is_quarantined_after_a_while(setup) -> None:
    from grace_pipelines.ingest.inbox import ORPHAN_SIDECAR_AFTER_S

    settings, _defs, driver, db = setup
    sidecar = drop_file(settings.inbox, name="lost.mp3.consent.json", data=GRANT_ME)
    driver.tick("inbox_sensor")
    assert sidecar.exists() and db.list_quarantine() == [], "its media may still be on its way"
    _age(sidecar, ORPHAN_SIDECAR_AFTER_S + 1)
    driver.tick("inbox_sensor")
    (q,) = db.list_quarantine()
    assert q["filename"] == "lost.mp3.consent.json" and "orphan consent sidecar: no media file lost.mp3" in q["reason"]
    assert not sidecar.exists() and next(settings.quarantine.glob("*-lost.mp3.consent.json.reason.txt")).is_file()


def test_a_late_sidecar_never_applies_to_another_source_by_key_prefix(setup) -> None:
    settings, _defs, driver, db = setup
    drop_file(settings.inbox, "migration.wav")
    (request,) = driver.tick("inbox_sensor").run_requests
    prefix = request.partition_key[:6]
    drop_file(settings.inbox, name=f"{prefix}.consent.json", data=GRANT_ME)
    driver.tick("inbox_sensor")
    assert db.consent_rows(source_key=request.partition_key) == []


def test_every_file_beyond_the_tick_cap_is_handled_when_asked_for(home: Path) -> None:
    settings = load_settings(home=home, settle_seconds=0.0, max_files_per_tick=2)
    settings.ensure_dirs()
    db = StateDB(settings.state_url)
    paths = {drop_file(settings.inbox, name=f"note-{i}.txt", data=f"note {i}\n".encode()) for i in range(5)}
    result = scan_inbox(settings, db, only=paths)
    assert len(result.new) == 5 and set(result.outcomes) == {str(p) for p in paths}
