"""What every speech engine shares: the result type, the two errors, and the client protocol.

Here so that the engines (whisper, openai_client), the `Transcriber` resources and the assets
agree on one `Transcription` and one pair of exceptions, whichever engine made it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
