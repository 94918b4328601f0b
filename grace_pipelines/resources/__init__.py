"""Dagster resources: the engines and stores that assets call.

`build_resources(settings)` wires them from GraceSettings; API keys come from the vault (a
named secret, approved per purpose) or, when set, an environment variable through
`dg.EnvVar`; never from settings, never into metadata.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from grace_pipelines.resources.alerts import Alerts
from grace_pipelines.resources.blob_store import BlobStore
from grace_pipelines.resources.embedder import MINILM_NAME, Embedder
from grace_pipelines.resources.extraction import Extraction
from grace_pipelines.resources.state import StateResource
from grace_pipelines.resources.transcriber import Transcriber
from grace_pipelines.resources.vector_store import VectorStore, table_name_for
from grace_pipelines.settings import GraceSettings, SettingsError
from grace_pipelines.text.budget import ExtractBudget

__all__ = ["Alerts", "BlobStore", "Embedder", "Extraction", "StateResource", "Transcriber", "VectorStore", "build_resources"]


def _api_key(settings: GraceSettings, needed: bool) -> Any:
    if needed and os.environ.get(settings.openai_api_key_env):
        return dg.EnvVar(settings.openai_api_key_env)
    return None


def _vault(settings: GraceSettings) -> dict[str, Any]:
    """Where the engines find their API key when none is in the environment: the vault."""
    return {"credential": settings.openai_credential, "state_url": settings.state_url, "keys_dir": str(settings.keys_dir)}


def _webhook(settings: GraceSettings) -> Any:
    """The SLA webhook URL carries its token: from the environment it goes in as `dg.EnvVar`,
    so the Dagster UI shows the variable's name, never the URL."""
    if settings.sla_webhook_url and os.environ.get("GRACE_SLA_WEBHOOK_URL") == settings.sla_webhook_url:
        return dg.EnvVar("GRACE_SLA_WEBHOOK_URL")
    return settings.sla_webhook_url


def build_resources(settings: GraceSettings) -> dict[str, Any]:
    embedder = Embedder(
        engine=settings.embedder,
        openai_model=settings.embedding_model,
        dimensions=settings.embedding_dimensions,
        openai_base_url=settings.openai_base_url,
        openai_api_key=_api_key(settings, settings.embedder == "openai"),
        **_vault(settings),
    )
    if embedder.dim <= 0:
        raise SettingsError(
            f"embedding_dimensions: the vector size of model {settings.embedding_model!r} is not known; "
            "set GRACE_EMBEDDING_DIMENSIONS"
        )
    return {
        "transcriber": Transcriber(
            engine=settings.transcriber,
            model=settings.whisper_model,
            device=settings.whisper_device,
            compute_type=settings.whisper_compute_type,
            batch_size=settings.whisper_batch_size,
            language=settings.whisper_language,
            openai_base_url=settings.openai_base_url,
            openai_api_key=_api_key(settings, settings.transcriber == "openai"),
            openai_model=settings.openai_transcription_model,
            **_vault(settings),
        ),
        "embedder": embedder,
        "vector_store": VectorStore(
            uri=str(settings.lancedb), table_name=table_name_for(embedder.model_name, embedder.dim, default_model=MINILM_NAME),
            ann_min_rows=settings.ann_min_rows, ann_ef=settings.ann_ef,
            ann_refine_factor=settings.ann_refine_factor, fusion=settings.search_fusion,
            keyword_weight=settings.keyword_weight,
        ),
        "blob_store": BlobStore(root=str(settings.store), keys_dir=str(settings.keys_dir)),
        "state": StateResource(url=settings.state_url, keys_dir=str(settings.keys_dir)),
        "extraction": Extraction.from_budget(ExtractBudget.from_settings(settings)),
        "alerts": Alerts(webhook_url=_webhook(settings)),
    }
