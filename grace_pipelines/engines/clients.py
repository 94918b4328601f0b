"""The plain objects one GraceSettings stands for: embedder, chunk index and blob store.

`build_resources(settings)` makes the Dagster resources that assets are given; `clients_for`
makes the same engines and stores as plain objects, for code that runs outside an asset (the
Python API's search and ask, bench/). Both read the settings through the helpers here
(`embedding_client_for`, `index_config`, `blob_config`, `chunk_table_for`), so they agree on the
table name, the embedder's code version and every store path (tests/resources/test_ports.py
checks it). Building is cheap (models load on first use, once per process), so nothing here is
cached: build again after changing settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from grace_pipelines.engines.credentials import EnvKey
from grace_pipelines.engines.embedding import EmbeddingClient, EmbeddingError
from grace_pipelines.engines.minilm import MINILM_NAME, MiniLMClient
from grace_pipelines.engines.openai_client import OpenAIEmbeddingClient
from grace_pipelines.settings import GraceSettings, SettingsError
from grace_pipelines.stores.blobs import SealedBlobStore
from grace_pipelines.stores.vectors import ChunkIndex, table_name_for


def vault_config(settings: GraceSettings) -> dict[str, Any]:
    """Where the API engines find their key when none is in the environment: the vault."""
    return {
        "credential": settings.openai_credential,
        "state_url": settings.state_url,
        "keys_dir": str(settings.keys_dir),
    }


def env_api_key(settings: GraceSettings) -> EnvKey | None:
    """The API key's environment variable, when it is set (read again at each use)."""
    return EnvKey(settings.openai_api_key_env) if os.environ.get(settings.openai_api_key_env) else None


def embedding_client_for(settings: GraceSettings) -> EmbeddingClient:
    """The plain embedder `settings.embedder` names (minilm | openai)."""
    if settings.embedder == "minilm":
        return MiniLMClient()
    if settings.embedder == "openai":
        return OpenAIEmbeddingClient(
            model=settings.embedding_model,
            dimensions=settings.embedding_dimensions,
            base_url=settings.openai_base_url,
            api_key=env_api_key(settings),
            **vault_config(settings),
        )
    raise EmbeddingError(f"unknown embedder engine {settings.embedder!r}")


def require_known_dim(settings: GraceSettings, dim: int) -> None:
    if dim <= 0:
        raise SettingsError(
            f"embedding_dimensions: the vector size of model {settings.embedding_model!r} is not known; "
            "set GRACE_EMBEDDING_DIMENSIONS"
        )


def chunk_table_for(model_name: str, dim: int) -> str:
    """The chunks table of an embedder: `chunks` for the bundled MiniLM (table_name_for)."""
    return table_name_for(model_name, dim, default_model=MINILM_NAME)


def index_config(settings: GraceSettings, table_name: str) -> dict[str, Any]:
    """The chunk index's configuration: `ChunkIndex(**...)` and `VectorStore(**...)` alike."""
    return {
        "uri": str(settings.lancedb),
        "table_name": table_name,
        "ann_min_rows": settings.ann_min_rows,
        "ann_ef": settings.ann_ef,
        "ann_refine_factor": settings.ann_refine_factor,
        "fusion": settings.search_fusion,
        "keyword_weight": settings.keyword_weight,
    }


def blob_config(settings: GraceSettings) -> dict[str, Any]:
    """The blob store's configuration: `SealedBlobStore(**...)` and `BlobStore(**...)` alike."""
    return {"root": str(settings.store), "keys_dir": str(settings.keys_dir)}


@dataclass(frozen=True)
class Clients:
    """The engines and stores of one GRACE_HOME as plain objects."""

    embedder: EmbeddingClient
    chunk_index: ChunkIndex
    blob_store: SealedBlobStore


def clients_for(settings: GraceSettings) -> Clients:
    """What `build_resources(settings)` builds for "embedder", "vector_store" and "blob_store",
    as plain objects (raises the same SettingsError for an embedding size Grace cannot know)."""
    embedder = embedding_client_for(settings)
    require_known_dim(settings, embedder.dim)
    return Clients(
        embedder=embedder,
        chunk_index=ChunkIndex(**index_config(settings, chunk_table_for(embedder.model_name, embedder.dim))),
        blob_store=SealedBlobStore(**blob_config(settings)),
    )
