"""`grace` CLI: the contract scripts rely on (exit codes, one JSON object with --json)."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grace_pipelines.cli import app

from ..conftest import FIXTURES, drop_file, write_sidecar


@pytest.fixture
def run(home: Path):
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, [*args], env={"GRACE_HOME": str(home), "COLUMNS": "200"}, input=input)

    return invoke


def test_init_is_idempotent(run, home: Path) -> None:
    first = run("init")
    assert first.exit_code == 0, first.output
    (home / "dagster" / "dagster.yaml").write_text((home / "dagster" / "dagster.yaml").read_text() + "# mine\n")
    again = run("init")
    assert again.exit_code == 0
    assert (home / "dagster" / "dagster.yaml").read_text().endswith("# mine\n"), "init keeps existing config"
    for folder in ("inbox", "store", "lancedb", "quarantine", "dagster"):
        assert stat.S_ISDIR((home / folder).stat().st_mode)


@pytest.mark.slow  # the CLI twin of tests/test_end_to_end.py (ingest, hold, grant, search)
def test_ingest_wait_search_json_and_consent(run, home: Path) -> None:
    assert run("init").exit_code == 0
    inputs = [str(FIXTURES / name) for name in ("groceries.ogg", "migration.wav", "unknown.xyz")]
    result = run("ingest", *inputs, "--wait", "--json")
    assert result.exit_code == 1, "a refused input is a user error: " + result.output
    states = {s["title"]: s["state"] for s in json.loads(result.stdout)["sources"]}
    assert states == {"groceries.ogg": "searchable", "migration.wav": "awaiting_consent", "unknown.xyz": "refused"}

    found = run("search", "dentist visit", "-k", "2", "--json")
    assert found.exit_code == 0, found.output
    payload = json.loads(found.stdout)
    assert set(payload) == {"query", "results", "skipped", "filters"}
    assert payload["query"] == "dentist visit" and payload["skipped"] == []
    top = payload["results"][0]
    assert set(top) == {
        "rank",
        "score",
        "source_key",
        "title",
        "kind",
        "start_s",
        "end_s",
        "text",
        "citation",
        "speaker",
    }
    assert top["rank"] == 1 and top["title"] == "groceries.ogg" and top["kind"] == "audio"
    assert isinstance(top["score"], float) and isinstance(top["start_s"], float)
    assert top["citation"].startswith("groceries.ogg @ 00:")

    pending = run("consent", "list", "--pending", "--json")
    items = json.loads(pending.stdout)["consent"]
    assert {(i["title"], i["scope"]) for i in items} == {("migration.wav", "transcribe"), ("migration.wav", "index")}

    granted = run("consent", "grant", "migration.wav", "--party", "me", "--scope", "all", "--wait")
    assert granted.exit_code == 0, granted.output
    assert "now searchable" in granted.output
    for mode in ("hybrid", "vector", "keyword"):
        hit = json.loads(run("search", "Postgres database", "--mode", mode, "-k", "1", "--json").stdout)["results"][0]
        assert hit["title"] == "migration.wav", mode

    status = json.loads(run("status", "--json").stdout)["sources"]
    assert {s["title"]: s["state"] for s in status} == {"groceries.ogg": "searchable", "migration.wav": "searchable"}, (
        "a refused input was never copied, so it is not in quarantine either"
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("search", "anything", "--mode", "fuzzy"), "unknown search mode 'fuzzy'"),
        (("search", "   "), "the query is empty"),
        (("consent", "grant", "nope.mp3", "--party", "me", "--scope", "all"), "no source matches 'nope.mp3'"),
        (("ingest", "/no/such/file.mp3"), "no such file"),
        (("ingest", str(FIXTURES / "standup.mp3"), "--origin", "fax"), "unknown origin 'fax'"),
    ],
)
def test_user_errors_exit_1_with_a_clear_message(run, args, needle) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert needle in result.output


def test_bad_settings_are_a_user_error(run, home: Path) -> None:
    home.mkdir(parents=True)
    (home / "grace.toml").write_text("chunk_chars = -5\n")
    result = run("status")
    assert result.exit_code == 1
    assert "chunk_chars" in result.output


def _silence(path: Path, seconds: float = 4.0) -> Path:
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\x00\x00" * int(16000 * seconds))
    return path


@pytest.mark.slow  # three ingests of a recording, one with a broken engine
def test_bad_input_is_handled_and_a_system_failure_exits_2(run, home: Path, tmp_path: Path) -> None:
    silent = _silence(tmp_path / "silence.wav")
    write_sidecar(silent, grants={"me": ["all"]})
    result = run("ingest", str(silent), "--wait", "--json")
    assert result.exit_code == 0, result.output
    (source,) = json.loads(result.stdout)["sources"]
    assert source["state"] == "failed" and "silence.wav: no speech recognised" in source["why"]
    from grace_pipelines.api import Grace

    store = Grace(home).defs.resources["blob_store"]
    assert store.get_bytes(source["source_key"], "original") == silent.read_bytes(), "the bytes are kept"

    # a broken engine configuration is a system failure: exit 2, and the state says why
    other = _silence(tmp_path / "other.wav", seconds=5.0)
    write_sidecar(other, grants={"me": ["all"]})
    (home / "grace.toml").write_text('whisper_model = "/no/such/whisper"\n')
    broken = run("ingest", str(other), "--wait", "--json")
    assert broken.exit_code == 2, broken.output
    (failed,) = json.loads(broken.stdout)["sources"]
    assert failed["state"] == "failed" and "/no/such/whisper" in failed["why"]

    # fixing the configuration and dropping the same file again retries it
    (home / "grace.toml").unlink()
    retried = run("ingest", str(other), "--wait", "--json")
    assert retried.exit_code == 0, retried.output
    (again,) = json.loads(retried.stdout)["sources"]
    assert again["source_key"] == failed["source_key"]
    assert again["state"] == "failed" and "no speech recognised" in again["why"], "now judged on its content"


# ---- every path is reported; refused input exits 1 ---------------------------------------------
def _doc(path: Path, text: str) -> Path:
    return drop_file(path.parent, name=path.name, data=text, age_s=None)


def test_same_names_and_more_paths_than_a_tick_are_all_ingested(run, home: Path, tmp_path: Path) -> None:
    home.mkdir(parents=True)
    (home / "grace.toml").write_text("max_files_per_tick = 1\n")
    paths = [
        _doc(tmp_path / "a" / "notes.md", "# A\n\nApples in the orchard.\n"),
        _doc(tmp_path / "b" / "notes.md", "# B\n\nBananas on the boat.\n"),
        _doc(tmp_path / "c.md", "# C\n\nCherries in the cellar.\n"),
    ]
    result = run("ingest", *map(str, paths), "--wait", "--json")
    assert result.exit_code == 0, result.output
    sources = json.loads(result.stdout)["sources"]
    assert [s["path"] for s in sources] == [str(p) for p in paths]
    assert [s["title"] for s in sources] == ["notes.md", "notes-2.md", "c.md"], "the second notes.md is not lost"
    assert [s["state"] for s in sources] == ["awaiting_consent"] * 3
    assert len({s["source_key"] for s in sources}) == 3
    assert list((home / "inbox").iterdir()) == []


def test_a_missing_path_or_a_directory_does_not_abort_the_batch(run, home: Path, tmp_path: Path) -> None:
    good = _doc(tmp_path / "first.md", "# First\n")
    folder = tmp_path / "a folder"
    folder.mkdir()
    result = run("ingest", str(good), str(tmp_path / "gone.md"), str(folder), "--json")
    assert result.exit_code == 1, result.output
    first, gone, directory = json.loads(result.stdout)["sources"]
    assert first["state"] == "processing" and (home / "inbox" / "first.md").read_text() == "# First\n"
    assert gone["state"] == "refused" and gone["why"] == f"{tmp_path / 'gone.md'}: no such file"
    assert directory["state"] == "refused" and "is a directory" in directory["why"]


def test_a_symlink_is_refused_and_never_followed(run, home: Path, tmp_path: Path) -> None:
    secret = _doc(tmp_path / "private" / "passwd.md", "root:x:0:0:root:/root:/bin/bash\n")
    link = tmp_path / "innocent.md"
    link.symlink_to(secret)
    result = run("ingest", str(link), "--wait", "--json")
    assert result.exit_code == 1, result.output
    (source,) = json.loads(result.stdout)["sources"]
    assert source["state"] == "refused"
    assert source["why"] == f"{link}: is a symbolic link; links are never followed (give the file itself)"
    assert list((home / "inbox").iterdir()) == [] and list((home / "quarantine").iterdir()) == []
    assert json.loads(run("status", "--json").stdout)["sources"] == []


def test_size_type_and_name_are_judged_before_copying(run, home: Path, tmp_path: Path) -> None:
    home.mkdir(parents=True)
    (home / "grace.toml").write_text(f"max_file_bytes = {1024 * 1024}\n")
    big = tmp_path / "huge.wav"
    with big.open("wb") as handle:
        handle.truncate(256 * 1024 * 1024)  # sparse: nothing is written, but it is 256 MiB
    draft = _doc(tmp_path / "~draft.md", "# an editor's temporary copy\n")
    started = time.perf_counter()
    result = run("ingest", str(big), str(draft), str(tmp_path / "...md"), "--wait", "--json")
    assert time.perf_counter() - started < 30
    assert result.exit_code == 1, result.output
    huge, temporary, dots = json.loads(result.stdout)["sources"]
    assert huge["state"] == "refused"
    assert huge["why"] == f"{big}: file is {256 * 1024 * 1024} bytes, above the limit of 1048576 bytes"
    assert temporary["state"] == "ignored" and "editor temporary or lock file" in temporary["why"]
    assert dots["state"] == "refused" and "no such file" in dots["why"]
    (tmp_path / "...md").write_text("# dots\n")
    again = json.loads(run("ingest", str(tmp_path / "...md"), "--json").stdout)["sources"][0]
    assert again["state"] == "refused" and again["why"].endswith("...md: no file name before the extension .md")
    assert list((home / "inbox").iterdir()) == [], "nothing refused is copied into the inbox"
    assert list((home / "quarantine").iterdir()) == [], "nor into quarantine: the user still has the file"


def test_sources_registered_by_another_process_are_reported(run, home: Path, tmp_path: Path, monkeypatch) -> None:
    from grace_pipelines import api
    from grace_pipelines.db.state import StateDB
    from grace_pipelines.settings import load_settings

    waiting = _doc(tmp_path / "waiting.md", "# Waiting\n\nRegistered by the daemon first.\n")
    taken = _doc(tmp_path / "taken.md", "# Taken\n\nAlready moved out of the inbox by the daemon.\n")
    real_scan = api.scan_inbox

    def racing_scan(settings, db, *args, **kwargs):
        # the daemon's inbox sensor ticks between the copy and this command's own scan
        other = StateDB(load_settings(home=home).state_url)
        real_scan(settings, other, None, settle_seconds=0)
        row = next(r for r in other.list_sources() if r.title == "taken.md")
        Path(row.inbox_path).unlink()  # and its run already stored it
        other.update_source(row.key, inbox_path=None, stage="stored")
        return real_scan(settings, db, *args, **kwargs)

    monkeypatch.setattr(api, "scan_inbox", racing_scan)
    result = run("ingest", str(waiting), str(taken), "--wait", "--json")
    assert result.exit_code == 0, result.output
    sources = json.loads(result.stdout)["sources"]
    assert [s["title"] for s in sources] == ["waiting.md", "taken.md"], "none is left out"
    for source in sources:
        assert source["source_key"] and source["state"] == "processing"
        assert source["why"].startswith("already registered by another process; "), source["why"]


def test_printed_grant_commands_are_safe_to_paste(run, home: Path, tmp_path: Path) -> None:
    import os
    import subprocess

    party = "x; touch PWNED_$(id -u)"
    note = _doc(tmp_path / "meeting.md", "# Meeting\n\nWe met.\n")
    write_sidecar(note, participants=["me", party])
    result = run("ingest", str(note), "--wait", "--json")
    assert result.exit_code == 0, result.output
    (source,) = json.loads(result.stdout)["sources"]
    assert source["state"] == "awaiting_consent"
    items = json.loads(run("consent", "list", "--pending", "--json").stdout)["consent"]
    commands = [c for item in items for c in item["commands"]]
    status_why = json.loads(run("status", "--json").stdout)["sources"][0]["why"]
    hostile = [c for c in commands if "PWNED" in c]
    assert len(hostile) == 2 and all(c in status_why for c in commands)

    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "grace").write_text('#!/bin/sh\nprintf \'%s\\0\' "$@" > "$ARGS_OUT"\n')
    (stub / "grace").chmod(0o755)
    workdir = tmp_path / "paste-here"
    workdir.mkdir()
    for command in hostile:
        out = tmp_path / "args.bin"
        env = {**os.environ, "PATH": f"{stub}:{os.environ['PATH']}", "ARGS_OUT": str(out)}
        subprocess.run(["bash", "-c", command], cwd=workdir, env=env, check=True)
        args = out.read_bytes().split(b"\0")[:-1]
        assert [a.decode() for a in args[:4]] == ["consent", "grant", source["source_key"], "--party"]
        assert args[4].decode() == party, "the party arrives as one argument"
        assert args[5].decode() == "--scope" and len(args) == 7
    assert list(workdir.iterdir()) == [], "pasting the command ran nothing"
    assert not list(tmp_path.rglob("PWNED*"))
