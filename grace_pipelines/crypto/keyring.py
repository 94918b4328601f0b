"""Key-encryption keys (KEKs) in a keyring file sealed by a master key (no Dagster imports).

Layers::

    master key (32 bytes)        env GRACE_MASTER_KEY (base64) or a 0600 key file (base64 text)
      -> HKDF-SHA256(salt, info="grace-pipelines/keyring/v1") -> keyring file key
        -> keyring file (AES-256-GCM): JSON {keys: [{id, created_at, state, material}]}
          -> KEKs wrap each blob's data key (see envelope.py)

API::

    MASTER_KEY_ENV = "GRACE_MASTER_KEY"
    MasterKey.generate() / .from_base64(text, source=...) / .from_env(env=None) -> MasterKey | None
    MasterKey.from_file(path)                   # refuses group/other-readable files
    create_master_key_file(path) -> MasterKey   # 0600, O_EXCL: refuses to overwrite
    load_master_key(*, env=None, key_file=None) -> MasterKey   # env first, then the key file
    open_keyring(keys_dir, *, env=None, create=False, master_key_file=None) -> Keyring
        # keys_dir/keyring.bin; master key from env or keys_dir/master.key. create=True is what
        # `grace init` wants: creates the key file (when env is unset) and the keyring if missing.

    Keyring.create(path, master_key) -> Keyring     # first KEK active; refuses an existing file
    Keyring.load(path, master_key) -> Keyring
    kr.path, kr.active -> Kek, kr.get(kek_id) -> Kek, kr.ids -> list[str], kr.keys() -> list[KeyInfo]
    kr.retiring_ids -> list[str]
    kr.begin_rotation() -> str     # new KEK active, old active -> retiring; saved before return
    kr.retire(kek_id, *, save=True)
    kr.save(); kr.refresh() -> bool; kr.reload()
    kr.derive_key(info: bytes, *, salt=b"", length=32) -> bytes   # HKDF subkey of the master key
    kr.writer_lock() / kr.rotation_lock()   # context managers (see "Concurrency")

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
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from grace_pipelines.crypto.envelope import KEK_ID_RE, NONCE_SIZE, CryptoError

try:  # POSIX advisory locks; absent on Windows
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

MASTER_KEY_ENV = "GRACE_MASTER_KEY"
MASTER_KEY_FILE = "master.key"
KEYRING_FILE = "keyring.bin"
KEY_BYTES = 32
STATES = ("active", "retiring", "retired")
_KR_MAGIC = b"GRKR"
_KR_VERSION = 1
_SALT = 16
_KR_HEADER = len(_KR_MAGIC) + 1 + _SALT + NONCE_SIZE
_HKDF_INFO = b"grace-pipelines/keyring/v1"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


TEMP_PREFIX = ".tmp-"
LEGACY_TEMP_AGE_S = 3600.0  # a temp file without a pid in its name: stale once this old


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is gone for our purposes
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[0] not in ("Z", "X")
    except OSError:
        return True


def stale_temp_files(folder: Path | str, *, recursive: bool = False) -> list[Path]:
    """``atomic_write_bytes`` temp files in ``folder`` whose writer is gone (a kill -9 between
    write and rename leaves them: a killed rotation left re-wrapped copies of recordings that
    listing, rotation and purge all skipped, and that still decrypted)."""
    import time

    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for tmp in folder.rglob(f"{TEMP_PREFIX}*") if recursive else folder.glob(f"{TEMP_PREFIX}*"):
        if not tmp.is_file():
            continue
        pid_text = tmp.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if pid_text.isdigit():
            if not _pid_alive(int(pid_text)):
                found.append(tmp)
        else:
            try:
                if time.time() - tmp.stat().st_mtime > LEGACY_TEMP_AGE_S:
                    found.append(tmp)
            except FileNotFoundError:
                continue
    return sorted(found)


def atomic_write_bytes(path: Path | str, data: bytes, *, fsync_dir: bool = True) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, os.replace.

    The temp file is created 0600 as ``.tmp-<pid>-...`` (skipped by blob listings; the pid tells
    a kill's leftover from a live writer's file, see ``stale_temp_files``) and removed on
    failure. ``fsync_dir`` also syncs the folder so the rename survives power loss.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{os.getpid()}-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if fsync_dir:
        _fsync_dir(path.parent)


# --------------------------------------------------------------------------- master key


class MasterKey:
    """The 32-byte root secret. ``source`` says where it came from (never the value)."""

    __slots__ = ("_key", "source")

    def __init__(self, key: bytes, *, source: str = "memory") -> None:
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
            raise CryptoError(f"master key from {source} must be exactly {KEY_BYTES} bytes",
                              name=source, reason="malformed")
        self._key = bytes(key)
        self.source = source

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(secrets.token_bytes(KEY_BYTES), source="generated")

    @classmethod
    def from_base64(cls, text: str | bytes, *, source: str = "base64") -> MasterKey:
        """Decode standard or URL-safe base64 of exactly 32 bytes; the error never echoes the text."""
        raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
        raw = raw.strip()
        try:
            if b"-" in raw or b"_" in raw:
                key = base64.urlsafe_b64decode(raw)
            else:
                key = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError(f"master key from {source} is malformed: not valid base64 "
                              f"(expected base64 of {KEY_BYTES} random bytes, e.g. from "
                              f"`python -c \"import os,base64;print(base64.b64encode(os.urandom(32)).decode())\"`)",
                              name=source, reason="malformed") from None
        if len(key) != KEY_BYTES:
            raise CryptoError(f"master key from {source} is malformed: decodes to {len(key)} bytes, "
                              f"expected {KEY_BYTES}", name=source, reason="malformed")
        return cls(key, source=source)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MasterKey | None:
        """The key in ``GRACE_MASTER_KEY``, or None when unset or empty."""
        env = os.environ if env is None else env
        value = env.get(MASTER_KEY_ENV, "")
        if not value.strip():
            return None
        return cls.from_base64(value, source=f"env {MASTER_KEY_ENV}")

    @classmethod
    def from_file(cls, path: Path | str) -> MasterKey:
        """Load a key file; refuses one that group or others can read or write."""
        path = Path(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise CryptoError(f"master key file {path} does not exist (create it with `grace init`, "
                              f"or set {MASTER_KEY_ENV})", name=str(path), reason="missing") from None
        if not stat.S_ISREG(st.st_mode):
            raise CryptoError(f"master key file {path} is not a regular file", name=str(path), reason="malformed")
        if os.name == "posix" and st.st_mode & 0o077:
            raise CryptoError(f"master key file {path} is accessible by group or others (mode "
                              f"{stat.S_IMODE(st.st_mode):04o}); refusing to use it. Fix with: chmod 600 {path}",
                              name=str(path), reason="permissions")
        return cls.from_base64(path.read_bytes(), source=f"key file {path}")

    def _derive(self, salt: bytes, info: bytes) -> bytes:
        return self.derive(info, salt=salt)

    def derive(self, info: bytes, *, salt: bytes = b"", length: int = KEY_BYTES) -> bytes:
        """A purpose-bound subkey: HKDF-SHA256(master key, salt, info). Same inputs, same key.

        For secrets that must outlive KEK rotations (e.g. the keyword-index HMAC key); they
        change only with the master key. Give every purpose its own ``info`` label.
        """
        if not info:
            raise ValueError("derive() needs a non-empty info label naming the purpose")
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info).derive(self._key)

    def to_base64(self) -> str:
        """The key as base64 text (for GRACE_MASTER_KEY or a backup). Handle with care."""
        return base64.b64encode(self._key).decode("ascii")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MasterKey) and secrets.compare_digest(self._key, other._key)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MasterKey(source={self.source!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("MasterKey cannot be pickled")


def create_master_key_file(path: Path | str) -> MasterKey:
    """Create a new random master key file (base64 text, mode 0600); refuses to overwrite.

    Parent folders are created with mode 0700. Returns the new key.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = MasterKey.generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        raise CryptoError(f"master key file {path} already exists; refusing to overwrite it "
                          "(losing it makes every encrypted blob unreadable)",
                          name=str(path), reason="exists") from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # the umask can only narrow it; be explicit anyway
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.to_base64().encode("ascii") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return MasterKey(key._key, source=f"key file {path}")


def load_master_key(*, env: Mapping[str, str] | None = None, key_file: Path | str | None = None) -> MasterKey:
    """``GRACE_MASTER_KEY`` when set (wins), else ``key_file``; a clear error when neither exists."""
    key = MasterKey.from_env(env)
    if key is not None:
        return key
    if key_file is None:
        raise CryptoError(f"no master key: set {MASTER_KEY_ENV} (base64 of 32 bytes) or create a key file "
                          "with `grace init`", reason="missing")
    return MasterKey.from_file(key_file)


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class KeyInfo:
    """Metadata of one KEK: never its material."""

    id: str
    created_at: datetime
    state: str
    retired_at: datetime | None = None

    def age(self, now: datetime | None = None) -> float:
        """Seconds since creation."""
        return ((now or _utcnow()) - self.created_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": self.created_at.isoformat(), "state": self.state,
                "retired_at": self.retired_at.isoformat() if self.retired_at else None}


class Kek:
    """One key-encryption key. Material stays inside: callers use :meth:`wrap`/:meth:`unwrap`."""

    __slots__ = ("_aead", "_material", "created_at", "id", "retired_at", "state")

    def __init__(self, id: str, created_at: datetime, state: str, material: bytes | None,
                 retired_at: datetime | None = None) -> None:
        self.id = id
        self.created_at = created_at
        self.state = state
        self.retired_at = retired_at
        self._material = material
        self._aead: AESGCM | None = None

    @property
    def can_decrypt(self) -> bool:
        return self._material is not None

    @property
    def info(self) -> KeyInfo:
        return KeyInfo(self.id, self.created_at, self.state, self.retired_at)

    def _cipher(self) -> AESGCM:
        if self._material is None:
            raise CryptoError(f"key {self.id} is retired and its material was destroyed",
                              name=self.id, reason="retired_key")
        if self._aead is None:
            self._aead = AESGCM(self._material)
        return self._aead

    def wrap(self, data_key: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """(nonce, AES-GCM(data_key)) under this KEK, with a fresh random 96-bit nonce."""
        if self.state != "active":
            raise CryptoError(f"key {self.id} is {self.state}; only the active key wraps new data keys",
                              name=self.id, reason="not_active")
        nonce = os.urandom(NONCE_SIZE)
        return nonce, self._cipher().encrypt(nonce, data_key, aad)

    def unwrap(self, nonce: bytes, wrapped: bytes, aad: bytes) -> bytes:
        """The data key; raises cryptography's InvalidTag when it does not authenticate."""
        return self._cipher().decrypt(nonce, wrapped, aad)

    def _drop_material(self) -> None:
        self._material = None
        self._aead = None

    def __repr__(self) -> str:
        return f"Kek(id={self.id!r}, state={self.state!r}, created_at={self.created_at.isoformat()!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("Kek cannot be pickled (it holds key material)")


def _new_kek_id(now: datetime) -> str:
    return f"kek-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _parse_time(value: Any, path: Path, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise CryptoError(f"keyring {path} is malformed: bad {what} {value!r}", name=str(path),
                          reason="malformed") from None
    if parsed.tzinfo is None:
        raise CryptoError(f"keyring {path} is malformed: {what} is not timezone-aware",
                          name=str(path), reason="malformed")
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
            raise CryptoError(f"keyring {path} already exists; refusing to overwrite it", name=str(path),
                              reason="exists")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        now = _utcnow()
        keyring = cls(path, cls._as_master(master_key),
                      [Kek(_new_kek_id(now), now, "active", secrets.token_bytes(KEY_BYTES))])
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
            raise CryptoError(f"keyring {path} does not exist (create it with `grace init`)",
                              name=str(path), reason="missing") from None
        if blob[:4] != _KR_MAGIC:
            raise CryptoError(f"keyring {path} cannot be opened: not a Grace keyring file", name=str(path),
                              reason="not_keyring")
        if len(blob) < _KR_HEADER + 16:
            raise CryptoError(f"keyring {path} cannot be opened: truncated file", name=str(path),
                              reason="truncated")
        if blob[4] != _KR_VERSION:
            raise CryptoError(f"keyring {path} cannot be opened: unsupported version {blob[4]}",
                              name=str(path), reason="unsupported_version")
        header = blob[:_KR_HEADER]
        salt = blob[5:5 + _SALT]
        nonce = blob[5 + _SALT:_KR_HEADER]
        try:
            text = AESGCM(master._derive(salt, _HKDF_INFO)).decrypt(nonce, blob[_KR_HEADER:], header)
        except InvalidTag:
            raise CryptoError(f"keyring {path} cannot be opened: wrong master key or tampered file "
                              f"(master key from {master.source})", name=str(path), reason="auth_failed") from None
        try:
            doc = json.loads(text)
            keys = []
            for entry in doc["keys"]:
                material = entry.get("material")
                keys.append(Kek(
                    id=str(entry["id"]),
                    created_at=_parse_time(entry["created_at"], path, "created_at"),
                    state=str(entry["state"]),
                    material=base64.b64decode(material, validate=True) if material else None,
                    retired_at=_parse_time(entry["retired_at"], path, "retired_at") if entry.get("retired_at") else None,
                ))
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise CryptoError(f"keyring {path} is malformed ({type(exc).__name__})", name=str(path),
                              reason="malformed") from None
        return keys, header

    def _validate(self) -> None:
        where = f"keyring {self._path}"
        active = [k for k in self._keys.values() if k.state == "active"]
        if len(active) != 1:
            raise CryptoError(f"{where} is malformed: {len(active)} active keys (expected exactly 1)",
                              name=str(self._path), reason="malformed")
        for k in self._keys.values():
            if k.state not in STATES or not KEK_ID_RE.match(k.id):
                raise CryptoError(f"{where} is malformed: bad key entry {k.id!r}", name=str(self._path),
                                  reason="malformed")
            if (k.state == "retired") != (k._material is None):
                raise CryptoError(f"{where} is malformed: key {k.id} state {k.state} does not match its material",
                                  name=str(self._path), reason="malformed")
            if k._material is not None and len(k._material) != KEY_BYTES:
                raise CryptoError(f"{where} is malformed: key {k.id} has the wrong size",
                                  name=str(self._path), reason="malformed")

    def save(self) -> None:
        """Encrypt and write the keyring atomically (temp + fsync + rename + folder fsync), 0600."""
        self._validate()
        doc = {
            "format": "grace-keyring",
            "version": _KR_VERSION,
            "saved_at": _utcnow().isoformat(),
            "keys": [
                {"id": k.id, "created_at": k.created_at.isoformat(), "state": k.state,
                 "retired_at": k.retired_at.isoformat() if k.retired_at else None,
                 "material": base64.b64encode(k._material).decode("ascii") if k._material else None}
                for k in self._keys.values()
            ],
        }
        salt = secrets.token_bytes(_SALT)
        nonce = os.urandom(NONCE_SIZE)
        header = _KR_MAGIC + bytes([_KR_VERSION]) + salt + nonce
        sealed = AESGCM(self._master._derive(salt, _HKDF_INFO)).encrypt(
            nonce, json.dumps(doc, sort_keys=True).encode("utf-8"), header)
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
            raise CryptoError(f"unknown key id {kek_id!r} (not in keyring {self._path})", name=kek_id,
                              reason="unknown_key")
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
            raise CryptoError(f"key {kek_id} is the active key; begin a rotation before retiring it",
                              name=kek_id, reason="active")
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


def open_keyring(keys_dir: Path | str, *, env: Mapping[str, str] | None = None, create: bool = False,
                 master_key_file: Path | str | None = None) -> Keyring:
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
            name=str(key_file), reason="missing",
        )
    if create:
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if MasterKey.from_env(env) is None and not key_file.exists():
            create_master_key_file(key_file)
    master = load_master_key(env=env, key_file=key_file)
    if create and not path.exists():
        return Keyring.create(path, master)
    return Keyring.load(path, master)
