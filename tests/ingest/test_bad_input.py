"""A corpus of bad input, all in one batch with one good file: through `grace ingest --wait`
(every path reported with its outcome and reason, exit 1, the good file searchable) and
through the inbox sensor (it never raises, the good file is launched, each bad one is
quarantined with a reason file). Plus the name and text helpers they rely on."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from grace_pipelines.cli import app
from grace_pipelines.db.state import StateDB
from grace_pipelines.definitions import build_definitions
from grace_pipelines.ingest.inbox import ORPHAN_SIDECAR_AFTER_S
from grace_pipelines.ingest.media import name_problem, safe_name, safe_text
from grace_pipelines.settings import load_settings

from ..conftest import FIXTURES, Driver

GRANT_ME = b'{"grants": [{"party": "me", "scopes": ["all"]}]}'
HOSTILE = "-rf \x1b[31mred\u202eevil\nname.md"
LONG = "L" * 244 + ".wav"  # 248 bytes: NAME.consent.json would be 261, past the 255-byte limit

# name in the corpus -> (CLI outcome, words its reason must contain)
EXPECTED = {
    "good.md": ("searchable", "indexed"),
    "good.md.consent.json": ("searchable", "consent sidecar of good.md"),
    "truncated.m4a": ("quarantined", "not decodable audio"),
    "random.ogg": ("quarantined", "not decodable audio"),
    "empty.wav": ("refused", "file is empty (0 bytes)"),
    "notes.xyz": ("refused", "unsupported file type .xyz"),
    "text-named.mp3": ("quarantined", "not decodable audio"),
    HOSTILE: ("quarantined", "looks binary"),
    LONG: ("quarantined", "not decodable audio"),
    "link.md": ("refused", "is a symbolic link; links are never followed"),
    "folder": ("refused", "is a directory"),
    "missing.md": ("refused", "no such file"),
    "badjson.md": ("refused", "is not valid JSON"),
    "badjson.md.consent.json": ("refused", "consent sidecar of badjson.md"),
    "wrongtypes.md": ("refused", "is invalid: participants"),
    "wrongtypes.md.consent.json": ("refused", "consent sidecar of wrongtypes.md"),
    "huge.md": ("refused", "a sidecar is at most"),
    "huge.md.consent.json": ("refused", "consent sidecar of huge.md"),
    "crowd.md": ("refused", "at most 100 are allowed"),
    "crowd.md.consent.json": ("refused", "consent sidecar of crowd.md"),
    "orphan.mp3.consent.json": ("ignored", "orphan consent sidecar"),
    "~draft.md": ("ignored", "editor temporary or lock file"),
    ".hidden.md": ("ignored", "hidden file"),
    "...md": ("refused", "no file name before the extension .md"),
}


def make_corpus(folder: Path, secret: Path) -> list[Path]:
    """Write the corpus into `folder`; returns the paths to give `grace ingest`, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "good.md").write_bytes((FIXTURES / "project_notes.md").read_bytes())
    (folder / "good.md.consent.json").write_bytes(GRANT_ME)
    (folder / "truncated.m4a").write_bytes((FIXTURES / "reminder.m4a").read_bytes()[:2000])
    (folder / "random.ogg").write_bytes(os.urandom(3000))
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.xyz").write_bytes(b"what is this")
    (folder / "text-named.mp3").write_bytes(b"just some text, not audio at all\n" * 20)
    (folder / HOSTILE).write_bytes(b"\x00\x01binary\x00 bytes")
    (folder / LONG).write_bytes(b"text, not a wave file\n" * 10)
    (folder / "link.md").symlink_to(secret)
    (folder / "folder").mkdir()
    (folder / "badjson.md").write_text("# Bad JSON beside me\n")
    (folder / "badjson.md.consent.json").write_bytes(b'{"participants": [')
    (folder / "wrongtypes.md").write_text("# Wrong types beside me\n")
    (folder / "wrongtypes.md.consent.json").write_bytes(b'{"participants": "me", "grants": {"party": 1}}')
    (folder / "huge.md").write_text("# A huge sidecar beside me\n")
    (folder / "huge.md.consent.json").write_text(json.dumps({"participants": [f"person {i}" for i in range(60_000)]}))
    (folder / "crowd.md").write_text("# A crowd beside me\n")
    (folder / "crowd.md.consent.json").write_text(json.dumps({"participants": [f"p{i}" for i in range(150)]}))
    (folder / "orphan.mp3.consent.json").write_bytes(GRANT_ME)
    (folder / "~draft.md").write_text("# draft\n")
    (folder / ".hidden.md").write_text("# hidden\n")
    (folder / "...md").write_text("# dots\n")
    return [folder / name for name in EXPECTED]


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.md"
    path.write_text("# Secret\n\nThe vault combination is zebra-42.\n")
    return path


def test_one_batch_of_bad_input_reports_every_path_and_the_good_file_is_searchable(
    home: Path, tmp_path: Path, secret: Path
) -> None:
    paths = make_corpus(tmp_path / "corpus", secret)
    runner = CliRunner()
    env = {"GRACE_HOME": str(home), "COLUMNS": "200"}
    result = runner.invoke(app, ["ingest", *map(str, paths), "--wait", "--json"], env=env)
    assert result.exit_code == 1, result.output
    sources = json.loads(result.stdout)["sources"]
    assert [s["path"] for s in sources] == [str(p) for p in paths], "every path, in order"
    for path, source in zip(paths, sources):
        state, needle = EXPECTED[path.name]
        assert source["state"] == state, (path.name, source)
        assert needle in source["why"], (path.name, source["why"])
        assert len(source["why"]) <= 1000, (path.name, len(source["why"]))
        for text in (source["title"], source["why"]):
            assert all(ch.isprintable() for ch in text), (path.name, text)
        if "sidecar of" not in source["why"] and state != "searchable":
            assert safe_name(path.name)[:20] in source["why"], ("the reason names the file", path.name, source["why"])
    by_name = dict(zip((p.name for p in paths), sources))
    assert not by_name[HOSTILE]["title"].startswith("-") and "\n" not in by_name[HOSTILE]["title"]
    assert len(by_name[LONG]["title"].encode()) <= 200
    assert "zebra-42" not in result.stdout

    # the good file is searchable; nothing else became a source; the link's target was never read
    found = json.loads(runner.invoke(app, ["search", "project", "--json"], env=env).stdout)
    assert {r["title"] for r in found["results"]} == {"good.md"}
    status = json.loads(runner.invoke(app, ["status", "--json"], env=env).stdout)["sources"]
    assert {s["title"] for s in status if s["state"] != "quarantined"} == {"good.md"}
    assert "zebra-42" not in json.dumps(status)
    # refused inputs were never copied: only the content-quarantined ones are in quarantine
    quarantined = {q.name for q in (home / "quarantine").iterdir() if q.name.endswith(".reason.txt")}
    assert len(quarantined) == sum(state == "quarantined" for state, _ in EXPECTED.values())
    assert all(len(os.fsencode(q)) <= 255 for q in quarantined)
    leftovers = [p.name for p in (home / "inbox").rglob("*")]
    assert leftovers == [], leftovers

    # human output: every refused input is named on stderr, nothing renders as markup or escapes
    hostile = tmp_path / "corpus" / HOSTILE
    hostile.write_bytes(b"\x00\x01binary\x00 bytes")
    human = runner.invoke(
        app, ["ingest", str(tmp_path / "corpus" / "folder"), str(tmp_path / "nope.md"), str(hostile), "--wait"], env=env
    )
    assert human.exit_code == 1
    assert "is a directory" in human.output and "no such file" in human.output and "looks binary" in human.output
    assert "\x1b" not in human.output and "\u202e" not in human.output


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past), follow_symlinks=False)


def test_the_inbox_sensor_quarantines_each_bad_file_and_launches_the_good_one(
    home: Path, tmp_path: Path, secret: Path
) -> None:
    settings = load_settings(home=home, settle_seconds=2.0, tiny_batch_wait_s=0)
    settings.ensure_dirs()
    defs = build_definitions(settings)
    db = StateDB(settings.state_url)
    make_corpus(settings.inbox, secret)
    (settings.inbox / "folder").rmdir()  # a folder in the inbox is an origin folder, not input
    for entry in settings.inbox.iterdir():
        _age(entry, 30)
    with dg.instance_for_test() as instance:
        driver = Driver(defs, instance)
        first = driver.tick("inbox_sensor")  # must not raise
        (request,) = first.run_requests
        assert db.get_source(request.partition_key).title == "good.md"
        (run,) = driver.execute(first)
        assert run.success
        assert db.get_source(request.partition_key).stage == "searchable"
        # the orphan sidecar waits for its media a while, then is quarantined too
        assert (settings.inbox / "orphan.mp3.consent.json").exists()
        _age(settings.inbox / "orphan.mp3.consent.json", ORPHAN_SIDECAR_AFTER_S + 60)
        second = driver.tick("inbox_sensor")
        assert second.run_requests == []
        driver.tick("inbox_sensor")

    reasons = {q["filename"]: q["reason"] for q in db.list_quarantine()}
    sensor_expected = {
        "truncated.m4a": "not decodable audio",
        "random.ogg": "not decodable audio",
        "empty.wav": "file is empty (0 bytes)",
        "notes.xyz": "unsupported file type .xyz",
        "text-named.mp3": "not decodable audio",
        safe_name(HOSTILE): "looks binary",
        safe_name(LONG): "not decodable audio",
        "link.md": "is a symbolic link; links are never followed",
        "badjson.md": "is not valid JSON",
        "wrongtypes.md": "is invalid: participants",
        "huge.md": "a sidecar is at most",
        "crowd.md": "at most 100 are allowed",
        "orphan.mp3.consent.json": "orphan consent sidecar",
    }
    assert set(reasons) == set(sensor_expected), reasons
    for name, needle in sensor_expected.items():
        assert needle in reasons[name], (name, reasons[name])
        assert len(reasons[name]) <= 1000
    files = {p.name for p in settings.quarantine.iterdir()}
    for name, needle in sensor_expected.items():
        (reason_file,) = [f for f in files if f.endswith(f"-{name}.reason.txt")]
        text = (settings.quarantine / reason_file).read_text()
        assert f"file: {name}" in text and needle in text
    assert all(len(os.fsencode(f)) <= 255 for f in files)
    assert all(all(ch.isprintable() for ch in f) and not f.startswith("-") for f in files)
    # the link was moved as a link: its target is untouched and was never read into the store
    (moved,) = [settings.quarantine / f for f in files if f.endswith("-link.md")]
    assert moved.is_symlink() and secret.read_text().startswith("# Secret")
    # hidden and editor temporary files are left alone in the inbox (never picked up)
    assert sorted(p.name for p in settings.inbox.iterdir()) == ["...md", ".hidden.md", "~draft.md"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("...md", "no file name before the extension .md"),
        (".md", "no file name before the extension .md"),
        ("notes.", "the file name ends with '.': no extension"),
        ("notes.md", None),
        (".hidden.md", None),
    ],
)
def test_name_problem_names_the_real_problem(name: str, problem: str | None) -> None:
    assert name_problem(name) == problem


def test_safe_name_and_safe_text_are_printable_and_bounded() -> None:
    hostile = "-rf \x1b[31m\u202eevil\u200b\nname\udcff.md"
    shown = safe_name(hostile)
    assert all(ch.isprintable() for ch in shown) and not shown.startswith("-") and shown.endswith(".md")
    wide = "\U0001f600" * 200 + ".wav"  # 4-byte characters: 120 of them would be 480 bytes
    assert len(safe_name(wide).encode()) <= 200 and safe_name(wide).endswith("~.wav")
    assert len(safe_text("x" * 10_000)) == 600
    assert safe_text("a\nb\x1b") == "a_b_"
