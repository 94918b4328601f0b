"""Speaker turns, voices remembered across recordings, search by speaker, export.

The engine tests run the real CAM++ ONNX model on the espeak-ng conversations in
tests/fixtures/speakers (known turns in turns.json) and the real two-speaker recording from
pyannote-audio's wheel; the flow test goes through a real Grace home (Dagster instance,
LanceDB, sealed blobs)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from grace_pipelines import Grace
from grace_pipelines.audio import diarize as policy
from grace_pipelines.audio.der import der, read_rttm
from grace_pipelines.audio.export import render
from grace_pipelines.audio.fbank import fbank, mel_banks
from grace_pipelines.errors import GraceError
from grace_pipelines.search.citations import parse_citation
from grace_pipelines.stores.blobs import TRANSCRIPT, VOICES
from tests.conftest import FIXTURES, drop_file

SPEAKERS = FIXTURES / "speakers"
TURNS = json.loads((SPEAKERS / "turns.json").read_text())["files"]


def _samples(name: str) -> np.ndarray:
    from faster_whisper import decode_audio

    return decode_audio(str(SPEAKERS / name), sampling_rate=16000)


def _reference(name: str) -> list[tuple[float, float, str]]:
    return [(t["start"], t["end"], t["speaker"]) for t in TURNS[name]]


# ---- policy: no model -----------------------------------------------------------------------
def test_fbank_has_kaldi_shape_and_filters() -> None:
    banks = mel_banks()
    assert banks.shape == (80, 256) and (banks.sum(axis=1) > 0).all()
    one_second = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    assert fbank(one_second).shape == (98, 80)  # 1 + (16000 - 400) // 160
    assert fbank(one_second[:300]).shape == (0, 80)


def test_der_uses_the_optimal_mapping_and_the_collar() -> None:
    ref = [(0.0, 10.0, "a"), (10.0, 20.0, "b")]
    assert der(ref, [(0.0, 10.0, "x"), (10.0, 20.0, "y")]).der == 0.0
    assert der(ref, [(0.0, 10.0, "y"), (10.0, 20.0, "x")]).der == 0.0  # names do not matter
    assert der(ref, [(0.0, 10.2, "x"), (10.2, 20.0, "y")]).der == 0.0  # inside the collar
    one = der(ref, [(0.0, 20.0, "x")])
    assert one.confusion == pytest.approx(0.5, abs=0.02) and one.hypothesis_speakers == 1
    assert der(ref, []).missed == 1.0


def test_tidy_folds_a_cluster_too_small_to_be_a_voice() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(192), rng.standard_normal(192)
    x = np.stack([a + 0.1 * rng.standard_normal(192) for _ in range(10)] + [b + 0.1 * rng.standard_normal(192)])
    labels = np.array([0] * 10 + [1])
    tidied = policy.tidy(x, labels, np.full(11, 0.75))
    assert set(tidied.tolist()) == {0}  # 0.75 s of another voice (crosstalk) is no speaker


def test_turns_split_overlapping_windows_at_the_middle_and_label_words() -> None:
    turns = policy.turns_from([(0.0, 1.5), (0.75, 2.25), (1.5, 3.0)], ["S1", "S1", "S2"])
    assert [(t.start, t.end, t.speaker) for t in turns] == [(0.0, 1.875, "S1"), (1.875, 3.0, "S2")]
    segments = [
        {
            "start": 0.0,
            "end": 3.0,
            "text": "hello there friend",
            "words": [
                {"start": 0.0, "end": 0.5, "word": "hello"},
                {"start": 0.6, "end": 1.2, "word": "there"},
                {"start": 2.0, "end": 2.8, "word": "friend"},
            ],
        }
    ]
    (labelled,) = policy.label_segments(segments, turns)
    assert [w["speaker"] for w in labelled["words"]] == ["S1", "S1", "S2"] and labelled["speaker"] == "S1"


def test_too_little_speech_is_one_unnamed_speaker_with_a_note() -> None:
    found = policy.diarize_embeddings([(0.0, 1.0)], np.ones((1, 192)), 1.2)
    assert found.speakers == ["S1"] and "too little speech" in found.notes[0]


# ---- the offline engine on real audio --------------------------------------------------------
@pytest.mark.parametrize(("name", "speakers"), [("two_voices.ogg", 2), ("three_voices.ogg", 3), ("four_voices.ogg", 4)])
def test_offline_engine_finds_the_speakers_and_their_turns(name: str, speakers: int) -> None:
    from grace_pipelines.engines.speakers import diarize_samples

    found = diarize_samples(_samples(name))
    report = der(_reference(name), [(t.start, t.end, t.speaker) for t in found.turns])
    assert report.hypothesis_speakers == speakers
    assert report.der <= 0.12, report.to_dict()


def test_crosstalk_is_not_a_third_speaker() -> None:
    from grace_pipelines.engines.speakers import diarize_samples

    assert len(diarize_samples(_samples("overlap.ogg")).seconds) == 2


def test_real_two_speaker_speech_meets_the_der_goal() -> None:
    from faster_whisper import decode_audio

    from grace_pipelines.engines.speakers import diarize_samples

    found = diarize_samples(decode_audio(str(SPEAKERS / "real_two_speakers.flac"), sampling_rate=16000))
    reference = read_rttm((SPEAKERS / "real_two_speakers.rttm").read_text())
    report = der(reference, [(t.start, t.end, t.speaker) for t in found.turns])
    assert report.hypothesis_speakers == 2 and report.der <= 0.12, report.to_dict()


# ---- the flow: turns stored sealed, a voice named once and recognised again ------------------
def _ingest(grace: Grace, tmp: Path, fixture: str, name: str, people: list[str]) -> str:
    path = drop_file(
        tmp / "drop", f"speakers/{fixture}", name=name, participants=people, grants={p: ["all"] for p in people}
    )
    outcome = grace.ingest([path], wait=True)
    row = grace.resolve(name)
    assert row.stage == "searchable", (outcome, row.stage, row.reason)
    return row.key


def test_named_voice_is_recognised_searched_cited_exported_and_forgotten(tmp_path: Path, home: Path) -> None:
    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance)
        budget = _ingest(grace, tmp_path, "two_voices.ogg", "budget.ogg", ["alex", "priya"])
        payload = grace.clients.blob_store.get_json(budget, TRANSCRIPT)
        assert set(payload["speakers"]["seconds"]) == {"S1", "S2"}
        assert {w["speaker"] for s in payload["segments"] for w in s["words"]} == {"S1", "S2"}
        # the voice embeddings rest sealed: no label and no decimal of them in the blob's bytes
        raw = b"".join(p.read_bytes() for p in (home / "store").rglob("*") if p.is_file() and VOICES in p.name)
        assert raw and b'"S1"' not in raw and re.search(rb"0\.\d{4}", raw) is None

        labels = {s["label"]: s for s in grace.speakers("budget.ogg")}
        assert set(labels) == {"S1", "S2"} and all(s["name"] is None for s in labels.values())
        # S2 speaks the travel budget lines (turns.json: priya's turns come second)
        named = grace.name_speaker("budget.ogg", "S2", "Priya")
        assert named["name"] == "Priya" and named["recordings"] == 1

        grant = _ingest(grace, tmp_path, "priya_again.ogg", "grant.ogg", ["noor", "priya"])
        heard = {s["label"]: s for s in grace.speakers("grant.ogg")}
        matched = [s for s in heard.values() if s["name"] == "Priya"]
        assert len(matched) == 1 and matched[0]["how"] == "matched" and matched[0]["similarity"] >= 0.86
        assert sum(1 for s in heard.values() if s["name"] is None) == 1  # noor stays unnamed

        from grace_pipelines.db.schema import utcnow
        from grace_pipelines.search.filters import parse_filters

        only_priya = parse_filters(speaker="priya", now=utcnow(), tz="UTC")
        results = grace.search("budget", k=5, filters=only_priya)
        assert results and {r.source_key for r in results} <= {budget, grant}
        assert all(r.speaker == "Priya" and r.citation.endswith(", Priya") for r in results)
        assert parse_citation(results[0].citation).speaker == "Priya"
        everyone = grace.search("Let us start with the travel costs", k=1)[0]
        assert everyone.speaker == "speaker 1"  # alex, unnamed, in a two-voice recording
        with pytest.raises(GraceError, match="no voice named 'Marco'"):
            grace.search("budget", filters=parse_filters(speaker="Marco", now=utcnow(), tz="UTC"))

        srt = grace.export("budget.ogg", "srt")
        assert "Priya: " in srt and "Speaker 1: " in srt and " --> " in srt
        vtt = grace.export("budget.ogg", "vtt")
        assert vtt.startswith("WEBVTT") and "<v Priya>" in vtt
        cues = json.loads(grace.export("grant.ogg", "json"))["cues"]
        assert {c["speaker"] for c in cues} == {"Priya", "Speaker 1"} or {c["speaker"] for c in cues} == {
            "Priya",
            "Speaker 2",
        }

        # a second profile for the same voice, then merged back: one person, one profile
        grant_priya = next(s["label"] for s in grace.speakers("grant.ogg") if s["name"] == "Priya")
        grace.name_speaker("grant.ogg", grant_priya, "Pri")
        assert sorted(p["name"] for p in grace.db.profiles()) == ["Pri", "Priya"]
        merged = grace.merge_speakers("Pri", "Priya")
        assert merged["recordings"] == 2 and [p["name"] for p in grace.db.profiles()] == ["Priya"]

        # the same through the command line (its own process state, the same GRACE_HOME)
        from typer.testing import CliRunner

        from grace_pipelines.cli import app

        env = {"GRACE_HOME": str(home), "COLUMNS": "200"}
        listed = CliRunner().invoke(app, ["speakers", "list", "budget.ogg", "--json"], env=env)
        assert listed.exit_code == 0 and {s["name"] for s in json.loads(listed.stdout)["speakers"]} == {None, "Priya"}
        out = tmp_path / "budget.srt"
        wrote = CliRunner().invoke(app, ["export", "budget.ogg", "--format", "srt", "--out", str(out)], env=env)
        assert wrote.exit_code == 0 and "Priya: " in out.read_text() and out.stat().st_mode & 0o777 == 0o600
        bad = CliRunner().invoke(app, ["export", "budget.ogg", "--format", "docx"], env=env)
        assert bad.exit_code == 1 and "unknown export format 'docx'" in bad.output

        forgotten = grace.forget_speaker("Priya")
        assert forgotten == {"name": "Priya", "recordings": 2, "voice_embeddings_deleted": 2}
        assert all(s["name"] is None for s in grace.speakers())
        assert grace.clients.blob_store.get_json(budget, VOICES).keys() == {"S1"}
        assert any(e["action"] == "speakers.forget" for e in grace.audit_tail(5))
        with pytest.raises(GraceError, match="no voice profile named 'Priya'"):
            grace.forget_speaker("Priya")


def test_export_refuses_without_consent_and_unknown_formats(tmp_path: Path, home: Path) -> None:
    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance)
        _ingest(grace, tmp_path, "overlap.ogg", "party.ogg", ["alex", "priya"])
        grace.revoke("party.ogg", "priya", "index")
        with pytest.raises(GraceError, match="no index consent from priya"):
            grace.export("party.ogg", "md")
    with pytest.raises(ValueError, match="unknown export format 'docx'"):
        render({"segments": []}, "docx", title="x", names={})


def test_an_undeclared_voice_holds_indexing_until_named_and_granted(tmp_path: Path, home: Path) -> None:
    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance)
        path = drop_file(
            tmp_path / "drop",
            "speakers/three_voices.ogg",
            name="launch.ogg",
            participants=["alex", "priya"],
            grants={"alex": ["all"], "priya": ["all"]},
        )
        grace.ingest([path], wait=True)
        row = grace.resolve("launch.ogg")
        assert row.stage == "awaiting_consent"
        assert (
            "an unnamed third speaker at 00:" in row.reason and f"grace speakers name {row.key} S3 NAME" in row.reason
        )
        # a hold, not a failure: the run is green and nothing was indexed
        assert [r.status for r in instance.get_runs()] == [dg.DagsterRunStatus.SUCCESS]
        assert grace.search("launch on Monday morning", k=3) == []
        (pending,) = [i for i in grace.consent_list(pending=True) if i["source_key"] == row.key]
        assert pending["scope"] == "index" and pending["voices"][0].startswith("an unnamed third speaker")
        # the person's decisions page says the same
        from starlette.testclient import TestClient

        from grace_pipelines.web.app import create_app
        from grace_pipelines.web.security import load_or_create_token

        app = create_app(grace.settings, grace, port=8765, warm=False)
        web = TestClient(app, base_url="http://127.0.0.1:8765")
        web.headers["Authorization"] = f"Bearer {load_or_create_token(home)}"
        page = web.get("/decisions").text
        assert 'data-title="launch.ogg"' in page and "an unnamed third speaker at 00:" in page
        # and `grace consent list --pending`
        from typer.testing import CliRunner

        from grace_pipelines.cli import app as cli

        listed = CliRunner().invoke(
            cli, ["consent", "list", "--pending"], env={"GRACE_HOME": str(home), "COLUMNS": "250"}
        )
        assert listed.exit_code == 0 and "an unnamed third speaker at 00:" in listed.output

        named = grace.name_speaker("launch.ogg", "S3", "Marco")
        assert named["released"] == []  # Marco is now a participant: his own grant is needed
        row = grace.resolve("launch.ogg")
        assert row.participants == ["alex", "priya", "Marco"] and "missing consent from Marco" in row.reason
        grace.grant("launch.ogg", "Marco", "all", wait=True)
        assert grace.resolve("launch.ogg").stage == "searchable"
        assert grace.search("launch on Monday morning", k=1)[0].title == "launch.ogg"


def test_a_named_persons_revocation_purges_exactly_their_turns(tmp_path: Path, home: Path) -> None:
    from grace_pipelines.text.keywords import blind_tokens

    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance)
        key = _ingest(grace, tmp_path, "two_voices.ogg", "review.ogg", ["alex", "priya"])
        grace.name_speaker("review.ogg", "S2", "priya")  # priya: the second voice in turns.json
        index_key = grace.clients.blob_store.index_key()
        hers, his = blind_tokens(index_key, "Friday").split()[0], blind_tokens(index_key, "hotel").split()[0]

        def lance_bytes() -> bytes:
            return b"".join(p.read_bytes() for p in (home / "lancedb").rglob("*") if p.is_file())

        assert hers.encode() in lance_bytes() and his.encode() in lance_bytes()  # the scan can see tokens

        grace.revoke("review.ogg", "priya", "all", wait=True)
        row = grace.resolve("review.ogg")
        assert row.stage == "searchable" and row.participants == ["alex"]
        text = " ".join(s["text"] for s in grace.clients.blob_store.get_json(key, TRANSCRIPT)["segments"])
        assert "Friday" not in text and "Lisbon trip" not in text and "hotel" in text
        raw = lance_bytes()
        assert hers.encode() not in raw and his.encode() in raw  # old table versions cleaned too
        assert all("Friday" not in r.text for r in grace.search("send the booking on Friday", k=5))
        kept = grace.search("keep the hotel under budget", k=1)
        assert kept and kept[0].source_key == key
        assert [s["label"] for s in grace.speakers("review.ogg")] == ["S1"]
        assert any(e["action"] == "purge.turns" for e in grace.audit_tail(5))


def test_vocabulary_reaches_whisper_as_hotwords() -> None:
    from grace_pipelines.engines.transcription import HINT_CHARS, hint_words
    from grace_pipelines.resources import FasterWhisperTranscriber

    assert hint_words([" Tadhg ", "tadhg", "", "Reykjavik"]) == ["Tadhg", "Reykjavik"]
    assert sum(len(w) + 2 for w in hint_words([f"name{i:03d}" for i in range(200)])) <= HINT_CHARS
    audio = (SPEAKERS / "names.ogg").read_bytes()
    plain = FasterWhisperTranscriber(cpu_threads=2)
    said = " ".join(s["text"] for s in plain.transcribe(audio, "names.ogg").segments)
    result = plain.transcribe(audio, "names.ogg", vocabulary=["Tadhg", "Reykjavik"])
    hinted = " ".join(s["text"] for s in result.segments)
    assert "Reykjavik" not in said and "Tadhg" not in said  # tiny.en alone does not know them
    assert "Reykjavik" in hinted and "Tadhg" in hinted
    assert result.segments[-1]["end"] > 18.0  # the whole 22 s clip, not only its first sentence


def test_an_engines_own_speaker_labels_are_kept_and_their_voices_embedded() -> None:
    """WhisperX (GPU) or an OpenAI-compatible server may label speakers itself: its turns stay,
    relabelled S1, S2 by first appearance, and each voice is embedded here for the profiles."""
    from grace_pipelines.engines.transcription import Transcription
    from grace_pipelines.resources import OfflineSpeakers

    segments = [
        {"start": s, "end": e, "text": "words", "speaker": f"SPEAKER_{who}"}
        for s, e, who in [(t["start"], t["end"], t["speaker"]) for t in TURNS["two_voices.ogg"]]
    ]
    engine = Transcription(segments, "en", 1.0, 31.0, "whisperx", "large-v3")
    found = OfflineSpeakers().diarize((SPEAKERS / "two_voices.ogg").read_bytes(), "two_voices.ogg", engine)
    assert found.engine == "whisperx+voices" and set(found.centroids) == {"S1", "S2"}
    assert [t.speaker for t in found.turns] == ["S1", "S2", "S1", "S2", "S1", "S2"]
    a, b = found.centroids["S1"], found.centroids["S2"]
    assert float(a @ b) < 0.8 and abs(float(np.linalg.norm(a)) - 1.0) < 1e-4  # two voices, unit vectors
