"""What every speech engine shares: the result type, the two errors, and the client protocol.

Here so that the engines (whisper, openai_client), the `Transcriber` resources and the assets
agree on one `Transcription` and one pair of exceptions, whichever engine made it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class TranscriptionError(RuntimeError):
    """The engine could not transcribe a file; the message names the file and why."""


class EngineUnavailable(TranscriptionError):
    """The engine itself cannot run (model missing, extra not installed, no API key): a system
    or configuration failure, not a problem with the file."""


@dataclass
class Transcription:
    segments: list[dict[str, Any]]
    language: str | None
    language_probability: float | None
    duration_s: float
    engine: str
    model: str
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    # the 16 kHz mono samples a local engine decoded, for the speaker stage to reuse (never
    # stored: a second decode of a 3-hour recording would hold another 690 MB); None once used
    samples: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "segments": self.segments,
            "language": self.language,
            "language_probability": self.language_probability,
            "duration_s": self.duration_s,
            "engine": self.engine,
            "model": self.model,
            "notes": self.notes,
        }


class TranscriptionClient(Protocol):
    """A plain speech engine: what the `Transcriber` resources delegate to."""

    engine: str

    def model_id(self) -> str: ...

    def transcribe(self, audio: bytes, name: str) -> Transcription: ...


def timed(run: Callable[[bytes, str], Transcription], audio: bytes, name: str) -> Transcription:
    """`run(audio, name)` with its wall-clock seconds recorded on the result."""
    started = time.perf_counter()
    result = run(audio, name)
    result.seconds = time.perf_counter() - started
    return result


HINT_CHARS = 400  # Whisper's prompt holds about 224 tokens; names beyond this are dropped


def hint_words(words: Sequence[str]) -> list[str]:
    """Names and terms for a Whisper hint: stripped, de-duplicated (case-insensitively), in
    order, cut to what fits the prompt."""
    out: list[str] = []
    seen: set[str] = set()
    size = 0
    for w in words:
        w = " ".join(str(w).split())
        if not w or w.casefold() in seen or size + len(w) + 2 > HINT_CHARS:
            continue
        seen.add(w.casefold())
        out.append(w)
        size += len(w) + 2
    return out
