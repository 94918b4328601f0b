"""The filters people ask for: since/until as typed (ISO, short dates, relative, across a DST
change), origin, kind and source; when a recording was made (its creation-time tag, else the
file's mtime) kept apart from when it was dropped; and search over real ingested documents
restricted by each. Real PyAV files, real SQLite, real LanceDB, a real Dagster instance."""

from __future__ import annotations

import json
import os
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from grace_pipelines.api import Grace
from grace_pipelines.cli import app
from grace_pipelines.db.state import StateDB
from grace_pipelines.ingest.inbox import scan_inbox
from grace_pipelines.ingest.media import parse_creation_time
from grace_pipelines.search.filters import FilterError, SearchFilters, allowed_keys, parse_filters
from grace_pipelines.settings import load_settings
from grace_pipelines.stores.vectors import VectorStoreError, keys_filter

from ..conftest import drop_file

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
# the Monday after Berlin's spring change (2026-03-29 02:00 CET -> 03:00 CEST), 10:00 local
AFTER_DST = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


# ---- parsing ------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_iso_date_times_round_trip(value: datetime) -> None:
    typed = value.isoformat()
    parsed = parse_filters(since=typed, now=AFTER_DST, tz=BERLIN)
    zulu = parse_filters(until=typed.replace("+00:00", "Z"), now=AFTER_DST, tz=BERLIN)
    local = parse_filters(until=value.astimezone(BERLIN).replace(tzinfo=None).isoformat(), now=AFTER_DST, tz=BERLIN)
    assert parsed.since == value and zulu.until == value
    assert local.until == value or value.astimezone(BERLIN).fold == 1  # a naive wall time is local (fold 0)
    assert parsed.since.tzinfo is not None and parsed.since.utcoffset() == timedelta(0)
    echo = parsed.to_dict()
    assert datetime.fromisoformat(echo["since"].replace("Z", "+00:00")) == value
    assert json.loads(json.dumps(echo)) == echo


@settings(max_examples=60, deadline=None)
@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 1, 1)))
def test_iso_dates_are_whole_local_days(day: date) -> None:
    parsed = parse_filters(since=day.isoformat(), until=day.isoformat(), now=AFTER_DST, tz=BERLIN)
    assert parsed.since == datetime.combine(day, datetime.min.time(), tzinfo=BERLIN).astimezone(UTC)
    assert parsed.until.astimezone(BERLIN).date() == day + timedelta(days=1)
    assert parsed.until.astimezone(BERLIN).hour == 0
    assert timedelta(hours=23) <= parsed.until - parsed.since <= timedelta(hours=25)


def test_relative_dates_across_the_berlin_spring_change() -> None:
    def since(text: str) -> datetime:
        return parse_filters(since=text, now=AFTER_DST, tz=BERLIN).since

    def until(text: str) -> datetime:
        return parse_filters(until=text, now=AFTER_DST, tz=BERLIN).until

    # yesterday (Sunday 29 March) began in CET and ended in CEST: a 23-hour day
    assert since("yesterday") == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert until("yesterday") == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert until("yesterday") - since("yesterday") == timedelta(hours=23)
    assert since("today") == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert until("today") == datetime(2026, 3, 30, 22, 0, tzinfo=UTC)
    # "last week": the local day a week ago, which was still in CET (+01:00)
    assert since("last week") == datetime(2026, 3, 22, 23, 0, tzinfo=UTC)
    # elapsed time, not wall-clock arithmetic
    assert since("6 hours ago") == AFTER_DST - timedelta(hours=6)
    assert since("an hour ago") == AFTER_DST - timedelta(hours=1)
    assert since("last 2 hours") == AFTER_DST - timedelta(hours=2)
    early = datetime(2026, 3, 29, 3, 0, tzinfo=UTC)  # 05:00 CEST, three hours after the change
    assert parse_filters(since="6 hours ago", now=early, tz=BERLIN).since == early - timedelta(hours=6)
    # a short date prefers the past; a naive ISO time is local
    assert since("30 Nov") == datetime(2025, 11, 29, 23, 0, tzinfo=UTC)
    assert since("2026-03-29T12:00") == datetime(2026, 3, 29, 10, 0, tzinfo=UTC)
    assert since("2026-03-28T12:00") == datetime(2026, 3, 28, 11, 0, tzinfo=UTC)


def test_python_values_and_blanks() -> None:
    naive = datetime(2026, 7, 1, 12, 0)
    parsed = parse_filters(since=naive, until=date(2026, 7, 1), origin=" Meeting ", now=AFTER_DST, tz="Europe/Berlin")
    assert parsed.since == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert parsed.until == datetime(2026, 7, 1, 22, 0, tzinfo=UTC)
    assert parsed.origin == "meeting" and not parsed.empty
    blank = parse_filters(since="", until="  ", origin="", kind=None, source=" ", now=AFTER_DST, tz=BERLIN)
    assert blank == SearchFilters() and blank.empty
    assert blank.to_dict() == {
        "since": None,
        "until": None,
        "origin": None,
        "kind": None,
        "source": None,
        "when": "recorded",
        "speaker": None,
    }


@pytest.mark.parametrize(
    ("given_", "message"),
    [
        ({"since": "blah"}, r"^since: cannot read 'blah'"),
        ({"until": "whenever next"}, r"^until: cannot read 'whenever next'"),
        ({"since": "12"}, r"^since: '12' is a bare number"),
        ({"since": "2026-13-01"}, r"^since: '2026-13-01' is not a valid ISO date"),
        ({"since": "today", "until": "yesterday"}, r"^since 'today' is not before until 'yesterday'"),
        ({"origin": "podcast"}, r"^origin: unknown origin 'podcast'; use one of: voice_note, meeting"),
        ({"kind": "pdf"}, r"^kind: unknown kind 'pdf'; use one of: audio, video, document"),
        ({"when": "made"}, r"^by: unknown 'made'; use one of: recorded, dropped"),
    ],
)
def test_unreadable_filters_name_the_parameter_and_the_value(given_: dict, message: str) -> None:
    with pytest.raises(FilterError, match=message) as caught:
        parse_filters(**given_, now=AFTER_DST, tz=BERLIN)
    assert isinstance(caught.value, ValueError)


def test_creation_tags_are_read_strictly() -> None:
    assert parse_creation_time("2025-06-01T10:00:00.000000Z") == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
    assert parse_creation_time("2025-06-01T12:00:00+0200") == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
    assert parse_creation_time("2025-06-01 10:00:00") == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
    for junk in (None, "", "2024", "1904-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "soon"):
        assert parse_creation_time(junk) is None


def test_keys_filter_takes_the_shorter_list() -> None:
    keys = [f"{i:016x}" for i in range(10)]
    assert keys_filter(keys[:2]) == f"source_key IN ('{keys[0]}', '{keys[1]}')"
    assert keys_filter(keys[:8], universe=keys) == f"source_key NOT IN ('{keys[8]}', '{keys[9]}')"
    assert keys_filter(keys, universe=keys) is None
    with pytest.raises(VectorStoreError, match="invalid source key"):
        keys_filter(["x' OR 1=1 --"])  # a VectorStoreError (RuntimeError)


# ---- when a recording was made -----------------------------------------------------------------
def _tone(path: Path, creation_time: str | None) -> Path:
    """One second of a 440 Hz tone, written by PyAV (AAC in MP4 with a creation-time tag, or WAV)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    wave = (np.sin(2 * np.pi * 440 * np.arange(16000) / 16000) * 0.25).astype(np.float32)[None, :]
    with av.open(str(path), "w", format="mp4" if path.suffix == ".m4a" else None) as out:
        if creation_time:
            out.metadata["creation_time"] = creation_time
        stream = out.add_stream("aac" if path.suffix == ".m4a" else "pcm_s16le", rate=16000, layout="mono")
        if path.suffix == ".m4a":
            frame = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
        else:
            frame = av.AudioFrame.from_ndarray((wave * 32767).astype(np.int16), format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path


def test_recorded_at_is_the_creation_tag_else_the_mtime_at_drop(tmp_path: Path) -> None:
    settings_ = load_settings(home=tmp_path / "grace")
    settings_.ensure_dirs()
    db = StateDB(settings_.state_url)
    tagged = _tone(settings_.inbox / "voice_note" / "tagged.m4a", "2025-06-01T10:00:00.000000Z")
    plain = _tone(settings_.inbox / "meeting" / "plain.wav", None)
    week_ago = time.time() - 7 * 86400
    for path in (tagged, plain):
        os.utime(path, (week_ago, week_ago))
    dropped = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    scan = scan_inbox(settings_, db, settle_seconds=0, dropped_at=dropped)
    assert len(scan.new) == 2, scan.quarantined
    by_title = {row.title: row for row in db.list_sources()}
    assert by_title["tagged.m4a"].recorded_at == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
    assert abs(by_title["plain.wav"].recorded_at.timestamp() - week_ago) < 1.0
    assert by_title["plain.wav"].recorded_at.tzinfo is not None
    assert {row.dropped_at for row in by_title.values()} == {dropped}
    with dg.instance_for_test() as instance:
        status = {s.title: s.to_dict() for s in Grace(tmp_path / "grace", instance=instance).status()}
    assert status["tagged.m4a"]["recorded_at"] == "2025-06-01T10:00:00Z"
    assert status["tagged.m4a"]["dropped_at"] == "2026-12-01T09:00:00Z"
    assert status["plain.wav"]["recorded_at"].endswith("Z")

    def keys(**typed: str) -> set[str]:
        return allowed_keys(db, parse_filters(**typed, now=dropped, tz=UTC))

    tagged_key, plain_key = by_title["tagged.m4a"].key, by_title["plain.wav"].key
    assert keys(until="2025-12-31") == {tagged_key}  # recorded long before it was dropped
    assert keys(since="2025-12-31") == {plain_key}
    assert keys(until="2025-12-31", when="dropped") == set()
    assert keys(origin="meeting") == {plain_key} and keys(kind="audio") == {tagged_key, plain_key}
    assert keys(source="tagged.m4a") == {tagged_key} and keys(source="nothing-like-it.mp3") == set()


# ---- search restricted by the filters, over real ingested documents ------------------------------
NOTES = {
    ("meeting", "budget_meeting.md"): "# Budget\n\nThe budget for the kitchen renovation is twelve thousand euros.\n",
    ("document", "garden_notes.md"): "# Garden\n\nThe budget for the garden is four hundred euros for new tulips.\n",
    ("voice_note", "trip_plan.md"): "# Trip\n\nThe budget for the Lisbon trip is nine hundred euros in May.\n",
}
AGES_DAYS = {"budget_meeting.md": 40, "garden_notes.md": 10, "trip_plan.md": 1}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("filters") / "grace"
    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance)
        for (origin, name), text in NOTES.items():
            drop_file(
                grace.settings.inbox / origin,
                name=name,
                data=text,
                grants={"me": ["all"]},
                age_s=AGES_DAYS[name] * 86400,
            )
        scan = scan_inbox(grace.settings, grace.db, settle_seconds=0)
        assert len(scan.new) == 3, scan.quarantined
        assert all(grace.run_sources([d.key for d in scan.new]).values())
        keys = {row.title: row.key for row in grace.db.list_sources()}
        yield grace, keys, home


def _found(grace: Grace, **typed: str) -> list[str]:
    filters = parse_filters(**typed, now=datetime.now(UTC), tz=grace.settings.tz)
    return [r.title for r in grace.search("budget euros", k=5, filters=filters)]


def test_search_restricted_by_origin_kind_source_and_time(library) -> None:
    grace, keys, _ = library
    assert sorted(_found(grace)) == sorted(name for _, name in NOTES)
    assert _found(grace, origin="meeting") == ["budget_meeting.md"]
    assert _found(grace, origin="voice_note", kind="document") == ["trip_plan.md"]
    assert _found(grace, source="garden_notes.md") == ["garden_notes.md"]
    assert _found(grace, source=keys["trip_plan.md"][:6]) == ["trip_plan.md"]
    assert sorted(_found(grace, since="20 days ago")) == ["garden_notes.md", "trip_plan.md"]
    assert _found(grace, since="20 days ago", until="2 days ago") == ["garden_notes.md"]
    assert sorted(_found(grace, until="20 days ago")) == ["budget_meeting.md"]
    assert sorted(_found(grace, since="6 hours ago", when="dropped")) == sorted(name for _, name in NOTES)
    for mode in ("vector", "keyword"):
        filters = parse_filters(origin="document", now=datetime.now(UTC), tz=UTC)
        assert [r.title for r in grace.search("budget euros", k=3, mode=mode, filters=filters)] == ["garden_notes.md"]


def test_no_matching_source_answers_nothing_at_once(library) -> None:
    grace, _, _ = library
    assert _found(grace, kind="audio") == []
    assert _found(grace, origin="screen") == []
    assert _found(grace, source="no_such_file.md") == []
    assert _found(grace, until="1990-01-01") == []
    empty = parse_filters(origin="screen", now=datetime.now(UTC), tz=UTC)
    answer = grace.ask("what is the budget?", filters=empty)
    assert answer.citations == []
    answer = grace.ask("what is the budget?", filters=parse_filters(origin="meeting", now=datetime.now(UTC), tz=UTC))
    assert answer.citations and all("budget_meeting.md" in c.citation for c in answer.citations)


def test_cli_filters_echo_in_json_and_refuse_bad_values(library, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, home = library
    runner = CliRunner()
    result = runner.invoke(
        app, ["search", "budget euros", "--origin", "document", "--since", "30 days ago", "--json", "--home", str(home)]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert [r["title"] for r in body["results"]] == ["garden_notes.md"]
    assert list(body)[:3] == ["query", "results", "skipped"]
    assert body["filters"]["origin"] == "document" and body["filters"]["when"] == "recorded"
    assert body["filters"]["since"].endswith("Z")
    result = runner.invoke(app, ["ask", "what is the budget?", "--kind", "audio", "--json", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["citations"] == [] and json.loads(result.stdout)["filters"]["kind"] == "audio"
    result = runner.invoke(app, ["search", "budget", "--since", "someday maybe", "--home", str(home)])
    assert result.exit_code == 1
    assert "since: cannot read 'someday maybe'" in result.output
    result = runner.invoke(app, ["ask", "budget?", "--by", "made", "--home", str(home)])
    assert result.exit_code == 1 and "by: unknown 'made'" in result.output


def test_the_prefilter_keeps_k_results_within_the_allowed_sources(library) -> None:
    grace, keys, _ = library
    index, embedder = grace.clients.chunk_index, grace.clients.embedder
    vector = embedder.embed_query("tulips in the garden")
    (best,) = index.search("", vector, k=1, mode="vector")
    assert best.row["source_key"] == keys["garden_notes.md"]
    for mode in ("vector", "hybrid"):
        (hit,) = index.search("", vector, k=1, mode=mode, where=keys_filter([keys["trip_plan.md"]]))
        assert hit.row["source_key"] == keys["trip_plan.md"]  # the filter ran before the top-1 cut
    others = keys_filter([keys["trip_plan.md"], keys["budget_meeting.md"]], universe=set(keys.values()))
    assert others.startswith("source_key NOT IN")
    hits = index.search("", vector, k=5, mode="vector", where=others)
    assert {h.row["source_key"] for h in hits} == {keys["trip_plan.md"], keys["budget_meeting.md"]}
