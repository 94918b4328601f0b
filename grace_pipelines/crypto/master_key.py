"""The master key: 32 bytes from the environment (GRACE_MASTER_KEY, base64) or a 0600 key file,
the root every keyring file key and HKDF subkey is derived from. Never in a repr, never pickled;
a group- or other-readable key file is refused (no Dagster)."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from grace_pipelines.crypto.envelope import CryptoError
from grace_pipelines.crypto.files import sync_folder

MASTER_KEY_ENV = "GRACE_MASTER_KEY"


MASTER_KEY_FILE = "master.key"


KEY_BYTES = 32


class MasterKey:
    """The 32-byte root secret. ``source`` says where it came from (never the value)."""

    __slots__ = ("_key", "source")

    def __init__(self, key: bytes, *, source: str = "memory") -> None:
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
            raise CryptoError(
                f"master key from {source} must be exactly {KEY_BYTES} bytes", name=source, reason="malformed"
            )
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
            raise CryptoError(
                f"master key from {source} is malformed: not valid base64 "
                f"(expected base64 of {KEY_BYTES} random bytes, e.g. from "
                f'`python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())"`)',
                name=source,
                reason="malformed",
            ) from None
        if len(key) != KEY_BYTES:
            raise CryptoError(
                f"master key from {source} is malformed: decodes to {len(key)} bytes, expected {KEY_BYTES}",
                name=source,
                reason="malformed",
            )
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
            raise CryptoError(
                f"master key file {path} does not exist (create it with `grace init`, or set {MASTER_KEY_ENV})",
                name=str(path),
                reason="missing",
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise CryptoError(f"master key file {path} is not a regular file", name=str(path), reason="malformed")
        if os.name == "posix" and st.st_mode & 0o077:
            raise CryptoError(
                f"master key file {path} is accessible by group or others (mode "
                f"{stat.S_IMODE(st.st_mode):04o}); refusing to use it. Fix with: chmod 600 {path}",
                name=str(path),
                reason="permissions",
            )
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
        raise CryptoError(
            f"master key file {path} already exists; refusing to overwrite it "
            "(losing it makes every encrypted blob unreadable)",
            name=str(path),
            reason="exists",
        ) from None
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
    sync_folder(path.parent)
    return MasterKey(key._key, source=f"key file {path}")


def load_master_key(*, env: Mapping[str, str] | None = None, key_file: Path | str | None = None) -> MasterKey:
    """``GRACE_MASTER_KEY`` when set (wins), else ``key_file``; a clear error when neither exists."""
    key = MasterKey.from_env(env)
    if key is not None:
        return key
    if key_file is None:
        raise CryptoError(
            f"no master key: set {MASTER_KEY_ENV} (base64 of 32 bytes) or create a key file with `grace init`",
            reason="missing",
        )
    return MasterKey.from_file(key_file)
