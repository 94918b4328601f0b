"""The CLI's fast path against a real `grace serve` (uvicorn in a thread on a free port, a real
GRACE_HOME with an ingested document): `grace search | ask | status --json` print the same JSON
through the server as in-process (GRACE_NO_FASTPATH=1), with the same human output and the same
user errors; a stale server.json (dead pid, refused port) falls back in-process; and `grace
--help` / a fast-path `grace status` load none of the heavy packages."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from typer.testing import CliRunner

from grace_pipelines.api import Grace
from grace_pipelines.cli import app as cli
from grace_pipelines.cli import fastpath

from ..conftest import clean_env, drop_file, serving

NOTES = (
    "# Osprey rollout\n\nThe osprey release ships to the Porto office on the third of June.\n"
    "Ines Duarte owns the rollback plan and rehearses it twice before the release.\n"
)
HEAVY = ("dagster", "lancedb", "onnxruntime", "faster_whisper", "great_expectations")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("fastpath")
    home = root / "grace"
    with pytest.MonkeyPatch.context() as mp, dg.instance_for_test() as instance:
        clean_env(mp)
        grace = Grace(home, instance=instance)
        doc = drop_file(root / "drop", name="osprey.md", data=NOTES, grants={"me": ["transcribe", "index"]})
        (outcome,) = grace.ingest([doc], wait=True)
        assert outcome.state == "searchable", outcome.why
        with serving(grace):
            yield home


def _run(home: Path, args: list[str], monkeypatch: pytest.MonkeyPatch, *, fast: bool) -> Any:
    if fast:
        monkeypatch.delenv(fastpath.DISABLE_ENV, raising=False)
        assert fastpath.server_for(home) is not None
    else:
        monkeypatch.setenv(fastpath.DISABLE_ENV, "1")
    return CliRunner().invoke(cli, [*args, "--home", str(home)])


def _no_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prove the server answered: the in-process facade is not reachable."""

    def refuse(_home: Any) -> Any:
        raise AssertionError("the fast path fell back in-process")

    for module in ("grace_pipelines.cli.search", "grace_pipelines.cli.sources"):
        monkeypatch.setattr(f"{module}.grace_for", refuse)


@pytest.mark.parametrize(
    "args",
    [
        ["search", "who owns the rollback plan", "--json"],
        ["search", "osprey release", "--mode", "keyword", "--kind", "document", "--since", "2020-01-01", "--json"],
        ["search", "who owns the rollback plan"],  # the human output too
        ["ask", "when does the osprey release ship", "--json"],
        ["ask", "when does the osprey release ship"],
        ["status", "--json"],
        ["status"],
    ],
)
def test_server_and_in_process_print_the_same(live: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    cold = _run(live, args, monkeypatch, fast=False)
    assert cold.exit_code == 0, cold.output
    with monkeypatch.context() as m:
        _no_in_process(m)
        warm = _run(live, args, m, fast=True)
    assert warm.exit_code == 0, warm.output
    assert warm.stdout == cold.stdout
    if "--json" in args:
        body = json.loads(warm.stdout)
        if args[0] == "search":
            assert body["results"] and body["results"][0]["title"] == "osprey.md"
        elif args[0] == "ask":
            assert body["mode"] == "extractive" and body["citations"]
        else:
            assert [s["title"] for s in body["sources"]] == ["osprey.md"]


def test_user_errors_are_the_same_either_way(live: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for args in (["search", "osprey", "--since", "the day the moon fell"], ["search", "osprey", "--mode", "psychic"]):
        cold = _run(live, args, monkeypatch, fast=False)
        warm = _run(live, args, monkeypatch, fast=True)
        assert cold.exit_code == warm.exit_code == 1, (cold.output, warm.output)
        assert "error:" in warm.output and warm.output == cold.output


def test_stale_server_json_falls_back_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "grace"
    web = home / "web"
    web.mkdir(parents=True)
    (web / "token").write_text("t" * 43)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        refused = probe.getsockname()[1]
    for pid, port in ((int(dead.stdout), 9), (os.getpid(), refused)):
        (web / "server.json").write_text(json.dumps({"pid": pid, "host": "127.0.0.1", "port": port}))
        assert fastpath.status(home) is None
        run = CliRunner().invoke(cli, ["status", "--json", "--home", str(home)])
        assert run.exit_code == 0, run.output
        assert json.loads(run.stdout) == {"sources": []}
    assert fastpath.server_for(home) is not None  # the live pid with a refused port: it was the connection


def _modules_after(argv: list[str], env: dict[str, str]) -> set[str]:
    code = (
        "import json, sys\nfrom grace_pipelines.cli import main\nsys.argv = ['grace', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('MODULES=' + json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, timeout=60)
    line = proc.stderr.rsplit("MODULES=", 1)
    assert len(line) == 2, proc.stderr[-2000:]
    return {name.split(".")[0] for name in json.loads(line[1])}


def test_help_and_fast_status_import_nothing_heavy(live: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRACE_") and k != "DAGSTER_HOME"}
    importtime = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import grace_pipelines.cli"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    imported = {line.split("|")[-1].strip().split(".")[0] for line in importtime.stderr.splitlines() if "|" in line}
    assert "grace_pipelines" in imported and "typer" in imported  # the capture works
    assert imported.isdisjoint(HEAVY), sorted(imported & set(HEAVY))
    assert _modules_after(["--help"], env).isdisjoint(HEAVY)
    fast = _modules_after(["status", "--json", "--home", str(live)], env)
    assert "http" in fast and fast.isdisjoint(HEAVY), sorted(fast & set(HEAVY))
