"""The vault end to end: a credential is sealed at rest, refused (and audited) without an
approval for the purpose, used once approved by the real OpenAI client against a local
fake server, re-wrapped by key rotation, and never seen in files, logs, events or output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from typer.testing import CliRunner

from grace_pipelines.api import Grace
from grace_pipelines.cli import app
from grace_pipelines.governance.vault import VaultError, VaultRefused

from ..conftest import FIXTURES
from ..resources.local_http import local_server, send_json

SECRET = "sk-test-grace-VAULTED-0123456789abcdefXYZ"
DIM = 1536


def _materialization_records(instance: dg.DagsterInstance) -> Iterator[dg.EventLogRecord]:
    """Every asset materialization in `instance`, asset by asset, every page."""
    for key in instance.get_asset_keys():
        cursor = None
        while True:
            page = instance.fetch_materializations(key, limit=100, cursor=cursor)
            yield from page.records
            if not page.has_more:
                break
            cursor = page.cursor


@pytest.fixture
def fake_openai():
    seen: list[str] = []

    def on_post(handler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)))
        seen.append(handler.headers.get("Authorization", ""))
        if handler.headers.get("Authorization") != f"Bearer {SECRET}":
            send_json(handler, 401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
            return
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        rng = np.random.default_rng(len(inputs))
        data = [
            {"object": "embedding", "index": i, "embedding": rng.normal(size=DIM).tolist()} for i in range(len(inputs))
        ]
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        send_json(handler, 200, {"object": "list", "data": data, "model": body["model"], "usage": usage})

    with local_server(on_post) as base_url:
        yield base_url, seen


@pytest.mark.slow  # three CLI ingests, a key rotation and a scan of every file
def test_vault_flow_and_no_leak(home: Path, fake_openai, capsys, caplog) -> None:
    base_url, seen = fake_openai
    runner = CliRunner()
    env = {"GRACE_HOME": str(home), "COLUMNS": "200", "GRACE_EMBEDDER": "openai", "GRACE_OPENAI_BASE_URL": base_url}

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), env=env, input=input)

    assert run("init").exit_code == 0
    setting = run("secrets", "set", "openai", input=SECRET + "\n")
    assert setting.exit_code == 0, setting.output
    assert SECRET not in setting.output

    # unapproved use: refused with the command that approves it, pending, audited
    first = run("ingest", str(FIXTURES / "groceries.ogg"), "--wait", "--json")
    assert first.exit_code == 2, first.output
    (state,) = json.loads(first.stdout)["sources"]
    assert state["state"] == "failed" and "grace secrets approve openai --purpose embedding" in state["why"]
    pending = json.loads(run("secrets", "pending", "--json").stdout)["pending"]
    assert [(p["name"], p["purpose"]) for p in pending] == [("openai", "embedding")]
    assert seen == [], "nothing reached the API without approval"

    assert run("secrets", "approve", "openai", "--purpose", "embedding", "--ttl", "30d").exit_code == 0
    assert json.loads(run("secrets", "pending", "--json").stdout)["pending"] == []
    second = run("ingest", str(FIXTURES / "groceries.ogg"), "--wait", "--json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["sources"][0]["state"] == "searchable"
    assert seen and all(h == f"Bearer {SECRET}" for h in seen)

    listed = json.loads(run("secrets", "list", "--json").stdout)["secrets"]
    assert listed[0]["name"] == "openai" and listed[0]["approvals"][0]["purpose"] == "embedding"

    # rotation re-wraps the vault too: the secret still opens afterwards
    assert run("keys", "rotate").exit_code == 0
    grace = Grace(home)
    assert grace.vault.use("openai", "embedding", actor="test") == SECRET

    assert run("secrets", "revoke", "openai").exit_code == 0
    with pytest.raises(VaultRefused):
        grace.vault.use("openai", "embedding", actor="test")
    actions = [e["action"] for e in grace.audit_tail(100)]
    for expected in ("vault.set", "vault.refuse", "vault.approve", "vault.use", "vault.revoke"):
        assert expected in actions

    # the value is nowhere: files (state DB, Dagster event logs, LanceDB, store), output, logs
    needle = SECRET.encode()
    for path in home.rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), path
    with grace.instance() as instance:
        for record in _materialization_records(instance):
            assert SECRET not in str(record.event_log_entry)
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert SECRET not in caplog.text


def test_secret_names_and_argv(home: Path) -> None:
    grace = Grace(home)
    with pytest.raises(VaultError, match="invalid secret name"):
        grace.vault.set("../etc", "x", actor="t")
    with pytest.raises(VaultError, match="no secret named 'nope'"):
        grace.vault.approve("nope", "embedding", actor="t")
    result = CliRunner().invoke(
        app, ["secrets", "set", "openai", "sk-on-the-command-line"], env={"GRACE_HOME": str(home)}
    )
    assert result.exit_code != 0, "values are never taken from argv"


def test_a_refused_request_is_closed_unapproved_and_audited(home: Path) -> None:
    grace = Grace(home)
    grace.vault.set("openai", "value-never-shown", actor="t")
    with pytest.raises(VaultRefused):
        grace.vault.use("openai", "embedding", actor="engine")
    env = {"GRACE_HOME": str(home)}
    result = CliRunner().invoke(app, ["secrets", "refuse", "openai", "--purpose", "embedding"], env=env)
    assert result.exit_code == 0 and "refused 1 pending use" in result.output
    assert grace.vault.pending() == []
    with pytest.raises(VaultRefused):  # still not approved
        grace.vault.use("openai", "embedding", actor="engine")
    assert any(e["action"] == "vault.refuse" and e["subject"] == "openai" for e in grace.audit_tail(5))
    nothing = CliRunner().invoke(app, ["secrets", "refuse", "openai", "--purpose", "transcription"], env=env)
    assert nothing.exit_code == 1 and "no pending request" in nothing.output
