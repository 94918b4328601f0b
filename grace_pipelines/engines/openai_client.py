"""OpenAI-compatible APIs as plain clients: embeddings and audio transcriptions.

Any server that speaks the OpenAI API works (`base_url`). The official `openai` client retries
429 and 5xx with backoff (`max_retries`); errors are reported by type only, never with the
server's message (it may echo the key or the text). The key comes from `api_key` (a string, a
`dg.EnvVar` or an `EnvKey`) or else from the vault, approved per purpose (engines.credentials).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from grace_pipelines.engines.embedding import EmbeddingError, code_version_of, unit_rows
from grace_pipelines.engines.transcription import EngineUnavailable, Transcription, TranscriptionError, timed

OPENAI_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
MAX_INPUTS = 2048  # the embeddings API takes at most 2,048 inputs per request


def openai_client(
    api_key: Any,
    *,
    base_url: str | None,
    credential: str | None,
    state_url: str | None,
    keys_dir: str | None,
    purpose: str,
    actor: str,
    error: type[Exception],
    max_retries: int,
) -> Any:
    """An `openai.OpenAI` client with the key for `purpose` (explicit, else the vault's)."""
    import openai

    from grace_pipelines.engines.credentials import api_key_for

    key = api_key_for(
        api_key,
        credential=credential,
        state_url=state_url,
        keys_dir=keys_dir,
        purpose=purpose,
        actor=actor,
        error=error,
    )
    return openai.OpenAI(api_key=key, base_url=base_url, max_retries=max_retries)


@dataclass(frozen=True)
class OpenAIEmbeddingClient:
    """Embeds texts with an OpenAI-compatible embeddings endpoint, batched, into unit vectors."""

    model: str = "text-embedding-3-small"
    dimensions: int | None = None  # sent as `dimensions` when set (a model whose size Grace does not know)
    base_url: str | None = None
    api_key: Any = field(default=None, repr=False, compare=False)
    credential: str | None = None  # vault secret holding the API key
    state_url: str | None = None
    keys_dir: str | None = None
    batch_size: int = 32

    engine: ClassVar[str] = "openai"
    model_version: ClassVar[str] = "api"

    @property
    def model_name(self) -> str:
        return self.model

    @property
    def dim(self) -> int:
        return self.dimensions or OPENAI_DIMS.get(self.model, 0)

    def code_version(self) -> str:
        return code_version_of(self.engine, self.model_name, self.model_version, self.dim)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim or 1), dtype=np.float32)
        import openai

        client = openai_client(
            self.api_key,
            base_url=self.base_url,
            credential=self.credential,
            state_url=self.state_url,
            keys_dir=self.keys_dir,
            purpose="embedding",
            actor="embedder:openai",
            error=EmbeddingError,
            max_retries=6,
        )
        vectors: list[Any] = []
        step = max(1, min(self.batch_size, MAX_INPUTS))
        extra = {"dimensions": self.dimensions} if self.dimensions else {}
        for start in range(0, len(texts), step):
            batch = texts[start : start + step]
            try:
                response = client.embeddings.create(model=self.model, input=batch, **extra)
            except openai.OpenAIError as exc:
                raise EmbeddingError(f"embeddings API failed ({type(exc).__name__})") from None
            vectors.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        return unit_rows(np.asarray(vectors, dtype=np.float32))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


@dataclass(frozen=True)
class OpenAITranscriptionClient:
    """Speech to timed text with an OpenAI-compatible audio transcriptions endpoint (verbose
    JSON with segment and word timestamps)."""

    model: str = "whisper-1"
    language: str | None = "en"
    base_url: str | None = None
    api_key: Any = field(default=None, repr=False, compare=False)
    credential: str | None = None  # vault secret holding the API key
    state_url: str | None = None
    keys_dir: str | None = None
    vocabulary: tuple[str, ...] = ()  # sent as the `prompt` (spellings of names and terms)

    engine: ClassVar[str] = "openai"

    def model_id(self) -> str:
        return self.model

    def transcribe(self, audio: bytes, name: str) -> Transcription:
        return timed(self._transcribe, audio, name)

    def _transcribe(self, audio: bytes, name: str) -> Transcription:
        import openai

        client = openai_client(
            self.api_key,
            base_url=self.base_url,
            credential=self.credential,
            state_url=self.state_url,
            keys_dir=self.keys_dir,
            purpose="transcription",
            actor="transcriber:openai",
            error=EngineUnavailable,
            max_retries=5,
        )
        try:
            response = client.audio.transcriptions.create(
                model=self.model,
                file=(name, audio),
                response_format="verbose_json",
                timestamp_granularities=["segment", "word"],
                **({"language": self.language} if self.language else {}),
                **({"prompt": ", ".join(self.vocabulary)} if self.vocabulary else {}),
            )
        except openai.OpenAIError as exc:
            raise TranscriptionError(f"{name}: transcription API failed ({type(exc).__name__})") from None
        data = response.model_dump() if hasattr(response, "model_dump") else dict(response)
        raw_segments = data.get("segments") or []
        # Words are timed apart from segments: give each word to the last segment that
        # starts at or before it, so none is lost at a segment edge.
        buckets: list[list[dict[str, Any]]] = [[] for _ in raw_segments]
        starts = [float(seg["start"]) for seg in raw_segments]
        for w in data.get("words") or []:
            if not buckets:
                break
            w_start = float(w["start"])
            index = max((i for i, s in enumerate(starts) if s <= w_start), default=0)
            buckets[index].append({"start": w_start, "end": float(w["end"]), "word": str(w["word"]).strip()})
        segments = [
            {
                "start": float(seg["start"]),
                "end": float(seg["end"]),
                "text": (seg.get("text") or "").strip(),
                "words": bucket,
                # a diarizing server labels its segments: kept, so the speaker stage keeps its turns
                **({"speaker": str(seg["speaker"])} if seg.get("speaker") else {}),
            }
            for seg, bucket in zip(raw_segments, buckets)
        ]
        if not segments and data.get("text"):
            segments = [
                {"start": 0.0, "end": float(data.get("duration") or 0), "text": data["text"].strip(), "words": []}
            ]
        return Transcription(
            segments=segments,
            language=data.get("language"),
            language_probability=None,
            duration_s=float(data.get("duration") or (segments[-1]["end"] if segments else 0.0)),
            engine="openai",
            model=self.model,
        )
