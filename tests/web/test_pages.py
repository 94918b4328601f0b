"""Each page's HTML over the real app on the served GRACE_HOME (standup.mp3 transcribed):
search with the cited passage highlighted and a Play button wired to /api/v1/clip, ask with
[n] links and the extractive label, library and the source's timed segments, decisions,
escaping, the static files, and the pure helpers behind the highlight and the [n] links."""

from __future__ import annotations

import json
from html import escape
from urllib.parse import quote

import pytest

from grace_pipelines.web.pages import answer_parts, decision_rows, highlight
from grace_pipelines.web.security import csrf_for

from .conftest import Served

HELD = "# Osprey plan\n\nThe osprey plan moves the archive to cold storage in March.\n"


def test_highlight_marks_the_sentence_with_most_query_words() -> None:
    before, mark, after = highlight("We met. The quarterly report is due Friday. Bye.", "when is the report due")
    assert mark == "The quarterly report is due Friday." and before == "We met. " and after == " Bye."
    assert highlight("nothing shared here", "zebra") == ("nothing shared here", "", "")
    assert answer_parts("Due Friday [1], see [7].", [1]) == [("Due Friday ", None), ("[1]", 1), (", see [7].", None)]
    rows = decision_rows(
        [
            {"source_key": "k", "title": "a.md", "scope": "transcribe", "missing": ["rui"]},
            {"source_key": "k", "title": "a.md", "scope": "index", "missing": ["rui", "ana"]},
        ]
    )
    assert [(r["party"], r["grant"], r["scopes"]) for r in rows] == [
        ("ana", "index", ["index"]),
        ("rui", "all", ["transcribe", "index"]),
    ]


def test_search_page_shows_citation_highlight_and_play(served: Served) -> None:
    client = served.client()
    page = client.get("/search", params={"q": "when is the quarterly report due"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    top = client.get("/api/v1/search", params={"q": "when is the quarterly report due", "k": 1}).json()["results"][0]
    assert escape(top["citation"]) in html and "<mark>" in html
    assert f'data-citation="{escape(top["citation"])}"' in html and 'class="play"' in html
    assert f'<meta name="csrf-token" content="{csrf_for(served.token)}">' in html
    assert '<script src="/static/app.js" defer></script>' in html and "<script>" not in html
    nothing = client.get("/search", params={"q": "when is the quarterly report due", "origin": "meeting"})
    assert "Nothing found." in nothing.text
    bad = client.get("/search", params={"q": "report", "since": "the day after never"})
    assert bad.status_code == 422 and "since" in bad.text and "the day after never" in bad.text
    hostile = client.get("/search", params={"q": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in hostile.text and "&lt;script&gt;" in hostile.text
    home = client.get("/")
    assert 'action="/search"' in home.text


def test_ask_page_links_citations_and_labels_extractive(served: Served) -> None:
    client = served.client()
    html = client.get("/ask", params={"q": "When is the quarterly report due?"}).text
    assert 'class="label">extractive<' in html
    assert 'href="#c1"' in html and 'id="c1"' in html and "standup.mp3 @" in html and 'class="play"' in html
    empty = client.get("/ask", params={"q": "xylophone zeppelin quokka"}).text
    assert "Nothing found" in empty


def test_library_and_source_pages(served: Served) -> None:
    client = served.client()
    html = client.get("/library").text
    row = served.grace.resolve("standup.mp3")
    assert f'href="/library/{row.key}"' in html and 'data-state="searchable"' in html and 'id="upload"' in html
    source = client.get(f"/library/{row.key}").text
    assert "standup.mp3" in source and source.count('class="segment"') >= 2
    segment_citation = source.split('data-citation="', 1)[1].split('"', 1)[0]
    clip = client.get(f"/api/v1/clip?citation={quote(segment_citation)}&source={row.key}&context=0")
    assert clip.status_code == 200 and clip.headers["content-type"] == "audio/wav"
    assert client.get("/library/nothing.mp3").status_code == 404


def test_decisions_page_lists_pending_consent_and_credentials(served: Served) -> None:
    client = served.client()
    consent = {"participants": ["me", "lia"], "grants": [{"party": "me", "scopes": ["all"]}]}
    files = {"file": ("osprey.md", HELD.encode()), "consent": ("c.json", json.dumps(consent).encode())}
    assert client.post("/api/v1/ingest", files=files, data={"wait": "true"}).status_code == 200
    served.grace.vault.set("osprey-key", "s3cr3t-value", actor="test")
    try:
        served.grace.vault.use("osprey-key", "embedding", actor="test")
    except Exception:  # noqa: BLE001 - the refusal is what records the pending request
        pass
    html = client.get("/decisions").text
    assert 'data-party="lia" data-title="osprey.md"' in html and 'value="all"' in html
    assert 'data-name="osprey-key"' in html and "embedding" in html and "s3cr3t-value" not in html
    approved = client.post("/api/v1/secrets/approve", json={"name": "osprey-key", "purpose": "embedding", "ttl": "1h"})
    assert approved.status_code == 200 and approved.json()["expires_at"]
    assert served.grace.vault.pending() == []
    assert any(e["actor"] == "web" and e["action"] == "vault.approve" for e in served.grace.audit_tail(10))
    refused = client.post("/api/v1/secrets/approve", json={"name": "no-such", "purpose": "embedding"})
    assert refused.status_code == 400 and "no-such" in refused.json()["detail"]
    refused_consent = client.post(
        "/api/v1/consent/revoke", json={"source": "osprey.md", "party": "lia", "scope": "all"}
    )
    assert refused_consent.status_code == 200, refused_consent.text
    assert refused_consent.json()["source"]["state"] != "searchable"
    granted = client.post("/api/v1/consent/grant", json={"source": "osprey.md", "party": "lia", "scope": "all"})
    assert granted.status_code == 200  # leaves nothing pending for the package's other tests
    assert 'data-party="lia"' not in client.get("/decisions").text


def test_static_files_are_served_with_the_csp(served: Served) -> None:
    client = served.client()
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "X-CSRF-Token" in js.text
    assert "default-src 'self'" in js.headers["content-security-policy"]
    assert client.get("/static/app.css").status_code == 200
    assert served.client(token=False).get("/static/app.js").status_code == 401


def test_a_pending_credential_use_can_be_refused(served: Served) -> None:
    """Refuse closes the request unapproved: nothing pending, the engine is still refused, audited."""
    from grace_pipelines.governance.vault import VaultRefused

    client = served.client()
    served.grace.vault.set("kestrel-key", "another-s3cr3t", actor="test")
    with pytest.raises(VaultRefused):
        served.grace.vault.use("kestrel-key", "transcription", actor="test")
    assert 'data-api="/api/v1/secrets/refuse"' in client.get("/decisions").text  # the Refuse button
    refused = client.post("/api/v1/secrets/refuse", json={"name": "kestrel-key", "purpose": "transcription"})
    assert refused.status_code == 200 and refused.json()["requests_closed"] == 1
    assert [p for p in served.grace.vault.pending() if p["name"] == "kestrel-key"] == []
    with pytest.raises(VaultRefused):
        served.grace.vault.use("kestrel-key", "transcription", actor="test")
    assert any(e["actor"] == "web" and e["action"] == "vault.refuse" for e in served.grace.audit_tail(10))
    again = client.post("/api/v1/secrets/refuse", json={"name": "kestrel-key", "purpose": "embedding"})
    assert again.status_code == 400 and "no pending request" in again.json()["detail"]
