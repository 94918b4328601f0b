"""Blobs per source under GRACE_HOME/store/{source_key}/, encrypted at rest, as a plain class.

Every blob (original media, transcript, chunks, the source's text key) is sealed with
AES-256-GCM envelope encryption (grace_pipelines.crypto.envelope): its own data key, wrapped by
the keyring's active key-encryption key; the blob's place (`source_key/name`) is bound as
associated data, so a blob moved elsewhere does not open. Writes are atomic (temp file, fsync,
rename) under the keyring's writer lock, so a key rotation never races a write. Readers get
plaintext bytes in memory only; a flipped byte or a wrong key is a `BlobError` naming the blob.

The store also holds the keys that protect text outside it: a random per-source text key
(`text.key`, used for chunk text in LanceDB, so purging a source also shreds its index text)
and the keyword-index HMAC key, derived from the master key.

`SealedBlobStore` is the store itself, with no Dagster in it: the `BlobStore` resource
(grace_pipelines.resources.blob_store) delegates to it, and the Python API and bench/ can use it
directly. The blob names every stage writes are here (`ORIGINAL`, `TRANSCRIPT`, `CHUNKS`,
`TEXT_KEY`) so that writers and readers name the same files.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from grace_pipelines.crypto.envelope import CryptoError, open_blob, seal, store_aad
from grace_pipelines.crypto.files import atomic_write_bytes, stale_temp_files
from grace_pipelines.crypto.keyring import Keyring, open_keyring

# ---- the blobs of one source ----------------------------------------------------------------
ORIGINAL = "original"  # the media or document as dropped (assets/source.py)
TRANSCRIPT = "transcript.json"  # timed segments, or a document's extracted text (assets/transcript.py)
CHUNKS = "chunks.json"  # the chunks with their positions (assets/chunks.py)
TEXT_KEY = "text.key"  # the random key sealing this source's chunk text in LanceDB
VOICES = "voices.json"  # one voice embedding per speaker of a recording (ingest/stages.add_speakers)
BLOB_NAMES = (ORIGINAL, TRANSCRIPT, CHUNKS, TEXT_KEY, VOICES)

_KEY_RE = re.compile(r"^[0-9a-f]{16}$")
_NAME_RE = re.compile(r"^[a-z0-9_.-]{1,64}$")


class BlobError(RuntimeError):
    """A blob is missing or unreadable; the message names it."""


# ---- keyrings ---------------------------------------------------------------------------------
# Opening a keys folder for the first time creates its master key and keyring: two threads doing
# that at once must not both write one, so the cache sits behind a lock (functools.cache alone
# lets both build).
_KEYRING_LOCK = threading.Lock()


@functools.cache
def _keyring(keys_dir: str) -> Keyring:
    return open_keyring(keys_dir, create=True)


def keyring_for(keys_dir: str) -> Keyring:
    """One keyring per keys folder per process (it reloads itself when rotated elsewhere)."""
    with _KEYRING_LOCK:
        return _keyring(keys_dir)


def forget_keyrings() -> None:
    """Forget every opened keyring (tests: a new master key, a restored backup)."""
    with _KEYRING_LOCK:
        _keyring.cache_clear()


# ---- chunk text under a source's text key -------------------------------------------------
def seal_bytes(key: bytes, data: bytes, aad: str) -> bytes:
    """AES-256-GCM of one small value (a chunk's text, its sentence vectors) under a source's text
    key: nonce || ciphertext."""
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(key).encrypt(nonce, data, aad.encode("utf-8"))


def open_bytes(key: bytes, sealed: bytes, aad: str) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], aad.encode("utf-8"))
    except (InvalidTag, ValueError):
        raise BlobError(f"chunk {aad}: row does not decrypt (wrong key or tampered row)") from None


def seal_text(key: bytes, text: str, aad: str) -> bytes:
    """AES-256-GCM of one short text (a chunk) under a source's text key: nonce || ciphertext."""
    return seal_bytes(key, text.encode("utf-8"), aad)


def open_text(key: bytes, sealed: bytes, aad: str) -> str:
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], aad.encode("utf-8")).decode("utf-8")
    except (InvalidTag, ValueError):
        raise BlobError(f"chunk {aad}: text does not decrypt (wrong key or tampered row)") from None


# ---- the store ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SealedBlobStore:
    """A folder of per-source encrypted blobs, and the keyring that protects them."""

    root: str  # one subfolder per source key
    keys_dir: str  # the keyring (and master.key unless GRACE_MASTER_KEY is set)

    # ---- keys ---------------------------------------------------------------------------
    def keyring(self) -> Keyring:
        return keyring_for(self.keys_dir)

    def index_key(self) -> bytes:
        """HMAC key of the blind keyword index; stable across key rotations (derived from the
        master key, so a new master key means re-indexing)."""
        return self.keyring().derive_key(b"grace-pipelines/keyword-index/v1", salt=b"grace-keyword-index")

    def text_key(self, key: str, create: bool = False) -> bytes:
        """The source's random text key (sealed in its folder like any blob)."""
        if self.exists(key, TEXT_KEY):
            return self.get_bytes(key, TEXT_KEY)
        if not create:
            raise BlobError(f"blob {key}/{TEXT_KEY} is missing: the source's text was purged or never indexed")
        material = secrets.token_bytes(32)
        self.put_bytes(key, TEXT_KEY, material)
        return material

    # ---- blobs --------------------------------------------------------------------------
    def _path(self, key: str, name: str) -> Path:
        if not _KEY_RE.match(key):
            raise BlobError(f"invalid source key {key!r}")
        if not _NAME_RE.match(name) or name.startswith("."):
            raise BlobError(f"invalid blob name {name!r}")
        return Path(self.root) / key / name

    def exists(self, key: str, name: str) -> bool:
        return self._path(key, name).is_file()

    def put_bytes(self, key: str, name: str, data: bytes) -> int:
        """Seal and write atomically; returns the plaintext size."""
        path = self._path(key, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        ring = self.keyring()
        with ring.writer_lock():
            atomic_write_bytes(path, seal(data, ring, aad=store_aad(key, name)), fsync_dir=False)
        return len(data)

    def get_bytes(self, key: str, name: str) -> bytes:
        path = self._path(key, name)
        try:
            sealed = path.read_bytes()
        except FileNotFoundError:
            raise BlobError(f"blob {key}/{name} is missing from the store") from None
        try:
            return open_blob(sealed, self.keyring(), aad=store_aad(key, name), name=f"{key}/{name}")
        except CryptoError as exc:
            raise BlobError(str(exc)) from None

    def put_json(self, key: str, name: str, value: Any) -> int:
        return self.put_bytes(key, name, json.dumps(value, ensure_ascii=False).encode("utf-8"))

    def get_json(self, key: str, name: str) -> Any:
        try:
            return json.loads(self.get_bytes(key, name))
        except json.JSONDecodeError as exc:
            raise BlobError(f"blob {key}/{name} is not valid JSON: {exc}") from None

    def list(self, key: str) -> list[str]:
        folder = self._path(key, "x").parent
        return (
            sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
            if folder.is_dir()
            else []
        )

    def delete(self, key: str, name: str) -> int:
        path = self._path(key, name)
        with self.keyring().writer_lock():
            size = path.stat().st_size if path.exists() else 0
            path.unlink(missing_ok=True)
        return size

    def temp_files(self, key: str | None = None) -> list[str]:
        """Temporary files of writers that are gone (a kill between write and rename), in one
        source folder or the whole store, relative to the store (report only)."""
        folder = self._path(key, "x").parent if key else Path(self.root)
        return [str(p.relative_to(self.root)) for p in stale_temp_files(folder, recursive=key is None)]

    def remove_temp_files(self, key: str | None = None) -> list[str]:
        """Remove the temporary files of gone writers (they may hold a sealed copy of a blob, so
        a purge must remove them too); returns what was removed, relative to the store."""
        folder = self._path(key, "x").parent if key else Path(self.root)
        removed = []
        with self.keyring().writer_lock():
            for path in stale_temp_files(folder, recursive=key is None):
                path.unlink(missing_ok=True)
                removed.append(str(path.relative_to(self.root)))
        return removed

    def delete_source(self, key: str) -> int:
        folder = self._path(key, "x").parent
        with self.keyring().writer_lock():
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0
            shutil.rmtree(folder, ignore_errors=True)
        return size
