"""The HTTP API on a real GRACE_HOME: upload through the inbox's rules (refusals name the file,
nothing left behind; size limit), consent over HTTP releasing held work, the cited clip as WAV,
pending decisions, the OpenAPI schema, and JSON identical to the CLI's `--json`."""

from __future__ import annotations

import io
import json
import wave

from typer.testing import CliRunner

from grace_pipelines.cli import app as cli
from grace_pipelines.search.citations import parse_citation
from grace_pipelines.web.app import create_app

from ..conftest import FIXTURES
from .conftest import PORT, Served

NOTES = (
    "# Heron migration\n\nThe heron cluster moves to the new datacenter in Lisbon on the ninth of May.\n"
    "Rollback is owned by Ines Duarte and rehearsed twice before the cut-over.\n"
)
HELD = "# Kestrel budget\n\nThe kestrel budget review settles the hardware spend for the coming year.\n"


def _upload(client, name: str, data: bytes, consent: dict | None = None, **fields: str):
    files = {"file": (name, data, "application/octet-stream")}
    if consent is not None:
        files["consent"] = ("consent.json", json.dumps(consent).encode(), "application/json")
    return client.post("/api/v1/ingest", files=files, data=fields)


def _nothing_left(served: Served) -> None:
    uploads = served.home / "web" / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []
    assert [p for p in (served.home / "inbox").rglob("*") if p.is_file()] == []


def test_health_and_sources_as_grace_status(served: Served) -> None:
    client = served.client()
    assert client.get("/api/v1/health").json() == {"status": "ok", "sources": len(served.grace.db.list_sources())}
    listed = client.get("/api/v1/sources").json()
    cli_out = CliRunner().invoke(cli, ["status", "--json", "--home", str(served.home)])
    assert cli_out.exit_code == 0, cli_out.output
    assert listed == json.loads(cli_out.stdout)
    one = client.get("/api/v1/sources/standup.mp3").json()
    assert one["title"] == "standup.mp3" and one["state"] == "searchable"
    missing = client.get("/api/v1/sources/nothing.mp3")
    assert missing.status_code == 404 and "nothing.mp3" in missing.json()["detail"]


def test_search_and_ask_json_identical_to_the_cli(served: Served) -> None:
    client = served.client()
    query = "when is the quarterly report due"
    api = client.get("/api/v1/search", params={"q": query, "k": 3})
    assert api.status_code == 200
    run = CliRunner().invoke(cli, ["search", query, "-k", "3", "--json", "--home", str(served.home)])
    assert run.exit_code == 0, run.output
    assert api.json() == json.loads(run.stdout)
    assert api.json()["results"][0]["title"] == "standup.mp3"

    keyword = client.get("/api/v1/search", params={"q": query, "mode": "keyword", "kind": "audio"})
    run = CliRunner().invoke(
        cli, ["search", query, "--mode", "keyword", "--kind", "audio", "--json", "--home", str(served.home)]
    )
    assert keyword.json() == json.loads(run.stdout) and keyword.json()["filters"]["kind"] == "audio"

    asked = client.post("/api/v1/ask", json={"question": "When is the quarterly report due?"})
    run = CliRunner().invoke(cli, ["ask", "When is the quarterly report due?", "--json", "--home", str(served.home)])
    assert asked.json() == json.loads(run.stdout) and asked.json()["mode"] == "extractive"

    bad = client.get("/api/v1/search", params={"q": query, "since": "the day after never"})
    assert bad.status_code == 422 and "since" in bad.json()["detail"]
    assert client.get("/api/v1/search", params={"q": query, "mode": "psychic"}).status_code == 422
    nothing = client.get("/api/v1/search", params={"q": query, "origin": "meeting"}).json()
    assert nothing["results"] == []


def test_upload_with_consent_is_searchable(served: Served) -> None:
    client = served.client()
    consent = {"participants": ["me", "ines"], "grants": [{"party": p, "scopes": ["all"]} for p in ("me", "ines")]}
    done = _upload(client, "heron.md", NOTES.encode(), consent, wait="true")
    assert done.status_code == 200, done.text
    (source,) = done.json()["sources"]
    assert source["path"] == "heron.md" and source["state"] == "searchable", source
    assert client.get("/api/v1/sources/heron.md").json()["state"] == "searchable"
    found = client.get("/api/v1/search", params={"q": "heron datacenter Lisbon", "k": 1}).json()["results"]
    assert found[0]["title"] == "heron.md"
    _nothing_left(served)


def test_a_refused_upload_names_the_file_and_leaves_nothing(served: Served) -> None:
    client = served.client()
    before = len(served.grace.db.list_sources())
    refused = _upload(client, "unknown.xyz", (FIXTURES / "unknown.xyz").read_bytes())
    assert refused.status_code == 422
    body = refused.json()
    assert body["file"] == "unknown.xyz" and body["state"] in ("refused", "ignored")
    assert "unknown.xyz" in body["detail"] and str(served.home) not in body["detail"]
    empty = _upload(client, "empty.md", b"")
    assert empty.status_code == 422 and "empty.md" in empty.json()["detail"]
    bad_consent = client.post(
        "/api/v1/ingest", files={"file": ("bad.md", NOTES.encode()), "consent": ("c.json", b"{not json")}
    )
    assert bad_consent.status_code == 422 and "bad.md" in bad_consent.json()["detail"], bad_consent.text
    bad_origin = _upload(client, "origin.md", NOTES.encode(), origin="carrier-pigeon")
    assert bad_origin.status_code == 400 and "carrier-pigeon" in bad_origin.json()["detail"]
    no_file = client.post("/api/v1/ingest", data={"origin": "api"}, files={"consent": ("c.json", b"{}")})
    assert no_file.status_code == 400 and "file" in no_file.json()["detail"]
    not_multipart = client.post("/api/v1/ingest", json={"file": "x"})
    assert not_multipart.status_code == 400 and "multipart" in not_multipart.json()["detail"]
    assert len(served.grace.db.list_sources()) == before
    _nothing_left(served)


def test_uploads_over_the_limit_are_413(served: Served) -> None:
    small = create_app(served.grace.settings.model_copy(update={"upload_max_bytes": 1000}), served.grace, port=PORT)
    client = served.client(app=small)
    streamed = _upload(client, "big.md", b"x" * 5000)  # under the Content-Length precheck: counted while read
    assert streamed.status_code == 413 and "big.md" in streamed.json()["detail"]
    assert "1000 bytes" in streamed.json()["detail"]
    declared = _upload(client, "huge.md", b"x" * 600_000)
    assert declared.status_code == 413 and "limit" in declared.json()["detail"]
    _nothing_left(served)


def test_consent_over_http_releases_a_held_source(served: Served) -> None:
    client = served.client()
    consent = {"participants": ["me", "rui"], "grants": [{"party": "me", "scopes": ["all"]}]}
    held = _upload(client, "kestrel.md", HELD.encode(), consent, wait="true")
    (source,) = held.json()["sources"]
    assert source["state"] == "awaiting_consent" and "rui" in source["why"]
    decisions = client.get("/api/v1/decisions").json()
    rui = next(p for p in decisions["parties"] if p["party"] == "rui")
    assert {w["title"] for w in rui["waiting"]} == {"kestrel.md"} and decisions["credentials"] == []
    pending = client.get("/api/v1/consent", params={"pending": "true"}).json()["consent"]
    assert {(i["title"], i["scope"]) for i in pending} == {("kestrel.md", "transcribe"), ("kestrel.md", "index")}
    assert client.get("/api/v1/search", params={"q": "kestrel budget hardware"}).json()["results"] == [] or all(
        r["title"] != "kestrel.md" for r in client.get("/api/v1/search", params={"q": "kestrel"}).json()["results"]
    )

    stranger = client.post("/api/v1/consent/grant", json={"source": "kestrel.md", "party": "eve", "scope": "all"})
    assert stranger.status_code == 400 and "eve" in stranger.json()["detail"]
    granted = client.post(
        "/api/v1/consent/grant",
        json={"source": "kestrel.md", "party": "rui", "scope": "all", "ttl": "30d", "wait": True},
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["source"]["state"] == "searchable" and granted.json()["ids"]
    found = client.get("/api/v1/search", params={"q": "kestrel budget hardware", "k": 1}).json()["results"]
    assert found[0]["title"] == "kestrel.md"
    assert client.get("/api/v1/consent", params={"pending": "true"}).json()["consent"] == []
    audit = served.grace.audit_tail(20)
    assert any(e["actor"] == "web" and "rui" in json.dumps(e) for e in audit)

    revoked = client.post("/api/v1/consent/revoke", json={"source": "kestrel.md", "party": "rui", "scope": "index"})
    assert revoked.status_code == 200
    after = client.get("/api/v1/search", params={"q": "kestrel budget hardware"}).json()["results"]
    assert all(r["title"] != "kestrel.md" for r in after)


def test_a_refusal_is_a_decision_not_a_pending_request(served: Served) -> None:
    """Refuse on the decisions page records a revocation: the request leaves the pending list
    and the decisions, `consent list` marks the party refused, nothing is transcribed."""
    client = served.client()
    consent = {"participants": ["me", "noor"], "grants": [{"party": "me", "scopes": ["all"]}]}
    (source,) = _upload(
        client, "plover.md", b"# Plover\n\nThe plover nest needs a camera.\n", consent, wait="true"
    ).json()["sources"]
    assert source["state"] == "awaiting_consent"
    waiting = {p["party"] for p in client.get("/api/v1/decisions").json()["parties"]}
    assert "noor" in waiting
    refused = client.post("/api/v1/consent/revoke", json={"source": "plover.md", "party": "noor", "scope": "all"})
    assert refused.status_code == 200, refused.text
    decisions = client.get("/api/v1/decisions").json()["parties"]
    assert all(w["title"] != "plover.md" for p in decisions for w in p["waiting"])
    pending = client.get("/api/v1/consent", params={"pending": "true"}).json()["consent"]
    assert all(i["title"] != "plover.md" for i in pending)
    listed = [i for i in client.get("/api/v1/consent").json()["consent"] if i["title"] == "plover.md"]
    assert {i["scope"] for i in listed} == {"transcribe", "index"}
    assert all(i["missing"] == ["noor"] and i["refused"] == ["noor"] for i in listed)
    status = client.get("/api/v1/sources/plover.md").json()
    assert status["state"] != "searchable"
    assert all(
        r["title"] != "plover.md"
        for r in client.get("/api/v1/search", params={"q": "plover nest camera"}).json()["results"]
    )
    # a second plover.md (other bytes, other key): the title alone now names two sources
    assert _upload(client, "plover.md", b"# Plover\n\nA second plover note.\n", consent, wait="true").status_code == 200
    ambiguous = client.post("/api/v1/consent/grant", json={"source": "plover.md", "party": "noor", "scope": "all"})
    assert ambiguous.status_code == 400
    assert (
        "several sources match 'plover.md'" in ambiguous.json()["detail"]
        and source["source_key"] in ambiguous.json()["detail"]
    )


def test_clip_streams_the_cited_window_as_wav(served: Served) -> None:
    client = served.client()
    (top,) = client.get("/api/v1/search", params={"q": "quarterly report deadline Friday", "k": 1}).json()["results"]
    cited = parse_citation(top["citation"])
    response = client.get("/api/v1/clip", params={"citation": top["citation"], "context": 0.5})
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as w:
        seconds = w.getnframes() / w.getframerate()
    expected = (cited.end_s - cited.start_s) + 2 * 0.5
    assert abs(seconds - expected) < 0.25, (seconds, expected)
    assert response.content == served.grace.clip(top["citation"], context_s=0.5)[0]
    unknown = client.get("/api/v1/clip", params={"citation": "nothing.mp3 @ 00:01-00:02"})
    assert unknown.status_code in (400, 404) and "nothing.mp3" in unknown.json()["detail"]


def test_openapi_documents_the_api(served: Served) -> None:
    client = served.client()
    schema = client.get("/api/openapi.json").json()
    paths = set(schema["paths"])
    for path in (
        "search",
        "ask",
        "clip",
        "ingest",
        "sources",
        "sources/{ref}",
        "consent",
        "consent/grant",
        "decisions",
    ):
        assert f"/api/v1/{path}" in paths
    assert "multipart/form-data" in schema["paths"]["/api/v1/ingest"]["post"]["requestBody"]["content"]
    assert {"SearchResponse", "Answer", "Decisions", "GrantRequest"} <= set(schema["components"]["schemas"])
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and "/api/v1/search" in docs.text  # tests/web/test_api_docs.py for the page
