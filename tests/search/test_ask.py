"""`grace ask`: extractive answers with citations, 'nothing found', and a generated answer from
an OpenAI-compatible chat endpoint (a local fake over HTTP, the real openai client) whose key
comes from the vault."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from grace_pipelines.api import Grace, GraceError
from grace_pipelines.cli import app
from grace_pipelines.search.answer import EXTRACTIVE_LABEL, NOT_FOUND

from ..conftest import FIXTURES, clean_env
from ..resources.local_http import local_server, send_json

KEY = "sk-chat-test-key-000000000000000000"


@pytest.fixture(scope="module")
def grace(tmp_path_factory: pytest.TempPathFactory):
    """One GRACE_HOME with two recordings, shared by the tests that only ask (each ingest is seconds)."""
    with pytest.MonkeyPatch.context() as monkeypatch, dg.instance_for_test() as instance:
        clean_env(monkeypatch)  # built before the per-test _clean_env runs
        g = Grace(tmp_path_factory.mktemp("ask") / "grace", instance=instance)
        g.ingest([FIXTURES / "standup.mp3", FIXTURES / "groceries.ogg"], wait=True)
        yield g


def test_extractive_answer_cites_the_moment(grace: Grace) -> None:
    answer = grace.ask("When is the quarterly report due?")
    assert answer.mode == "extractive"
    assert answer.answer.startswith(EXTRACTIVE_LABEL)
    assert "Friday" in answer.answer and "[1]" in answer.answer
    first = answer.citations[0]
    assert first.n == 1 and first.title == "standup.mp3" and first.citation.startswith("standup.mp3 @ 00:0")
    assert "basil" not in answer.answer, "only what answers the question"


def test_nothing_relevant_says_so(grace: Grace) -> None:
    answer = grace.ask("What is the boiling point of tungsten?")
    assert answer.mode == "not_found" and answer.answer == NOT_FOUND and answer.citations == []


@pytest.mark.slow  # a second engine (chat endpoint) over its own ingest
def test_generated_answer_through_a_chat_endpoint_with_a_vaulted_key(home: Path) -> None:
    seen: list[dict] = []

    def on_post(handler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)))
        seen.append({"auth": handler.headers.get("Authorization"), "path": handler.path, "body": body})
        if handler.headers.get("Authorization") != f"Bearer {KEY}":
            send_json(handler, 401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
            return
        send_json(
            handler,
            200,
            {
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "The report is now due on Friday the 12th [1]."},
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )

    with local_server(on_post) as base_url, dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance, chat_model="test-chat", openai_base_url=base_url)
        grace.ingest([FIXTURES / "standup.mp3"], wait=True)
        grace.vault.set("openai", KEY, actor="test")
        with pytest.raises(GraceError, match="grace secrets approve openai --purpose answering"):
            grace.ask("When is the quarterly report due?")
        assert seen == []
        grace.vault.approve("openai", "answering", actor="test")
        answer = grace.ask("When is the quarterly report due?")
    assert answer.mode == "generated" and answer.model == "test-chat"
    assert answer.answer == "The report is now due on Friday the 12th [1]."
    (request,) = seen
    assert request["path"] == "/v1/chat/completions" and request["auth"] == f"Bearer {KEY}"
    user = request["body"]["messages"][-1]["content"]
    assert "Question: When is the quarterly report due?" in user
    assert "[1] (standup.mp3 @" in user and "quarterly report" in user
    assert "cite" in request["body"]["messages"][0]["content"]


@pytest.mark.slow  # the CLI over its own ingest; the fast tier asks through the facade
def test_ask_cli_json(home: Path) -> None:
    runner = CliRunner()
    env = {"GRACE_HOME": str(home)}
    assert runner.invoke(app, ["ingest", str(FIXTURES / "groceries.ogg"), "--wait"], env=env).exit_code == 0
    result = runner.invoke(app, ["ask", "When is my dentist visit?", "--json"], env=env)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["mode"] == "extractive" and "Tuesday" in payload["answer"]
    assert payload["citations"][0]["title"] == "groceries.ogg"
    human = runner.invoke(app, ["ask", "When is my dentist visit?"], env=env)
    assert "[1] groceries.ogg @ 00:" in human.output
