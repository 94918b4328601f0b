"""What every embedding engine shares: its error type, the identity of the vectors it makes,
and the plain-client protocol.

The identity (`code_version_of`) is part of the embeddings asset's code version and is stored
with each source (`embedding_model`): the string it hashes must never change for an existing
engine, or every GRACE_HOME re-embeds.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import numpy as np


class EmbeddingError(RuntimeError):
    """The embedder failed; the message says why (never the text itself)."""


# What an embeddings row holds beyond the vector; a change re-embeds every source (embeddings
# only). "sentences-1": sealed sentence vectors per row (search/sentences.py, December 2026).
ROW_LAYOUT = "sentences-1"


def code_version_of(engine: str, model_name: str, model_version: str, dim: int) -> str:
    """Identity of the vectors an embedder makes (engine, model, version, size): when it
    changes, every source is re-embedded and nothing upstream is redone."""
    identity = f"{engine}:{model_name}:{model_version}:{dim}:{ROW_LAYOUT}"
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def unit_rows(array: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (a zero row stays zero)."""
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.clip(norms, 1e-12, None)


class EmbeddingClient(Protocol):
    """A plain embedder: L2-normalised float32 vectors, one row per text."""

    engine: str

    @property
    def model_name(self) -> str: ...

    @property
    def model_version(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def code_version(self) -> str: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...
