"""grace_pipelines.audio.clip: citations, window decoding on the real fixtures, players."""

from __future__ import annotations

import io
import json
import os
import stat
import wave
from functools import cache
from pathlib import Path

import av
import numpy as np
import pytest

from grace_pipelines.audio import clip_wav, decode_window, find_player, play_wav
from grace_pipelines.search.citations import Citation, parse_citation

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MANIFEST = {f["file"]: f for f in json.loads((FIXTURES / "manifest.json").read_text())["files"]}
RECORDINGS = [
    "standup.mp3",
    "groceries.ogg",
    "migration.wav",
    "reminder.flac",
    "reminder.m4a",
    "reminder.webm",
    "reminder.mp4",
]
LOSSLESS = {"migration.wav", "reminder.flac"}


@cache
def data(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@cache
def full_decode(name: str) -> tuple[np.ndarray, int]:
    """Reference: the whole first audio stream decoded from the top, mono int16, sample-counted."""
    with av.open(io.BytesIO(data(name))) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=stream.codec_context.sample_rate)
        chunks = []
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
        return np.concatenate(chunks).astype(np.int16), stream.codec_context.sample_rate


def read_wav(blob: bytes) -> tuple[np.ndarray, int, int, int]:
    with wave.open(io.BytesIO(blob), "rb") as w:
        frames = w.readframes(w.getnframes())
        return np.frombuffer(frames, dtype="<i2"), w.getframerate(), w.getnchannels(), w.getsampwidth()


def best_correlation(clip: np.ndarray, ref: np.ndarray, max_lag: int) -> tuple[float, int]:
    """Highest normalised correlation of `clip` against `ref` shifted by up to max_lag samples."""
    clip = clip.astype(np.float64)
    ref = ref.astype(np.float64)
    best = (-1.0, 0)
    for lag in range(-max_lag, max_lag + 1):
        a = clip[max(0, -lag) : len(clip) - max(0, lag)]
        b = ref[max(0, lag) : max(0, lag) + len(a)]
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
        denom = np.linalg.norm(a) * np.linalg.norm(b)
        if denom > 0:
            corr = float(a @ b / denom)
            if corr > best[0]:
                best = (corr, lag)
    return best


def sentence(name: str, index: int = 1) -> tuple[float, float]:
    s = MANIFEST[name]["sentences"][index]
    return s["start_s"], s["end_s"]


# ---- the clip of a cited sentence -----------------------------------------------------------


def test_standup_sentence_clip_has_one_second_of_context_each_side():
    start, end = 3.7809375, 7.7405625
    assert MANIFEST["standup.mp3"]["sentences"][1]["text"].startswith("The deadline for the quarterly report")
    blob = clip_wav(data("standup.mp3"), start, end, name="standup.mp3")
    samples, rate, channels, width = read_wav(blob)
    assert (rate, channels, width) == (16000, 1, 2)  # mono 16-bit at the source rate
    assert abs(len(samples) / rate - ((end - start) + 2.0)) <= 0.060
    rms = np.sqrt(np.mean(samples.astype(np.float64) ** 2))
    assert rms > 300  # speech, not silence


@pytest.mark.parametrize("name", RECORDINGS)
def test_window_matches_the_same_window_of_a_full_decode(name):
    start, end = sentence(name, 1)
    window = decode_window(data(name), start, end, name=name)
    full, rate = full_decode(name)
    assert window.rate == rate
    assert window.samples.dtype == np.int16
    assert abs(window.start_s - (start - 1.0)) <= 1 / rate
    expected = min(end + 1.0, MANIFEST[name]["duration_s"]) - (start - 1.0)  # clamped at the end
    assert abs(window.duration_s - expected) <= 0.060
    rms = np.sqrt(np.mean(window.samples.astype(np.float64) ** 2))
    assert rms > 300, f"{name}: clip is silent (rms {rms:.1f})"
    first = round(window.start_s * rate)
    ref = full[first : first + len(window.samples)]
    if name in LOSSLESS:
        assert np.array_equal(window.samples, ref)
    else:
        corr, lag = best_correlation(window.samples, ref, max_lag=int(0.010 * rate))
        assert corr > 0.99, f"{name}: correlation {corr:.4f} at lag {lag}"
        assert abs(lag) <= int(0.006 * rate), f"{name}: clip is {lag} samples off the full decode"


@pytest.mark.parametrize("name", ["reminder.mp4", "reminder.m4a", "groceries.ogg", "reminder.webm"])
def test_clip_wav_of_other_containers(name):
    start, end = sentence(name, 1)
    blob = clip_wav(data(name), start, end, context_s=0.5, name=name)
    samples, rate, channels, width = read_wav(blob)
    assert channels == 1 and width == 2
    assert rate == full_decode(name)[1]
    expected = min(end + 0.5, MANIFEST[name]["duration_s"]) - (start - 0.5)
    assert abs(len(samples) / rate - expected) <= 0.060
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 300


def test_video_audio_track_matches_the_audio_only_file():
    start, end = sentence("reminder.mp4", 0)
    video = decode_window(data("reminder.mp4"), start, end, name="reminder.mp4")
    audio = decode_window(data("reminder.m4a"), start, end, name="reminder.m4a")
    n = min(len(video.samples), len(audio.samples))
    corr, _ = best_correlation(video.samples[:n], audio.samples[:n], max_lag=80)
    assert corr > 0.99


def test_wav_bytes_equal_the_decoded_window():
    start, end = sentence("migration.wav", 2)
    blob = clip_wav(data("migration.wav"), start, end, name="migration.wav")
    window = decode_window(data("migration.wav"), start, end, name="migration.wav")
    samples, *_ = read_wav(blob)
    assert np.array_equal(samples, window.samples)


def test_context_zero_is_exactly_the_window():
    start, end = sentence("reminder.flac", 1)
    window = decode_window(data("reminder.flac"), start, end, context_s=0.0, name="reminder.flac")
    assert abs(window.start_s - start) <= 1 / 16000
    assert abs(window.duration_s - (end - start)) <= 2 / 16000


# ---- clamping and refusals ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["standup.mp3", "migration.wav", "reminder.m4a", "groceries.ogg"])
def test_window_at_the_very_start_clamps_at_zero(name):
    window = decode_window(data(name), 0.0, 2.0, name=name)
    assert window.start_s == 0.0
    assert abs(window.duration_s - 3.0) <= 0.060
    full, _ = full_decode(name)
    assert (
        np.array_equal(window.samples[:4000], full[:4000])
        or best_correlation(window.samples[:8000], full[:8000], 0)[0] > 0.99
    )


def test_end_past_the_recording_clamps_to_its_duration():
    # Grace rounds a citation's end up to a whole second: 00:16-00:18 on a 17.196 s file
    window = decode_window(data("standup.mp3"), 16.0, 18.0, name="standup.mp3")
    assert abs(window.start_s - 15.0) <= 1 / 16000
    assert abs(window.end_s - MANIFEST["standup.mp3"]["duration_s"]) <= 0.060


@pytest.mark.parametrize("name", ["standup.mp3", "migration.wav", "reminder.webm"])
def test_window_after_the_end_is_refused(name):
    with pytest.raises(ValueError, match=rf"{name}: window .* outside the recording"):
        clip_wav(data(name), 60.0, 65.0, name=name)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (5.0, 5.0, "not after its start"),
        (6.0, 5.0, "not after its start"),
        (-1.0, 2.0, "before the recording"),
        (float("nan"), 2.0, "not a number"),
        (1.0, float("inf"), "not a number"),
    ],
)
def test_bad_windows_are_refused(start, end, message):
    with pytest.raises(ValueError, match=f"standup.mp3: .*{message}"):
        clip_wav(data("standup.mp3"), start, end, name="standup.mp3")


@pytest.mark.parametrize("name", ["corrupt.mp3", "empty.wav", "unknown.xyz", "project_notes.md"])
def test_undecodable_bytes_are_refused_with_the_name(name):
    with pytest.raises(ValueError, match=rf"^{name}: not decodable audio"):
        clip_wav(data(name), 1.0, 2.0, name=name)


def test_empty_bytes_are_refused():
    with pytest.raises(ValueError, match="^x.mp3: not decodable audio"):
        clip_wav(b"", 1.0, 2.0, name="x.mp3")


# ---- citations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("standup.mp3 @ 00:03-00:09", Citation("standup.mp3", 3.0, 9.0)),
        ("meeting.m4a @ 1:02:03-1:02:10", Citation("meeting.m4a", 3723.0, 3730.0)),
        ("standup.mp3 @ 00:03.5-00:07.75", Citation("standup.mp3", 3.5, 7.75)),
        ("Team sync @ home @ 2024.mp3 @ 01:05-01:30", Citation("Team sync @ home @ 2024.mp3", 65.0, 90.0)),
        ("  standup.mp3 @ 00:03 - 00:09\n", Citation("standup.mp3", 3.0, 9.0)),
        ("standup.mp3 @ 00:03\u201300:09", Citation("standup.mp3", 3.0, 9.0)),
        ("[standup.mp3 @ 00:03-00:09]", Citation("standup.mp3", 3.0, 9.0)),
        ("'my talk.webm @ 59:59-1:00:05'", Citation("my talk.webm", 3599.0, 3605.0)),
        ("long.mp3 @ 75:00-75:10", Citation("long.mp3", 4500.0, 4510.0)),
    ],
)
def test_parse_citation(text, expected):
    assert parse_citation(text) == expected


@pytest.mark.parametrize("text", ["notes.md, lines 3-9", "notes.md, line 3", "report.pdf, page 4"])
def test_document_citations_cannot_be_played(text):
    with pytest.raises(ValueError, match="only recordings can be played"):
        parse_citation(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("standup.mp3", "not a recording citation"),
        ("", "empty citation"),
        ("standup.mp3 @ 00:09-00:03", "ends before it starts"),
        ("standup.mp3 @ 00:03-00:03", "ends before it starts"),
        ("standup.mp3 @ 00:75-01:20", "seconds must be below 60"),
        ("meeting.m4a @ 1:75:00-1:76:00", "bad time"),
        ("standup.mp3 @ 00:03-?", "no end time"),
        ("standup.mp3 @ 3-9", "bad time range"),
        ("standup.mp3 @ yesterday", "bad time range"),
        ("  @ 00:03-00:09", "not a recording citation"),
    ],
)
def test_bad_citations_name_the_expected_format(text, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_citation(text)
    assert "standup.mp3 @ 00:03-00:09" in str(info.value)  # the example of the expected format


def test_parsed_citation_clips_the_fixture():
    cite = parse_citation("standup.mp3 @ 00:03-00:08")
    samples, rate, *_ = read_wav(clip_wav(data(cite.title), cite.start_s, cite.end_s, name=cite.title))
    assert abs(len(samples) / rate - 7.0) <= 0.060


# ---- players --------------------------------------------------------------------------------


def fake_player(folder: Path, program: str, body: str) -> Path:
    path = folder / program
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def test_no_player_on_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_player() is None
    assert play_wav(b"RIFF....") is False


def test_player_order_and_piping(monkeypatch, tmp_path):
    got = tmp_path / "got.wav"
    fake_player(tmp_path, "paplay", f'/bin/cat > "{got}.paplay"')
    fake_player(tmp_path, "aplay", f'/bin/cat > "{got}"')
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_player() == [str(tmp_path / "aplay"), "-q", "-"]
    fake_player(tmp_path, "ffplay", f'/bin/cat > "{got}"')
    assert find_player() == [str(tmp_path / "ffplay"), "-nodisp", "-autoexit", "-loglevel", "quiet", "-"]
    blob = clip_wav(data("migration.wav"), 0.3, 1.0, name="migration.wav")
    assert play_wav(blob) is True
    assert got.read_bytes() == blob


def test_failing_player_raises(monkeypatch, tmp_path):
    fake_player(tmp_path, "aplay", "/bin/cat > /dev/null; echo 'no sound card' >&2; exit 3")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="aplay exited with status 3: no sound card"):
        play_wav(b"RIFF")


def test_afplay_gets_a_file(monkeypatch, tmp_path):
    got = tmp_path / "got.wav"
    fake_player(tmp_path, "afplay", f'/bin/cp "$1" "{got}"')
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_player() == [str(tmp_path / "afplay")]
    assert play_wav(b"RIFF-afplay") is True
    assert got.read_bytes() == b"RIFF-afplay"
    assert not any(p.name.endswith(".wav") and p != got for p in tmp_path.iterdir())
    assert os.environ["PATH"] == str(tmp_path)
