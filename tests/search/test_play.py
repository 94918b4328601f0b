"""`grace play`: the cited moment of a sealed recording as a WAV clip."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grace_pipelines.cli import app

from ..conftest import FIXTURES

pytestmark = pytest.mark.slow  # CLI ingest, search and playback; tests/audio covers the clip itself


def test_play_writes_the_cited_window_with_context(home: Path, tmp_path: Path, manifest) -> None:
    runner = CliRunner()
    env = {"GRACE_HOME": str(home), "PATH": str(tmp_path / "nothing")}
    assert runner.invoke(app, ["ingest", str(FIXTURES / "standup.mp3"), "--wait"], env=env).exit_code == 0
    found = runner.invoke(app, ["search", "When is the quarterly report due?", "--json"], env=env)
    hit = json.loads(found.stdout)["results"][0]
    out = tmp_path / "clip.wav"
    result = runner.invoke(app, ["play", hit["citation"], "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    with wave.open(io.BytesIO(out.read_bytes())) as clip:
        seconds = clip.getnframes() / clip.getframerate()
    a, b = hit["citation"].split(" @ ")[1].split("-")
    to_s = lambda t: int(t.split(":")[0]) * 60 + int(t.split(":")[1])  # noqa: E731
    assert abs(seconds - (to_s(b) - to_s(a) + 2.0)) < 0.1

    no_player = runner.invoke(app, ["play", hit["citation"]], env=env)
    assert no_player.exit_code == 1 and "--out" in no_player.output
    document = runner.invoke(app, ["play", "notes.md, lines 3-9"], env=env)
    assert document.exit_code == 1 and "only recordings can be played" in document.output
    unknown = runner.invoke(app, ["play", "nothere.mp3 @ 00:01-00:02"], env=env)
    assert unknown.exit_code == 1 and "nothere.mp3" in unknown.output
