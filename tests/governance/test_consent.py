import json
from datetime import datetime, timedelta, timezone

import pytest

from grace_pipelines.governance.consent import (
    ConsentError,
    ConsentEvent,
    expand_scope,
    missing_parties,
    parse_sidecar,
)

from ..conftest import FIXTURES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def ev(party: str, scope: str, action: str = "grant", minutes: int = 0, expires: int | None = None) -> ConsentEvent:
    at = NOW - timedelta(minutes=60 - minutes)
    return ConsentEvent(party, scope, action, at, (NOW + timedelta(minutes=expires)) if expires is not None else None)


def test_every_participant_must_grant() -> None:
    events = [ev("me", "transcribe")]
    assert missing_parties(["me", "priya"], events, "transcribe", NOW) == ["priya"]
    assert missing_parties(["me", "priya"], events, "index", NOW) == ["me", "priya"]
    events.append(ev("priya", "transcribe", minutes=5))
    assert missing_parties(["me", "priya"], events, "transcribe", NOW) == []


def test_latest_event_wins_and_revocation_counts() -> None:
    events = [ev("me", "index"), ev("me", "index", "revoke", minutes=10)]
    assert missing_parties(["me"], events, "index", NOW) == ["me"]
    events.append(ev("me", "index", minutes=20))
    assert missing_parties(["me"], events, "index", NOW) == []


def test_expired_grant_is_no_grant() -> None:
    assert missing_parties(["me"], [ev("me", "index", expires=-1)], "index", NOW) == ["me"]
    assert missing_parties(["me"], [ev("me", "index", expires=5)], "index", NOW) == []


def test_scopes() -> None:
    assert expand_scope("all") == ("transcribe", "index")
    with pytest.raises(ConsentError, match="unknown consent scope 'publish'"):
        expand_scope("publish")


def test_sidecar_parses_and_defaults_to_owner() -> None:
    raw = json.dumps({"participants": ["me", "priya"], "grants": [{"party": "me", "scopes": ["transcribe", "index"]}]})
    parsed = parse_sidecar(raw.encode(), name="a.mp3.consent.json", owner="me")
    assert parsed.participants == ["me", "priya"]
    assert parsed.grants == [("me", "transcribe"), ("me", "index")]
    parsed = parse_sidecar(b'{"grants": [{"party": "owner", "scopes": ["all"]}]}', name="b", owner="owner")
    assert parsed.participants == ["owner"] and len(parsed.grants) == 2


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b'{"participants": [], "grants": []}', "participants"),
        (b'{"grants": [{"party": "me", "scopes": ["publish"]}]}', "unknown consent scope"),
        (b'{"grants": [{"party": "eve", "scopes": ["index"]}]}', "'eve', who is not a participant"),
        (b'{"grants": "all"}', "grants"),
        (b'{"participants": ["me"], "extra": 1}', "extra"),
    ],
)
def test_broken_sidecars_name_the_file_and_problem(raw: bytes, needle: str) -> None:
    with pytest.raises(ConsentError) as err:
        parse_sidecar(raw, name="talk.m4a.consent.json", owner="me")
    assert "talk.m4a.consent.json" in str(err.value)
    assert needle in str(err.value)


def test_policy_grants_only_for_the_owner_and_matching_origins() -> None:
    from grace_pipelines.governance.consent import PolicyRule, policy_grants

    rules = [PolicyRule(name="own-notes", origins=["voice_note", "document"])]
    assert policy_grants(rules, origin="voice_note", participants=["me"], owner="me") == [
        ("me", "transcribe", "own-notes"),
        ("me", "index", "own-notes"),
    ]
    assert policy_grants(rules, origin="meeting", participants=["me"], owner="me") == []
    assert policy_grants(rules, origin="voice_note", participants=["me", "priya"], owner="me") == []
    shared = [PolicyRule(name="my-part", origins=["meeting"], scopes=["transcribe"], owner_only=False)]
    assert policy_grants(shared, origin="meeting", participants=["me", "priya"], owner="me") == [
        ("me", "transcribe", "my-part")
    ]
    assert policy_grants(shared, origin="meeting", participants=["priya"], owner="me") == []
    with pytest.raises(Exception, match="unknown consent scope"):
        PolicyRule(name="x", origins=["api"], scopes=["publish"])


def test_policy_from_grace_toml_records_method_policy(tmp_path) -> None:
    import os
    import time

    from grace_pipelines.db.state import StateDB
    from grace_pipelines.ingest.inbox import scan_inbox
    from grace_pipelines.settings import load_settings

    (tmp_path / "grace.toml").write_text('[[consent_policy]]\nname = "own-voice-notes"\norigins = ["voice_note"]\n')
    settings = load_settings(home=tmp_path, settle_seconds=0)
    settings.ensure_dirs()
    (settings.inbox / "meeting").mkdir()
    note = settings.inbox / "note.txt"  # a document: origin "document", not covered
    note.write_text("a document")
    wav = settings.inbox / "migration.wav"
    wav.write_bytes((FIXTURES / "migration.wav").read_bytes())
    past = time.time() - 5
    for p in (note, wav):
        os.utime(p, (past, past))
    db = StateDB(settings.state_url)
    result = scan_inbox(settings, db)
    keys = {d.title: d.key for d in result.new}
    rows = db.consent_rows(source_key=keys["migration.wav"])
    assert {(r["party"], r["scope"], r["method"], r["actor"]) for r in rows} == {
        ("me", "transcribe", "policy", "policy:own-voice-notes"),
        ("me", "index", "policy", "policy:own-voice-notes"),
    }
    assert db.consent_rows(source_key=keys["note.txt"]) == []


@pytest.mark.parametrize(("text", "seconds"), [("90m", 5400), ("12h", 43200), ("30d", 2592000), ("2w", 1209600)])
def test_ttl_parses(text: str, seconds: int) -> None:
    from grace_pipelines.governance.consent import parse_ttl

    assert parse_ttl(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "-3d", "0d", "3 years"])
def test_bad_ttl_is_a_clear_error(text: str) -> None:
    from grace_pipelines.governance.consent import parse_ttl

    with pytest.raises(ConsentError, match="invalid duration"):
        parse_ttl(text)


def test_grant_commands_are_shell_quoted() -> None:
    import shlex

    from grace_pipelines.governance.consent import grant_command

    party = "x; touch PWNED_$(id -u)"
    command = grant_command("abc123", party, "index")
    assert command == "grace consent grant abc123 --party 'x; touch PWNED_$(id -u)' --scope index"
    assert shlex.split(command) == ["grace", "consent", "grant", "abc123", "--party", party, "--scope", "index"]
    for odd in ("it's me", "-rf", "a\nb", "$HOME", "`id`", "priya"):
        assert shlex.split(grant_command("k", odd, "all"))[5] == odd


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (json.dumps({"participants": [f"p{i}" for i in range(150)]}).encode(), "150 names, at most 100 are allowed"),
        (json.dumps({"participants": [f"person number {i}" for i in range(60_000)]}).encode(), "a sidecar is at most"),
        (b"[" * 100_000, "nested too deeply"),
        (json.dumps({"participants": [1] * 50}).encode(), "and 45 more problems"),
        (json.dumps({"participants": ["me", "bad\nname"]}).encode(), "control or invisible characters"),
        (json.dumps({"participants": ["me", "x" * 500]}).encode(), "longer than 200 characters"),
        (
            json.dumps({"participants": ["me"], "grants": [{"party": "me", "scopes": ["index"]}] * 300}).encode(),
            "grants",
        ),
    ],
)
def test_hostile_sidecars_get_a_short_clear_error(raw: bytes, needle: str) -> None:
    with pytest.raises(ConsentError) as err:
        parse_sidecar(raw, name="talk.m4a.consent.json", owner="me")
    message = str(err.value)
    assert "talk.m4a.consent.json" in message and needle in message
    assert len(message) < 1000


def test_a_kill_between_registration_and_the_policy_grant_does_not_lose_the_grant(tmp_path) -> None:
    """The registration committed, the process died before the policy grants: the next scan of
    the same file (the inbox copy is still there) records them, once."""
    import os
    import time

    from grace_pipelines.db.schema import utcnow
    from grace_pipelines.db.state import StateDB
    from grace_pipelines.htm.dispatcher import plan
    from grace_pipelines.ingest.inbox import scan_inbox, sha256_file
    from grace_pipelines.settings import load_settings

    (tmp_path / "grace.toml").write_text('[[consent_policy]]\nname = "own-voice-notes"\norigins = ["voice_note"]\n')
    settings = load_settings(home=tmp_path, settle_seconds=0)
    settings.ensure_dirs()
    wav = settings.inbox / "migration.wav"
    wav.write_bytes((FIXTURES / "migration.wav").read_bytes())
    past = time.time() - 5
    os.utime(wav, (past, past))
    db = StateDB(settings.state_url)
    digest = sha256_file(wav)
    now = utcnow()
    db.register_source(  # what the killed process committed, and nothing after it
        key=digest[:16],
        sha256=digest,
        filename=wav.name,
        title=wav.name,
        kind="audio",
        ext="wav",
        origin="voice_note",
        size=wav.stat().st_size,
        duration_s=15.6,
        participants=["me"],
        inbox_path=str(wav),
        dropped_at=now,
        **plan(settings, kind="audio", size=wav.stat().st_size, duration_s=15.6, origin="voice_note", dropped_at=now),
    )
    assert db.consent_rows(source_key=digest[:16]) == []
    scan_inbox(settings, db, only={wav}, settle_seconds=0)
    scan_inbox(settings, db, only={wav}, settle_seconds=0)
    rows = db.consent_rows(source_key=digest[:16])
    assert sorted((r["scope"], r["method"]) for r in rows) == [("index", "policy"), ("transcribe", "policy")]
