"""`grace keys` and `grace audit` on a real GRACE_HOME: rotation keeps every blob readable,
the audit log records consent, quarantine, purge and rotation, and tampering is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from grace_pipelines.cli import app

from ..conftest import FIXTURES

pytestmark = pytest.mark.slow  # each test ingests and rotates keys through the CLI; tests/crypto covers rotation


@pytest.fixture
def run(home: Path):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [*args], env={"GRACE_HOME": str(home), "COLUMNS": "200"})

    return invoke


def test_keys_rotate_status_verify_and_audit_trail(run, home: Path) -> None:
    assert run("init").exit_code == 0
    ingest = run("ingest", str(FIXTURES / "groceries.ogg"), str(FIXTURES / "corrupt.mp3"), "--wait", "--json")
    assert ingest.exit_code == 1, ingest.output  # corrupt.mp3 is quarantined: exit 1
    before = json.loads(run("keys", "status", "--json").stdout)["keys"]
    (old,) = [k for k in before["keys"] if k["state"] == "active"]
    assert old["blobs"] >= 4  # original, transcript, chunks, text key

    rotated = run("keys", "rotate", "--json")
    assert rotated.exit_code == 0, rotated.output
    report = json.loads(rotated.stdout)["rotation"]
    assert report["retired"] == [old["id"]] and report["rewrapped"] == old["blobs"] == report["verified"]
    after = json.loads(run("keys", "status", "--json").stdout)["keys"]
    states = {k["id"]: (k["state"], k["blobs"]) for k in after["keys"]}
    assert states[old["id"]] == ("retired", 0) and states[report["new_key_id"]] == ("active", old["blobs"])
    assert run("keys", "verify").exit_code == 0
    hit = json.loads(run("search", "dentist", "--json", "-k", "1").stdout)["results"][0]
    assert hit["title"] == "groceries.ogg", "everything still decrypts after rotation"

    run("consent", "revoke", "groceries.ogg", "--party", "me", "--scope", "all", "--wait")
    tail = json.loads(run("audit", "tail", "-n", "50", "--json").stdout)["entries"]
    actions = [e["action"] for e in tail]
    for expected in ("consent.grant", "quarantine", "key.rotate", "consent.revoke", "purge"):
        assert expected in actions, expected
    verified = run("audit", "verify", "--json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["audit"]["ok"] is True

    # tamper with one audit row: verify names it and exits 2
    engine = sa.create_engine(f"sqlite:///{home / 'grace.db'}")
    with engine.begin() as conn:
        seq = conn.execute(sa.text("SELECT seq FROM audit_log WHERE action = 'consent.revoke' LIMIT 1")).scalar()
        conn.execute(sa.text("UPDATE audit_log SET subject = 'someone-else' WHERE seq = :s"), {"s": seq})
    engine.dispose()
    broken = run("audit", "verify", "--json")
    assert broken.exit_code == 2
    problems = json.loads(broken.stdout)["audit"]["problems"]
    assert any(p["seq"] == seq and p["kind"] == "edited" for p in problems), problems


def _damage(run, home: Path, blob: str) -> Path:
    """Ingest a recording and flip one byte of its sealed `blob`."""
    run("ingest", str(FIXTURES / "groceries.ogg"), "--wait")
    victim = next((home / "store").glob(f"*/{blob}"))
    data = bytearray(victim.read_bytes())
    data[-5] ^= 0xFF
    victim.write_bytes(bytes(data))
    return victim


def test_keys_verify_names_a_damaged_blob(run, home: Path) -> None:
    victim = _damage(run, home, "transcript.json")
    result = run("keys", "verify")
    assert result.exit_code == 2
    assert f"{victim.parent.name}/transcript.json" in result.output


def test_rotation_over_a_damaged_blob_names_it(run, home: Path) -> None:
    victim = _damage(run, home, "chunks.json")
    result = run("keys", "rotate")
    assert result.exit_code == 2
    assert f"{victim.parent.name}/chunks.json" in " ".join(result.output.split())
