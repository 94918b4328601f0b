"""Shared helpers for the benchmarks: fixtures, synthetic audio and text, JSON output.

Every benchmark prints exactly one JSON object on stdout and writes the same object to
bench/results/NAME.json (git-ignored). Progress notes go to stderr.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
FIXTURES = ROOT / "tests" / "fixtures"
RESULTS = BENCH / "results"
SR = 16000
SPEECH_FIXTURES = ("standup.mp3", "groceries.ogg", "migration.wav", "reminder.flac")
CONSENT_ME = {"participants": ["me"], "grants": [{"party": "me", "scopes": ["transcribe", "index"]}]}


def note(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def emit(name: str, result: dict[str, Any]) -> dict[str, Any]:
    result = {
        "benchmark": name,
        **result,
        "machine": machine(),
        "measured_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, default=str)
    (RESULTS / f"{name}.json").write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    return result


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def decode(name: str) -> np.ndarray:
    from faster_whisper import decode_audio

    return decode_audio(str(FIXTURES / name), sampling_rate=SR)


def speech(target_s: float, names: tuple[str, ...] = SPEECH_FIXTURES, gap_s: float = 0.3) -> np.ndarray:
    """Concatenate the speech fixtures (cycling) with short gaps, cut to `target_s` seconds."""
    clips = [decode(n) for n in names]
    gap = np.zeros(int(gap_s * SR), dtype=np.float32)
    parts: list[np.ndarray] = []
    total = 0
    i = 0
    while total < target_s * SR:
        clip = clips[i % len(clips)]
        parts.extend([clip, gap])
        total += len(clip) + len(gap)
        i += 1
    return np.concatenate(parts)[: int(target_s * SR)].astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, sr: int = SR) -> Path:
    """16-bit PCM mono WAV with the stdlib `wave` module."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return path


def write_consent(media: Path, consent: dict[str, Any] | None = None) -> Path:
    sidecar = media.with_name(media.name + ".consent.json")
    sidecar.write_text(json.dumps(consent or CONSENT_ME), encoding="utf-8")
    return sidecar


def english_vocabulary(n: int = 4000) -> list[str]:
    """Real English words: the whole-word entries of MiniLM's WordPiece vocabulary.

    BERT's vocabulary is roughly frequency ordered after the special and single-character
    tokens, so the first `n` alphabetic whole words are common English words.
    """
    tok = json.loads((ROOT / "grace_pipelines" / "models" / "minilm" / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    words = [
        w
        for w, i in sorted(vocab.items(), key=lambda kv: kv[1])
        if i >= 1996 and w.isascii() and w.isalpha() and len(w) >= 2
    ]
    return words[:n]


def sentences_text(rng: np.random.Generator, vocab: list[str], chars: int = 500) -> str:
    """Random sentences of vocabulary words, about `chars` characters long."""
    out: list[str] = []
    length = 0
    while length < chars:
        n = int(rng.integers(6, 16))
        words = [vocab[int(j)] for j in rng.integers(0, len(vocab), n)]
        sentence = " ".join(words).capitalize() + "."
        out.append(sentence)
        length += len(sentence) + 1
    text = " ".join(out)
    if len(text) > chars + 40:
        cut = text.rfind(" ", 0, chars)
        text = text[:cut] + "."
    return text
