"""A key-encryption key (KEK): its id, age and state, and wrapping / unwrapping a blob's data key
with AES-256-GCM. Material is dropped when the key retires (crypto-shredding); never in a repr,
never pickled (no Dagster)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from grace_pipelines.crypto.envelope import NONCE_SIZE, CryptoError

STATES = ("active", "retiring", "retired")


@dataclass(frozen=True)
class KeyInfo:
    """Metadata of one KEK: never its material."""

    id: str
    created_at: datetime
    state: str
    retired_at: datetime | None = None

    def age(self, now: datetime | None = None) -> float:
        """Seconds since creation."""
        return ((now or datetime.now(timezone.utc)) - self.created_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "state": self.state,
            "retired_at": self.retired_at.isoformat() if self.retired_at else None,
        }


class Kek:
    """One key-encryption key. Material stays inside: callers use :meth:`wrap`/:meth:`unwrap`."""

    __slots__ = ("_aead", "_material", "created_at", "id", "retired_at", "state")

    def __init__(
        self, id: str, created_at: datetime, state: str, material: bytes | None, retired_at: datetime | None = None
    ) -> None:
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
            raise CryptoError(
                f"key {self.id} is retired and its material was destroyed", name=self.id, reason="retired_key"
            )
        if self._aead is None:
            self._aead = AESGCM(self._material)
        return self._aead

    def wrap(self, data_key: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """(nonce, AES-GCM(data_key)) under this KEK, with a fresh random 96-bit nonce."""
        if self.state != "active":
            raise CryptoError(
                f"key {self.id} is {self.state}; only the active key wraps new data keys",
                name=self.id,
                reason="not_active",
            )
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
