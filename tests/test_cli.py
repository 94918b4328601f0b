"""`grace` CLI: the contract scripts rely on (exit codes, one JSON object with --json)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grace_pipelines.cli import app

from .conftest import FIXTURES


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


def test_ingest_wait_search_json_and_consent(run, home: Path) -> None:
    assert run("init").exit_code == 0
    result = run("ingest", str(FIXTURES / "groceries.ogg"), str(FIXTURES / "migration.wav"), str(FIXTURES / "unknown.xyz"), "--wait", "--json")
    assert result.exit_code == 0, result.output
    states = {s["title"]: s["state"] for s in json.loads(result.stdout)["sources"]}
    assert states == {"groceries.ogg": "searchable", "migration.wav": "awaiting_consent", "unknown.xyz": "quarantined"}

    found = run("search", "dentist visit", "-k", "2", "--json")
    assert found.exit_code == 0, found.output
    payload = json.loads(found.stdout)
    assert set(payload) == {"query", "results", "skipped"} and payload["query"] == "dentist visit" and payload["skipped"] == []
    top = payload["results"][0]
    assert set(top) == {"rank", "score", "source_key", "title", "kind", "start_s", "end_s", "text", "citation"}
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
    assert {s["title"]: s["state"] for s in status} == {
        "groceries.ogg": "searchable", "migration.wav": "searchable", "unknown.xyz": "quarantined"
    }


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


def test_bad_input_is_handled_and_a_system_failure_exits_2(run, home: Path, tmp_path: Path) -> None:
    silent = _silence(tmp_path / "silence.wav")
    (tmp_path / "silence.wav.consent.json").write_text('{"grants": [{"party": "me", "scopes": ["all"]}]}')
    result = run("ingest", str(silent), "--wait", "--json")
    assert result.exit_code == 0, result.output
    (source,) = json.loads(result.stdout)["sources"]
    assert source["state"] == "failed" and "silence.wav: no speech recognised" in source["why"]
    from grace_pipelines.api import Grace

    store = Grace(home).defs.resources["blob_store"]
    assert store.get_bytes(source["source_key"], "original") == silent.read_bytes(), "the bytes are kept"

    # a broken engine configuration is a system failure: exit 2, and the state says why
    other = _silence(tmp_path / "other.wav", seconds=5.0)
    (tmp_path / "other.wav.consent.json").write_text('{"grants": [{"party": "me", "scopes": ["all"]}]}')
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
