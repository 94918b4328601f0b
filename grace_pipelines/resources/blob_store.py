"""The blob store as a Dagster resource: per-source blobs under GRACE_HOME/store, sealed at rest.

The store itself (AES-256-GCM envelope encryption, atomic writes under the keyring's writer
lock, the per-source text key and the keyword-index key) is the plain class
`grace_pipelines.stores.blobs.SealedBlobStore`; this resource holds its two paths and delegates
every method to it, so assets keep calling `blob_store.put_bytes(...)` and the Python API can
use the plain class. The names below are re-exported from there for older imports.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from grace_pipelines.crypto.keyring import Keyring
from grace_pipelines.stores.blobs import (
    BLOB_NAMES,
    CHUNKS,
    ORIGINAL,
    TEXT_KEY,
    TRANSCRIPT,
    BlobError,
    SealedBlobStore,
    forget_keyrings,
    keyring_for,
    open_text,
    seal_text,
)

__all__ = [
    "BLOB_NAMES",
    "CHUNKS",
    "ORIGINAL",
    "TEXT_KEY",
    "TRANSCRIPT",
    "BlobError",
    "BlobStore",
    "SealedBlobStore",
    "forget_keyrings",
    "keyring_for",
    "open_text",
    "seal_text",
]


class BlobStore(dg.ConfigurableResource):
    """A folder of per-source encrypted blobs, and the keyring that protects them."""

    root: str = Field(description="Folder holding one subfolder per source key")
    keys_dir: str = Field(description="Folder of the keyring (and master.key unless GRACE_MASTER_KEY is set)")

    _client: SealedBlobStore | None = PrivateAttr(default=None)

    def client(self) -> SealedBlobStore:
        if self._client is None:
            self._client = SealedBlobStore(root=self.root, keys_dir=self.keys_dir)
        return self._client

    # ---- keys -----------------------------------------------------------------------------
    def keyring(self) -> Keyring:
        return self.client().keyring()

    def index_key(self) -> bytes:
        """HMAC key of the blind keyword index (stable across key rotations)."""
        return self.client().index_key()

    def text_key(self, key: str, create: bool = False) -> bytes:
        """The source's random text key (sealed in its folder like any blob)."""
        return self.client().text_key(key, create=create)

    # ---- blobs ----------------------------------------------------------------------------
    def exists(self, key: str, name: str) -> bool:
        return self.client().exists(key, name)

    def put_bytes(self, key: str, name: str, data: bytes) -> int:
        """Seal and write atomically; returns the plaintext size."""
        return self.client().put_bytes(key, name, data)

    def get_bytes(self, key: str, name: str) -> bytes:
        return self.client().get_bytes(key, name)

    def put_json(self, key: str, name: str, value: Any) -> int:
        return self.client().put_json(key, name, value)

    def get_json(self, key: str, name: str) -> Any:
        return self.client().get_json(key, name)

    def list(self, key: str) -> list[str]:
        return self.client().list(key)

    def delete(self, key: str, name: str) -> int:
        return self.client().delete(key, name)

    def temp_files(self, key: str | None = None) -> list[str]:
        """Temporary files of gone writers, relative to the store (report only)."""
        return self.client().temp_files(key)

    def remove_temp_files(self, key: str | None = None) -> list[str]:
        """Remove the temporary files of gone writers; returns what was removed."""
        return self.client().remove_temp_files(key)

    def delete_source(self, key: str) -> int:
        return self.client().delete_source(key)
