"""Speakers and export over HTTP: the same facade calls as `grace speakers` / `grace export`."""

from __future__ import annotations

from .conftest import Served


def test_speakers_are_listed_named_exported_and_forgotten(served: Served) -> None:
    client = served.client()
    listed = client.get("/api/v1/speakers", params={"source": "standup.mp3"}).json()
    assert [s["label"] for s in listed["speakers"]] == ["S1"] and listed["speakers"][0]["seconds"] > 5
    named = client.post("/api/v1/speakers/name", json={"source": "standup.mp3", "speaker": "S1", "name": "me"})
    assert named.status_code == 200, named.text
    assert named.json()["name"] == "me"
    assert client.get("/api/v1/speakers").json()["profiles"] == ["me"]
    unknown = client.post("/api/v1/speakers/name", json={"source": "standup.mp3", "speaker": "S9", "name": "x"})
    assert unknown.status_code == 400 and "no speaker 'S9'" in unknown.json()["detail"]

    vtt = client.get("/api/v1/export", params={"source": "standup.mp3", "format": "vtt"})
    assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.text.startswith("WEBVTT") and "<v me>" in vtt.text and " --> " in vtt.text
    assert vtt.headers["cache-control"] == "no-store" and 'filename="standup.vtt"' in vtt.headers["content-disposition"]
    assert client.get("/api/v1/export", params={"source": "standup.mp3", "format": "docx"}).status_code == 422

    forgot = client.post("/api/v1/speakers/forget", json={"name": "me"})
    assert forgot.status_code == 200, forgot.text
    assert forgot.json()["voice_embeddings_deleted"] == 1
    assert client.get("/api/v1/speakers").json()["profiles"] == []
    assert any(e["actor"] == "web" and e["action"] == "speakers.forget" for e in served.grace.audit_tail(5))
