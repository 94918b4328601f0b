"""The audit log's anchor: its head (seq, hash) kept outside the database, keyed by the master key.

The hash chain alone cannot tell a log whose newest entries were deleted from a shorter log
(found in the fault campaign: deleting the newest audit row left `grace audit verify` at exit
0). So every append also advances an anchor file, `keys/audit.anchor` (0600, written
atomically), holding the head's seq and hash with an HMAC-SHA256 under a key derived from
the master key: whoever can rewrite the database cannot forge or silently roll back the
anchor without the master key. `AuditLog.verify()` checks that the anchored entry is still
there with its hash. The anchor only moves forward (appends race across processes: the
write is under a file lock and skipped when the stored seq is already higher), and a writer
without the anchor (a bare `StateDB(url)`) just leaves it behind, which stays valid.

No Dagster here.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from grace_pipelines.crypto.files import atomic_write_bytes

ANCHOR_FILE = "audit.anchor"
_INFO = b"grace-pipelines/audit-anchor/v1"


class AnchorError(RuntimeError):
    """The anchor file exists but does not verify (tampered, or another master key)."""


class AuditAnchor:
    """The anchor of one GRACE_HOME's audit log, in its keys folder."""

    def __init__(self, keys_dir: str | Path) -> None:
        self.keys_dir = Path(keys_dir)
        self.path = self.keys_dir / ANCHOR_FILE

    def _key(self) -> bytes:
        from grace_pipelines.stores.blobs import keyring_for

        return keyring_for(str(self.keys_dir)).derive_key(_INFO, salt=b"grace-audit-anchor")

    def _mac(self, seq: int, digest: str) -> str:
        return hmac.new(self._key(), f"{seq}:{digest}".encode(), hashlib.sha256).hexdigest()

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Advances are serialised across processes (an OS lock, released if the holder dies)."""
        with FileLock(self.keys_dir / f".{ANCHOR_FILE}.lock", mode=0o600):
            yield

    def read(self) -> tuple[int, str] | None:
        """The anchored (seq, hash), None when there is none yet; AnchorError if it does not verify."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            seq, digest, mac = int(data["seq"]), str(data["hash"]), str(data["mac"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            raise AnchorError(f"audit anchor {self.path} is malformed") from None
        if not hmac.compare_digest(mac, self._mac(seq, digest)):
            raise AnchorError(f"audit anchor {self.path} does not verify (tampered, or made under another master key)")
        return seq, digest

    def advance(self, seq: int, digest: str) -> None:
        """Move the anchor to (seq, hash) unless it already stands at a later entry."""
        self._key()  # the keyring (and the keys folder) exist from here on
        with self._lock():
            try:
                current = self.read()
            except AnchorError:
                current = None  # verify reports it; appends must go on
            if current is not None and current[0] >= seq:
                return
            body = json.dumps({"seq": seq, "hash": digest, "mac": self._mac(seq, digest)}).encode()
            atomic_write_bytes(self.path, body, fsync_dir=False)
