"""Dagster resources: the ports and stores that assets call.

One abstract `dg.ConfigurableResource` per engine port with a subclass per engine (as Dagster's
project_fully_featured does with its HN client); assets annotate the abstract type:

- `Transcriber`: `FasterWhisperTranscriber` (default), `OpenAITranscriber`, `WhisperXTranscriber`
- `Embedder`: `MiniLMEmbedder` (default), `OpenAIEmbedder`

and one resource per store (`BlobStore`, `VectorStore`, `StateResource`) plus `Extraction` and
`Alerts`. Each engine or store resource holds its config fields and delegates to a plain client
(grace_pipelines.engines, grace_pipelines.stores), which code outside an asset can build
without Dagster: `grace_pipelines.engines.clients.clients_for(settings)`.

`build_resources(settings)` wires them from GraceSettings; API keys come from the vault (a
named secret, approved per purpose) or, when set, an environment variable through
`dg.EnvVar`; never from settings, never into metadata.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from grace_pipelines.engines.clients import blob_config, chunk_table_for, index_config, require_known_dim
from grace_pipelines.resources.alerts import Alerts
from grace_pipelines.resources.blob_store import BlobStore
from grace_pipelines.resources.chunking import Chunking
from grace_pipelines.resources.embedder import Embedder, MiniLMEmbedder, OpenAIEmbedder, embedder_for
from grace_pipelines.resources.extraction import Extraction
from grace_pipelines.resources.speakers import NoSpeakers, OfflineSpeakers, Speakers, speakers_for
from grace_pipelines.resources.state import StateResource
from grace_pipelines.resources.transcriber import (
    FasterWhisperTranscriber,
    OpenAITranscriber,
    Transcriber,
    WhisperXTranscriber,
    transcriber_for,
)
from grace_pipelines.resources.vector_store import VectorStore
from grace_pipelines.settings import GraceSettings
from grace_pipelines.text.budget import ExtractBudget

__all__ = [
    "Alerts",
    "BlobStore",
    "Chunking",
    "Embedder",
    "Extraction",
    "FasterWhisperTranscriber",
    "MiniLMEmbedder",
    "OpenAIEmbedder",
    "OpenAITranscriber",
    "StateResource",
    "Transcriber",
    "VectorStore",
    "WhisperXTranscriber",
    "build_resources",
    "embedder_for",
    "transcriber_for",
    "Speakers",
    "OfflineSpeakers",
    "NoSpeakers",
    "speakers_for",
]


def _webhook(settings: GraceSettings) -> Any:
    """The SLA webhook URL carries its token: from the environment it goes in as `dg.EnvVar`,
    so the Dagster UI shows the variable's name, never the URL."""
    if settings.sla_webhook_url and os.environ.get("GRACE_SLA_WEBHOOK_URL") == settings.sla_webhook_url:
        return dg.EnvVar("GRACE_SLA_WEBHOOK_URL")
    return settings.sla_webhook_url


def build_resources(settings: GraceSettings) -> dict[str, Any]:
    embedder = embedder_for(settings)
    require_known_dim(settings, embedder.dim)
    return {
        "transcriber": transcriber_for(settings),
        "speakers": speakers_for(settings),
        "embedder": embedder,
        "vector_store": VectorStore(**index_config(settings, chunk_table_for(embedder.model_name, embedder.dim))),
        "blob_store": BlobStore(**blob_config(settings)),
        "state": StateResource(url=settings.state_url, keys_dir=str(settings.keys_dir)),
        "extraction": Extraction.from_budget(ExtractBudget.from_settings(settings)),
        "chunking": Chunking(chunk_chars=settings.chunk_chars, chunk_overlap=settings.chunk_overlap),
        "alerts": Alerts(webhook_url=_webhook(settings)),
    }
