"""Audit log: a hash chain that names each edited, deleted, reordered or inserted entry, holds
together under concurrent appenders (threads and processes), and refuses secret values.
SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import threading
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditLog,
    AuditSecretError,
    diagnose,
    entry_hash,
    record,
)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_database")("grace_audit")


@pytest.fixture
def log(url: str) -> AuditLog:
    return AuditLog(url)


def fill(log: AuditLog, n: int) -> list[AuditEntry]:
    actions = ["consent.grant", "consent.revoke", "purge", "key.rotate", "vault.use", "vault.refuse", "quarantine"]
    return [
        log.append(f"user{i % 3}", actions[i % len(actions)], f"{i:016x}", {"i": i, "chunks": i * 7, "reason": f"r{i}"})
        for i in range(1, n + 1)
    ]


def sql(log: AuditLog, statement: str, **params: Any) -> None:
    with log.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def json_param(log: AuditLog) -> str:
    return "CAST(:d AS json)" if log.dialect == "postgresql" else ":d"


def kinds(report) -> list[tuple[int | None, str]]:
    return [(p.seq, p.kind) for p in report.problems]


# ---- the chain ------------------------------------------------------------------------------
def test_append_builds_a_verifiable_chain(log: AuditLog, url: str) -> None:
    empty = log.verify()
    assert (empty.ok, empty.entries, empty.problems, empty.head_hash) == (True, 0, [], GENESIS_HASH)

    entries = fill(log, 12)
    assert [e.seq for e in entries] == list(range(1, 13))
    assert entries[0].prev_hash == GENESIS_HASH == "0" * 64
    for before, after in pairwise(entries):
        assert after.prev_hash == before.hash
    stored = log.tail(100)
    assert stored == entries, "what append returns is what is stored (timestamps included)"
    for e in stored:
        assert e.hash == entry_hash(
            seq=e.seq,
            at=e.at,
            actor=e.actor,
            action=e.action,
            subject=e.subject,
            details=e.details,
            prev_hash=e.prev_hash,
        )
    report = log.verify()
    assert report.ok and report.entries == 12 and report.problems == []
    assert (report.head_seq, report.head_hash) == (12, entries[-1].hash)
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True

    same = AuditLog(StateDB(url))  # a StateDB works as well as a URL
    assert same.append("t", "purge", None).seq == 13 and same.verify().ok


def test_timestamps_are_timezone_aware_utc(log: AuditLog) -> None:
    made = log.append("tester", "consent.grant", "abababababababab", {"party": "priya", "scope": "index"})
    (read,) = log.tail(1)
    assert read.at.tzinfo is not None and read.at.utcoffset() == timedelta(0)
    assert read.at == made.at and read.at.tzinfo == timezone.utc
    assert read.to_dict()["at"].endswith("+00:00")


def test_details_are_canonical_json(log: AuditLog) -> None:
    a = log.append("t", "purge", "k1", {"b": 1, "a": {"y": [1, 2.5, None], "x": "ü"}})
    assert list(a.details) == ["a", "b"] and a.details["a"] == {"x": "ü", "y": [1, 2.5, None]}
    assert log.append("t", "purge", "k1").details == {}
    with pytest.raises(ValueError, match="plain JSON"):
        log.append("t", "purge", "k1", {"at": object()})
    with pytest.raises(ValueError, match="plain JSON"):
        log.append("t", "purge", "k1", {"ratio": float("nan")})
    with pytest.raises(ValueError, match="dotted lower-case"):
        log.append("t", "Purge Everything", "k1")
    with pytest.raises(ValueError, match="actor"):
        log.append(" ", "purge", "k1")
    assert log.verify().ok and log.count() == 2


def test_tail_is_the_newest_entries_oldest_first(log: AuditLog) -> None:
    fill(log, 30)
    assert [e.seq for e in log.tail(5)] == [26, 27, 28, 29, 30]
    assert [e.seq for e in log.tail()] == list(range(11, 31))
    assert len(log.tail(1000)) == 30 and log.tail(0) == []
    assert [e.seq for e in log.entries(after_seq=27)] == [28, 29, 30]


# ---- tampering ------------------------------------------------------------------------------
def test_an_edited_entry_is_named(log: AuditLog) -> None:
    fill(log, 10)
    sql(log, f"UPDATE audit_log SET details = {json_param(log)} WHERE seq = 6", d=json.dumps({"i": 6, "chunks": 0}))
    report = log.verify()
    assert not report.ok and report.entries == 10
    assert kinds(report) == [(6, "edited")]
    assert "entry 6" in report.problems[0].detail


def test_an_edited_actor_or_timestamp_is_named(log: AuditLog) -> None:
    fill(log, 8)
    sql(log, "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2")
    sql(log, "UPDATE audit_log SET at = :at WHERE seq = 7", at=log.tail(1)[0].at + timedelta(days=1))
    assert kinds(log.verify()) == [(2, "edited"), (7, "edited")]


def test_an_edit_with_a_recomputed_hash_is_named(log: AuditLog) -> None:
    entries = fill(log, 9)
    e = entries[4]
    forged = {"i": 5, "chunks": 0}
    digest = entry_hash(
        seq=e.seq, at=e.at, actor=e.actor, action=e.action, subject=e.subject, details=forged, prev_hash=e.prev_hash
    )
    sql(
        log,
        f"UPDATE audit_log SET details = {json_param(log)}, hash = :h WHERE seq = 5",
        d=json.dumps(forged),
        h=digest,
    )
    assert kinds(log.verify()) == [(5, "edited")]


def test_a_deleted_entry_is_named(log: AuditLog) -> None:
    fill(log, 10)
    sql(log, "DELETE FROM audit_log WHERE seq = 4")
    report = log.verify()
    assert not report.ok and report.entries == 9
    assert kinds(report) == [(4, "deleted")]
    assert "entry 4 is missing" in report.problems[0].detail


def test_deleted_entries_are_named_even_when_the_rest_is_renumbered(log: AuditLog) -> None:
    fill(log, 10)
    sql(log, "DELETE FROM audit_log WHERE seq IN (1, 5, 6)")
    sql(log, "UPDATE audit_log SET seq = seq + 1000 WHERE seq > 6")  # close the gap, as a careful editor would
    sql(log, "UPDATE audit_log SET seq = seq - 1000 - 2 WHERE seq > 1000")
    report = log.verify()
    assert kinds(report) == [(1, "deleted"), (5, "deleted"), (6, "deleted")]
    assert "renumbered" in report.problems[-1].detail


@pytest.mark.parametrize("how", ["payload", "seq", "whole_rows"])
def test_two_swapped_entries_are_named_as_reordered(log: AuditLog, how: str) -> None:
    fill(log, 10)
    a, b = 3, 8
    cols = {
        "payload": ["at", "actor", "action", "subject", "details"],
        "seq": ["seq"],
        "whole_rows": ["seq", "at", "actor", "action", "subject", "details", "prev_hash", "hash"],
    }[how]
    with log.engine.begin() as conn:
        rows = {r.seq: r._mapping for r in conn.execute(sa.text("SELECT * FROM audit_log WHERE seq IN (3, 8)"))}
        ids = {s: rows[s]["id"] for s in (a, b)}
        if "seq" in cols:  # the unique index: park one row out of the way first
            conn.execute(sa.text("UPDATE audit_log SET seq = -1 WHERE id = :id"), {"id": ids[a]})
        for mine, theirs in ((b, a), (a, b)):  # b takes seq 3 (parked above), then a takes 8
            values = {c: rows[theirs][c] for c in cols}
            if "details" in values and not isinstance(values["details"], str):  # PostgreSQL hands back a dict
                values["details"] = json.dumps(values["details"])
            sets = ", ".join(
                f"{c} = {json_param(log).replace(':d', ':details')}" if c == "details" else f"{c} = :{c}" for c in cols
            )
            conn.execute(sa.text(f"UPDATE audit_log SET {sets} WHERE id = :id"), {**values, "id": ids[mine]})
    report = log.verify()
    assert kinds(report) == [(3, "reordered"), (8, "reordered")], report.problems
    assert report.entries == 10


def test_adjacent_swap_is_named_as_reordered(log: AuditLog) -> None:
    fill(log, 6)
    sql(log, "UPDATE audit_log SET seq = -4 WHERE seq = 4")
    sql(log, "UPDATE audit_log SET seq = 4 WHERE seq = 5")
    sql(log, "UPDATE audit_log SET seq = 5 WHERE seq = -4")
    assert kinds(log.verify()) == [(4, "reordered"), (5, "reordered")]


def test_a_forged_entry_slipped_into_the_middle_is_named(log: AuditLog) -> None:
    entries = fill(log, 10)
    before = entries[5]  # the forger links the new row after entry 6 with a correct hash...
    sql(log, "UPDATE audit_log SET seq = seq + 1000 WHERE seq > 6")
    sql(log, "UPDATE audit_log SET seq = seq - 1000 + 1 WHERE seq > 1000")  # ...and shifts the rest down by one
    at = before.at + timedelta(seconds=1)
    details = {"party": "priya", "scope": "index"}
    digest = entry_hash(
        seq=7,
        at=at,
        actor="priya",
        action="consent.grant",
        subject="abababababababab",
        details=details,
        prev_hash=before.hash,
    )
    sql(
        log,
        "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) "
        f"VALUES (7, :at, 'priya', 'consent.grant', 'abababababababab', {json_param(log)}, :p, :h)",
        at=at if log.dialect == "postgresql" else at.replace(tzinfo=None).isoformat(sep=" "),
        d=json.dumps(details),
        p=before.hash,
        h=digest,
    )
    report = log.verify()
    assert report.entries == 11
    assert kinds(report) == [(7, "inserted")], report.problems


def test_a_forged_entry_with_made_up_hashes_is_named(log: AuditLog) -> None:
    fill(log, 5)
    sql(
        log,
        "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) "
        f"VALUES (6, :at, 'x', 'vault.approve', 'openai', {json_param(log)}, :p, :h)",
        at=log.tail(1)[0].at if log.dialect == "postgresql" else "2030-01-01 00:00:00.000000",
        d="{}",
        p="ab" * 32,
        h="cd" * 32,
    )
    assert kinds(log.verify()) == [(6, "inserted")]


def test_an_anchor_catches_what_the_chain_alone_cannot(log: AuditLog) -> None:
    fill(log, 6)
    head = log.verify()
    sql(log, "DELETE FROM audit_log WHERE seq = 6")  # truncation leaves a valid, shorter chain
    assert log.verify().ok
    report = log.verify(anchor=(head.head_seq, head.head_hash))
    assert kinds(report) == [(6, "deleted")]
    assert log.verify(anchor=(log.verify().head_seq, log.verify().head_hash)).ok


def _chain(n: int) -> list[AuditEntry]:
    out, prev, t0 = [], GENESIS_HASH, datetime(2026, 1, 1, tzinfo=timezone.utc)
    for s in range(1, n + 1):
        at, d = t0 + timedelta(seconds=s), {"i": s}
        h = entry_hash(seq=s, at=at, actor="a", action="purge", subject=f"k{s}", details=d, prev_hash=prev)
        out.append(AuditEntry(s, s, at, "a", "purge", f"k{s}", d, prev, h))
        prev = h
    return out


@settings(max_examples=400, deadline=None)
@given(
    n=st.integers(2, 14),
    data=st.data(),
    how=st.sampled_from(
        [
            "edit",
            "edit_prev",
            "rehash",
            "delete",
            "delete_renumber",
            "swap_payload",
            "swap_seq",
            "swap_rows",
            "insert",
            "insert_garbage",
        ]
    ),
)
def test_every_single_tampering_is_named_precisely(n: int, data: st.DataObject, how: str) -> None:
    """Property: one tampering anywhere in a chain of any length is reported as exactly what it
    was, at the right seq (the tail cases no hash chain can see are excluded: see the anchor)."""
    rows = _chain(n)
    R = dataclasses.replace
    last = n if how in ("edit", "swap_payload", "swap_seq", "swap_rows", "insert_garbage") else n - 1
    k = data.draw(st.integers(1, last), label="k")
    if how == "edit":
        rows[k - 1] = R(rows[k - 1], details={"i": -1})
        expected = [(k, "edited")]
    elif how == "edit_prev":
        rows[k - 1] = R(rows[k - 1], prev_hash="e" * 64)
        expected = [(k, "edited")]
    elif how == "rehash":
        e = R(rows[k - 1], actor="mallory")
        rows[k - 1] = R(
            e,
            hash=entry_hash(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                action=e.action,
                subject=e.subject,
                details=e.details,
                prev_hash=e.prev_hash,
            ),
        )
        expected = [(k, "edited")]
    elif how.startswith("delete"):
        del rows[k - 1]
        if how == "delete_renumber":
            rows = [R(r, seq=r.seq - 1) if r.seq > k else r for r in rows]
        expected = [(k, "deleted")]
    elif how.startswith("swap"):
        j = data.draw(st.integers(1, n).filter(lambda j: j != k), label="j")
        i, j = sorted((k, j))
        cols = {
            "swap_payload": ["at", "actor", "action", "subject", "details"],
            "swap_seq": ["seq"],
            "swap_rows": ["seq", "at", "actor", "action", "subject", "details", "prev_hash", "hash"],
        }[how]
        a, b = rows[i - 1], rows[j - 1]
        rows[i - 1] = R(a, **{c: getattr(b, c) for c in cols})
        rows[j - 1] = R(b, **{c: getattr(a, c) for c in cols})
        expected = [(i, "reordered"), (j, "reordered")]
    elif how == "insert":  # a correct hash linked after entry k, the rest renumbered
        before = rows[k - 1]
        rows = [R(r, seq=r.seq + 1) if r.seq > k else r for r in rows]
        h = entry_hash(
            seq=k + 1, at=before.at, actor="x", action="purge", subject="f", details={}, prev_hash=before.hash
        )
        rows.append(AuditEntry(999, k + 1, before.at, "x", "purge", "f", {}, before.hash, h))
        expected = [(k + 1, "inserted")]
    else:  # made-up hashes at position k (the rest renumbered)
        rows = [R(r, seq=r.seq + 1) if r.seq >= k else r for r in rows]
        rows.append(AuditEntry(999, k, rows[0].at, "x", "purge", "f", {}, "ab" * 32, "cd" * 32))
        expected = [(k, "inserted")]
    problems = diagnose(sorted(rows, key=lambda r: (r.seq, r.id)))
    assert sorted((p.seq, p.kind) for p in problems) == expected, problems
    assert all(p.detail for p in problems)


# ---- concurrency ----------------------------------------------------------------------------
def _append_many(url: str, worker: str, n: int, threads: int, start: Any) -> None:
    """One process: its own AuditLog; `threads` threads append `n` entries each once `start` opens."""
    log = AuditLog(url)
    errors: list[BaseException] = []

    def run(t: int) -> None:
        try:
            for i in range(n):
                log.append(f"{worker}-t{t}", "vault.use", "openai", {"worker": worker, "thread": t, "i": i})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    start.wait(timeout=120)  # a child that fails to start must fail the test, not hang the suite
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    if errors:
        raise errors[0]


def _check_concurrent(log: AuditLog, expected: int, per_actor: int) -> None:
    report = log.verify()
    assert report.ok, report.problems
    assert report.entries == expected and report.head_seq == expected
    entries = log.entries()
    assert [e.seq for e in entries] == list(range(1, expected + 1))
    by_actor: dict[str, list[int]] = {}
    for e in entries:
        by_actor.setdefault(e.actor, []).append(e.details["i"])
    assert all(seen == list(range(per_actor)) for seen in by_actor.values()), "each appender's entries in its order"
    assert len({e.at for e in entries}) > 1 and all(a.at <= b.at for a, b in pairwise(entries))


def test_concurrent_threads_never_fork_the_chain(log: AuditLog, url: str) -> None:
    threads, n = 8, 25
    go = threading.Event()
    go.set()
    _append_many(url, "main", n, threads, go)
    _check_concurrent(log, threads * n, n)
    actors = [e.actor for e in log.entries()]
    # every thread appended (whether threads interleave is up to the scheduler)
    assert sum(a != b for a, b in pairwise(actors)) >= threads - 1


@pytest.mark.slow  # spawns four appender processes per backend; the thread test stays fast
def test_concurrent_processes_and_threads_never_fork_the_chain(log: AuditLog, url: str) -> None:
    processes, threads, n = 4, 3, 15
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(processes + 1)  # every process (this one too) ready before anyone appends
    procs = [ctx.Process(target=_append_many, args=(url, f"p{i}", n, threads, start)) for i in range(processes)]
    for p in procs:
        p.start()
    _append_many(url, "parent", n, threads, start)
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0, f"appender process failed (exit {p.exitcode})"
    _check_concurrent(log, (processes + 1) * threads * n, n)
    owners = [e.actor.split("-")[0] for e in log.entries()]
    switches = sum(a != b for a, b in pairwise(owners))
    assert switches > 1, "the processes really did append at the same time"


# ---- secrets --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "details",
    [
        {"password": "hunter2-hunter2"},
        {"api_key": "hunter2-hunter2"},
        {"apiKey": "hunter2-hunter2"},
        {"OPENAI_API_KEY": "hunter2-hunter2"},
        {"secret": "hunter2-hunter2"},
        {"client_secret": "hunter2-hunter2"},
        {"token": "hunter2-hunter2"},
        {"refresh-token": "hunter2-hunter2"},
        {"value": "hunter2-hunter2"},
        {"secret_value": "hunter2-hunter2"},
        {"private_key": "hunter2-hunter2"},
        {"nested": {"ok": 1, "credentials": {"user": "me"}}},
        {"items": [{"name": "openai"}, {"passwd": "hunter2-hunter2"}]},
        {"note": "sk-proj-hunter2hunter2hunter2hunter2"},
        {"note": "-----BEGIN RSA PRIVATE KEY-----\nhunter2-hunter2"},
    ],
)
def test_secret_values_are_refused(tmp_path, details: dict[str, Any]) -> None:
    log = AuditLog(f"sqlite:///{tmp_path / 'state.db'}")
    with pytest.raises(AuditSecretError, match="never carry secret values") as caught:
        log.append("cli", "vault.use", "openai", details)
    assert "hunter2" not in str(caught.value), "the refusal must not repeat the value"
    assert isinstance(caught.value, ValueError)
    assert log.count() == 0


def test_secret_names_and_counts_are_fine(log: AuditLog) -> None:
    ok = {
        "secret_name": "openai",
        "purpose": "transcribe",
        "token_count": 3,
        "key_id": "k2",
        "bytes": 10,
        "approved_by": "me",
        "ttl": "30d",
        "keys_rewrapped": 10000,
        "source_key": "abababababababab",
    }
    assert log.append("cli", "vault.approve", "openai", ok).details == ok
    with pytest.raises(AuditSecretError):
        log.append("cli", "vault.use", "sk-proj-hunter2hunter2hunter2hunter2")
    assert log.verify().ok and log.count() == 1


def test_deleting_the_newest_entries_is_detected_by_the_anchor(tmp_path) -> None:
    """The chain alone cannot tell a truncated log from a shorter one; the keyed anchor in
    keys/ can. A forged or rolled-back anchor does not verify without the master key."""
    import json as _json

    import sqlalchemy as _sa

    from grace_pipelines.api import Grace
    from grace_pipelines.db.schema import audit_table

    grace = Grace(tmp_path / "grace")
    grace.init()
    for i in range(3):
        record(grace.db, actor="test", action="purge", subject=f"{i:016x}", details={"n": i})
    assert grace.audit_verify()["ok"]
    anchor_file = grace.settings.keys_dir / "audit.anchor"
    assert (anchor_file.stat().st_mode & 0o777) == 0o600
    assert _json.loads(anchor_file.read_text())["seq"] == 3
    with grace.db.begin() as conn:  # someone with write access to the database drops the newest row
        conn.execute(_sa.delete(audit_table).where(audit_table.c.seq == 3))
    report = grace.audit_verify()
    assert not report["ok"] and report["problems"][0]["kind"] == "deleted" and report["problems"][0]["seq"] == 3
    # rolling the anchor back by hand is caught too
    data = _json.loads(anchor_file.read_text())
    anchor_file.write_text(_json.dumps({**data, "seq": 2}))
    report = grace.audit_verify()
    assert not report["ok"] and "does not verify" in report["problems"][0]["detail"]
