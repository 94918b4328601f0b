"""Key-encryption keys (KEKs) in a keyring file sealed by a master key (no Dagster imports).

Layers::

    master key (32 bytes)        env GRACE_MASTER_KEY (base64) or a 0600 key file (base64 text)
      -> HKDF-SHA256(salt, info="grace-pipelines/keyring/v1") -> keyring file key
        -> keyring file (AES-256-GCM): JSON {keys: [{id, created_at, state, material}]}
          -> KEKs wrap each blob's data key (see envelope.py)

Entry points: ``open_keyring(keys_dir, create=...)`` (what `grace init` and the blob store use),
``Keyring.create`` / ``Keyring.load``, ``kr.begin_rotation()`` / ``kr.retire(kek_id)`` (rotation.py
drives them), ``kr.derive_key(info)`` (HKDF subkeys: the keyword index key, the audit anchor).

Key states: ``active`` (exactly one: wraps new data keys), ``retiring`` (still decrypts; a
rotation is moving its blobs to the active key), ``retired``. **Retiring destroys the key
material**: the record (id, created_at, retired_at) stays in the keyring for ``keys status``
and audit, but the material is removed from the file on the next save, so a retired key can
never decrypt again (crypto-shredding: old keyring copies/backups are the only way back, and
they also need the master key). Only retire a key after every blob is verified on another
key; ``rotation.rotate`` does exactly that. The active key cannot be retired.

Keyring file format: ``b"GRKR" | version (1) | salt (16) | nonce (12) | AES-GCM(ciphertext+tag)``;
the first 33 bytes are the GCM associated data; the file key is derived afresh with a random
salt on every save. Writes are atomic (temp file in the same folder, fsync, rename, fsync of
the folder) with 0600 permissions. A wrong master key or any flipped byte gives
``CryptoError("keyring PATH cannot be opened: wrong master key or tampered file")``.

Staleness: a long-lived process (the Dagster code server) may hold a Keyring while a rotation
runs elsewhere. ``kr.active`` and a ``kr.get`` miss re-check the file (a 33-byte read) and reload
it when it was replaced, so new blobs are never wrapped by a key another process retired.

Concurrency: ``kr.rotation_lock()`` takes an exclusive ``flock`` on ``PATH.lock``; rotation
holds it throughout. Anything that writes or deletes blobs (blob store put/delete, purge)
should hold ``kr.writer_lock()`` (shared) around seal + write, so a rotation never rewrites a
blob that is being replaced or purged and never retires a key a writer is still using.
flock locks are per open file: do not call rotate() while the same process holds a
writer_lock (it would wait for itself). On platforms without fcntl the locks are no-ops.

Nothing here puts key material in ``repr``/``str``; ``Kek``/``MasterKey`` refuse to pickle.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from grace_pipelines.crypto.envelope import KEK_ID_RE, NONCE_SIZE, CryptoError
from grace_pipelines.crypto.files import atomic_write_bytes
from grace_pipelines.crypto.kek import STATES, Kek, KeyInfo
from grace_pipelines.crypto.master_key import (
    KEY_BYTES,
    MASTER_KEY_FILE,
    MasterKey,
    create_master_key_file,
    load_master_key,
)

try:  # POSIX advisory locks; absent on Windows
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

KEYRING_FILE = "keyring.bin"
_KR_MAGIC = b"GRKR"
_KR_VERSION = 1
_SALT = 16
_KR_HEADER = len(_KR_MAGIC) + 1 + _SALT + NONCE_SIZE
_HKDF_INFO = b"grace-pipelines/keyring/v1"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------- master key


# --------------------------------------------------------------------------- keys


def _new_kek_id(now: datetime) -> str:
    return f"kek-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _parse_time(value: Any, path: Path, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise CryptoError(
            f"keyring {path} is malformed: bad {what} {value!r}", name=str(path), reason="malformed"
        ) from None
    if parsed.tzinfo is None:
        raise CryptoError(
            f"keyring {path} is malformed: {what} is not timezone-aware", name=str(path), reason="malformed"
        )
    return parsed.astimezone(timezone.utc)


class Keyring:
    """An ordered set of KEKs, exactly one active, persisted in an encrypted keyring file.

    Build with :meth:`create` or :meth:`load` (or :func:`open_keyring`), not the constructor.
    """

    def __init__(self, path: Path | str, master_key: MasterKey, keys: list[Kek]) -> None:
        self._path = Path(path)
        self._master = master_key
        self._keys: dict[str, Kek] = {k.id: k for k in keys}
        self._dirty = False
        self._signature: bytes | None = None  # header of the file last read/written (random per save)
        self._validate()

    # ---- construction and persistence

    @staticmethod
    def _as_master(master_key: MasterKey | bytes) -> MasterKey:
        return master_key if isinstance(master_key, MasterKey) else MasterKey(master_key)

    @classmethod
    def create(cls, path: Path | str, master_key: MasterKey | bytes) -> Keyring:
        """A new keyring file with one active KEK; refuses to replace an existing keyring."""
        path = Path(path)
        if path.exists():
            raise CryptoError(
                f"keyring {path} already exists; refusing to overwrite it", name=str(path), reason="exists"
            )
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        now = _utcnow()
        keyring = cls(
            path, cls._as_master(master_key), [Kek(_new_kek_id(now), now, "active", secrets.token_bytes(KEY_BYTES))]
        )
        keyring.save()
        return keyring

    @classmethod
    def load(cls, path: Path | str, master_key: MasterKey | bytes) -> Keyring:
        path = Path(path)
        master = cls._as_master(master_key)
        keys, signature = cls._read(path, master)
        keyring = cls(path, master, keys)
        keyring._signature = signature
        return keyring

    @staticmethod
    def _read(path: Path, master: MasterKey) -> tuple[list[Kek], bytes]:
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise CryptoError(
                f"keyring {path} does not exist (create it with `grace init`)", name=str(path), reason="missing"
            ) from None
        if blob[:4] != _KR_MAGIC:
            raise CryptoError(
                f"keyring {path} cannot be opened: not a Grace keyring file", name=str(path), reason="not_keyring"
            )
        if len(blob) < _KR_HEADER + 16:
            raise CryptoError(f"keyring {path} cannot be opened: truncated file", name=str(path), reason="truncated")
        if blob[4] != _KR_VERSION:
            raise CryptoError(
                f"keyring {path} cannot be opened: unsupported version {blob[4]}",
                name=str(path),
                reason="unsupported_version",
            )
        header = blob[:_KR_HEADER]
        salt = blob[5 : 5 + _SALT]
        nonce = blob[5 + _SALT : _KR_HEADER]
        try:
            text = AESGCM(master._derive(salt, _HKDF_INFO)).decrypt(nonce, blob[_KR_HEADER:], header)
        except InvalidTag:
            raise CryptoError(
                f"keyring {path} cannot be opened: wrong master key or tampered file (master key from {master.source})",
                name=str(path),
                reason="auth_failed",
            ) from None
        try:
            doc = json.loads(text)
            keys = []
            for entry in doc["keys"]:
                material = entry.get("material")
                keys.append(
                    Kek(
                        id=str(entry["id"]),
                        created_at=_parse_time(entry["created_at"], path, "created_at"),
                        state=str(entry["state"]),
                        material=base64.b64decode(material, validate=True) if material else None,
                        retired_at=_parse_time(entry["retired_at"], path, "retired_at")
                        if entry.get("retired_at")
                        else None,
                    )
                )
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise CryptoError(
                f"keyring {path} is malformed ({type(exc).__name__})", name=str(path), reason="malformed"
            ) from None
        return keys, header

    def _validate(self) -> None:
        where = f"keyring {self._path}"
        active = [k for k in self._keys.values() if k.state == "active"]
        if len(active) != 1:
            raise CryptoError(
                f"{where} is malformed: {len(active)} active keys (expected exactly 1)",
                name=str(self._path),
                reason="malformed",
            )
        for k in self._keys.values():
            if k.state not in STATES or not KEK_ID_RE.match(k.id):
                raise CryptoError(
                    f"{where} is malformed: bad key entry {k.id!r}", name=str(self._path), reason="malformed"
                )
            if (k.state == "retired") != (k._material is None):
                raise CryptoError(
                    f"{where} is malformed: key {k.id} state {k.state} does not match its material",
                    name=str(self._path),
                    reason="malformed",
                )
            if k._material is not None and len(k._material) != KEY_BYTES:
                raise CryptoError(
                    f"{where} is malformed: key {k.id} has the wrong size", name=str(self._path), reason="malformed"
                )

    def save(self) -> None:
        """Encrypt and write the keyring atomically (temp + fsync + rename + folder fsync), 0600."""
        self._validate()
        doc = {
            "format": "grace-keyring",
            "version": _KR_VERSION,
            "saved_at": _utcnow().isoformat(),
            "keys": [
                {
                    "id": k.id,
                    "created_at": k.created_at.isoformat(),
                    "state": k.state,
                    "retired_at": k.retired_at.isoformat() if k.retired_at else None,
                    "material": base64.b64encode(k._material).decode("ascii") if k._material else None,
                }
                for k in self._keys.values()
            ],
        }
        salt = secrets.token_bytes(_SALT)
        nonce = os.urandom(NONCE_SIZE)
        header = _KR_MAGIC + bytes([_KR_VERSION]) + salt + nonce
        sealed = AESGCM(self._master._derive(salt, _HKDF_INFO)).encrypt(
            nonce, json.dumps(doc, sort_keys=True).encode("utf-8"), header
        )
        atomic_write_bytes(self._path, header + sealed)
        self._signature = header
        self._dirty = False

    def reload(self) -> None:
        """Re-read the keyring file (drops unsaved changes)."""
        keys, signature = self._read(self._path, self._master)
        self._keys = {k.id: k for k in keys}
        self._validate()
        self._signature = signature
        self._dirty = False

    def refresh(self) -> bool:
        """Reload when the file was replaced since we last read or wrote it; True if reloaded.

        Cheap: compares the file's first 33 bytes (a random salt and nonce, new on every save)
        with those last seen. Never reloads over unsaved local changes.
        """
        if self._dirty:
            return False
        try:
            with open(self._path, "rb") as handle:
                header = handle.read(_KR_HEADER)
        except FileNotFoundError:
            return False
        if header == self._signature:
            return False
        self.reload()
        return True

    # ---- queries

    @property
    def path(self) -> Path:
        return self._path

    def derive_key(self, info: bytes, *, salt: bytes = b"", length: int = KEY_BYTES) -> bytes:
        """A subkey of the master key for one purpose (see :meth:`MasterKey.derive`).

        Unaffected by KEK rotation; ``info`` must be unique per purpose and must not be the
        keyring file's own label.
        """
        if info == _HKDF_INFO:
            raise ValueError("that info label is reserved for the keyring file")
        return self._master.derive(info, salt=salt, length=length)

    @property
    def active(self) -> Kek:
        """The KEK that wraps new data keys (re-checked against the file first)."""
        self.refresh()
        return next(k for k in self._keys.values() if k.state == "active")

    def get(self, kek_id: str) -> Kek:
        """The KEK with this id (retired ones included, with ``can_decrypt`` False)."""
        key = self._keys.get(kek_id)
        if key is None and self.refresh():
            key = self._keys.get(kek_id)
        if key is None:
            raise CryptoError(
                f"unknown key id {kek_id!r} (not in keyring {self._path})", name=kek_id, reason="unknown_key"
            )
        return key

    def __contains__(self, kek_id: object) -> bool:
        return kek_id in self._keys

    @property
    def ids(self) -> list[str]:
        return list(self._keys)

    @property
    def retiring_ids(self) -> list[str]:
        return [k.id for k in self._keys.values() if k.state == "retiring"]

    def keys(self) -> list[KeyInfo]:
        """Metadata of every key, oldest first (no material)."""
        return [k.info for k in self._keys.values()]

    # ---- changes

    def begin_rotation(self) -> str:
        """Create a new active KEK; the previous active one becomes ``retiring``. Saved before return.

        Returns the new key id. Existing retiring keys stay retiring.
        """
        if self._dirty:
            self.save()
        else:
            self.refresh()
        now = _utcnow()
        new_id = _new_kek_id(now)
        while new_id in self._keys:  # pragma: no cover - 24 random bits in the same second
            new_id = _new_kek_id(now)
        for k in self._keys.values():
            if k.state == "active":
                k.state = "retiring"
        self._keys[new_id] = Kek(new_id, now, "active", secrets.token_bytes(KEY_BYTES))
        self._dirty = True
        self.save()
        return new_id

    def retire(self, kek_id: str, *, save: bool = True) -> None:
        """Mark a non-active key retired and destroy its material (irreversible once saved)."""
        key = self.get(kek_id)
        if key.state == "active":
            raise CryptoError(
                f"key {kek_id} is the active key; begin a rotation before retiring it", name=kek_id, reason="active"
            )
        if key.state != "retired":
            key.state = "retired"
            key.retired_at = _utcnow()
            key._drop_material()
            self._dirty = True
        if save:
            self.save()

    # ---- locks

    @contextlib.contextmanager
    def _flock(self, mode: int) -> Iterator[None]:
        if fcntl is None:  # pragma: no cover
            yield
            return
        lock_path = self._path.with_name(self._path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # releases the lock

    def writer_lock(self) -> contextlib.AbstractContextManager[None]:
        """Shared lock for blob writers/deleters: excludes a running rotation, not other writers."""
        return self._flock(fcntl.LOCK_SH if fcntl else 0)

    def rotation_lock(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive lock held by rotation; waits for writers to finish."""
        return self._flock(fcntl.LOCK_EX if fcntl else 0)

    def __repr__(self) -> str:
        states = ", ".join(f"{k.id}:{k.state}" for k in self._keys.values())
        return f"Keyring(path={str(self._path)!r}, keys=[{states}])"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("Keyring cannot be pickled (it holds key material)")


def open_keyring(
    keys_dir: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    create: bool = False,
    master_key_file: Path | str | None = None,
) -> Keyring:
    """The keyring ``keys_dir/keyring.bin`` (e.g. GRACE_HOME/keys).

    Master key: ``GRACE_MASTER_KEY`` when set, else ``master_key_file`` (default
    ``keys_dir/master.key``). With ``create=True`` (``grace init``; idempotent) a missing key
    file is created (only when the env var is unset) and a missing keyring is created.
    """
    keys_dir = Path(keys_dir)
    key_file = Path(master_key_file) if master_key_file else keys_dir / MASTER_KEY_FILE
    path = keys_dir / KEYRING_FILE
    if MasterKey.from_env(env) is None and not key_file.exists() and path.exists():
        # a keyring without its master key: a new key could never open it, and creating one
        # (as `create` did) turned "restore your backup" into "wrong master key or tampered file"
        raise CryptoError(
            f"master key file {key_file} is missing but the keyring {path} exists: restore "
            f"{key_file.name} from your backup (or set GRACE_MASTER_KEY); a new key cannot open it",
            name=str(key_file),
            reason="missing",
        )
    if create:
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if MasterKey.from_env(env) is None and not key_file.exists():
            create_master_key_file(key_file)
    master = load_master_key(env=env, key_file=key_file)
    if create and not path.exists():
        return Keyring.create(path, master)
    return Keyring.load(path, master)
