"""The embedder port: text to unit vectors, behind one abstract resource with an engine per subclass.

- `MiniLMEmbedder` (default, `embedder = "minilm"`): all-MiniLM-L6-v2 as an int8 ONNX file on
  onnxruntime, no torch, no hub download (grace_pipelines.engines.minilm).
- `OpenAIEmbedder` (`embedder = "openai"`): the embeddings API of any OpenAI-compatible server
  (batched; the client retries 429 and 5xx with backoff; grace_pipelines.engines.openai_client).

Assets annotate the abstract `Embedder`; `build_resources` picks the subclass by
`settings.embedder` (`embedder_for`). Each resource holds its config fields and delegates to a
plain client (`client()`), the same one `grace_pipelines.engines.clients.clients_for` builds.
Every vector is stored with the model name and version that produced it; `code_version()` is
part of the embeddings asset's code version, so it must stay the same for the same engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import dagster as dg
import numpy as np
from pydantic import Field, PrivateAttr

from grace_pipelines.engines.clients import env_api_key, vault_config
from grace_pipelines.engines.embedding import EmbeddingClient, EmbeddingError
from grace_pipelines.engines.minilm import MINILM_DIM, MINILM_MAX_TOKENS, MINILM_NAME, MiniLM, MiniLMClient
from grace_pipelines.engines.openai_client import OPENAI_DIMS, OpenAIEmbeddingClient
from grace_pipelines.settings import GraceSettings

__all__ = [
    "EMBEDDERS",
    "MINILM_DIM",
    "MINILM_MAX_TOKENS",
    "MINILM_NAME",
    "OPENAI_DIMS",
    "Embedder",
    "EmbeddingError",
    "MiniLM",
    "MiniLMEmbedder",
    "OpenAIEmbedder",
    "embedder_for",
]


class Embedder(dg.ConfigurableResource, ABC):
    """The port: embeds chunk texts and queries into L2-normalised float32 vectors."""

    batch_size: int = 32  # measured: 32 is a little faster than 64 on 2 cores (bench/embedding_throughput.py)

    engine: ClassVar[str]
    _client: Any = PrivateAttr(default=None)

    @abstractmethod
    def build_client(self) -> EmbeddingClient:
        """The plain client this resource's fields describe."""

    def client(self) -> EmbeddingClient:
        if self._client is None:
            self._client = self.build_client()
        return self._client

    @property
    def model_name(self) -> str:
        return self.client().model_name

    @property
    def model_version(self) -> str:
        return self.client().model_version

    @property
    def dim(self) -> int:
        return self.client().dim

    def code_version(self) -> str:
        """Identity of the vectors this embedder makes (engine, model, version, size): when it
        changes, every source is re-embedded and nothing upstream is redone."""
        return self.client().code_version()

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.client().embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.client().embed_query(text)


class MiniLMEmbedder(Embedder):
    """The bundled all-MiniLM-L6-v2 (int8 ONNX, 384-d) on this machine."""

    engine: ClassVar[str] = "minilm"

    def build_client(self) -> MiniLMClient:
        return MiniLMClient(batch_size=self.batch_size)


class OpenAIEmbedder(Embedder):
    """An OpenAI-compatible embeddings endpoint; the key from `openai_api_key` or the vault."""

    engine: ClassVar[str] = "openai"

    openai_model: str = "text-embedding-3-small"
    dimensions: int | None = Field(
        None,
        description="Vector size of an OpenAI-compatible model; sent as `dimensions` when set "
        "(needed for a model whose size Grace does not know)",
    )
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    credential: str | None = Field(None, description="Vault secret holding the API key")
    state_url: str | None = None
    keys_dir: str | None = None

    def build_client(self) -> OpenAIEmbeddingClient:
        return OpenAIEmbeddingClient(
            model=self.openai_model,
            dimensions=self.dimensions,
            base_url=self.openai_base_url,
            api_key=self.openai_api_key,
            credential=self.credential,
            state_url=self.state_url,
            keys_dir=self.keys_dir,
            batch_size=self.batch_size,
        )


EMBEDDERS: dict[str, type[Embedder]] = {"minilm": MiniLMEmbedder, "openai": OpenAIEmbedder}


def embedder_for(settings: GraceSettings) -> Embedder:
    """The `Embedder` subclass `settings.embedder` names, configured from the settings (the API
    key as `dg.EnvVar` when its variable is set, so the UI shows the name, never the key)."""
    if settings.embedder == "minilm":
        return MiniLMEmbedder()
    if settings.embedder == "openai":
        return OpenAIEmbedder(
            openai_model=settings.embedding_model,
            dimensions=settings.embedding_dimensions,
            openai_base_url=settings.openai_base_url,
            openai_api_key=dg.EnvVar(settings.openai_api_key_env) if env_api_key(settings) else None,
            **vault_config(settings),
        )
    raise EmbeddingError(f"unknown embedder engine {settings.embedder!r}")
