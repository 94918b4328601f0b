"""Key rotation, verification and status over a set of encrypted blobs (no Dagster imports).

A set of blobs is anything with three methods (:class:`BlobSet`): ``names()``, ``read(name)``
and ``write(name, data)`` (atomic). Two optional methods speed things up: ``read_head(name,
size)`` (header-only reads for status and the "already rotated?" check) and ``sync()``
(make the renames of ``write`` durable, called once before keys are retired).
:class:`FolderBlobs` implements it for the blob store layout ``root/{source_key}/{name}``,
naming blobs ``"source_key/name"``, which is also what the store binds each blob to
(``aad = b"source_key/name"``, see ``envelope.store_aad``); ``aad_for`` maps a name to its aad.

API::

    rotate(keyring, blobs, *, aad_for=default_aad, progress=None) -> RotationReport
    verify(keyring, blobs, *, aad_for=default_aad, progress=None) -> VerifyReport
    status(keyring, blobs, *, now=None) -> StatusReport
    encrypt_plaintext_blobs(keyring, blobs, *, aad_for=default_aad) -> int   # migrate old stores
    FolderBlobs(root)
    class RotationError(CryptoError)   # .report: the RotationReport (completed=False)

``progress(phase, done, total)`` is called per blob (phases ``"rewrap"``, ``"verify"``) for a
progress bar. Every report has ``to_dict()`` (JSON-ready: counts, seconds, key ids, UTC times;
never blob contents).

Rotation, step by step (the whole run holds ``keyring.rotation_lock()``):

1. Reload the keyring. If a key is ``retiring`` an earlier rotation was interrupted: resume
   it (the active key is the target; no new key). Otherwise ``begin_rotation()``: a new active
   key is saved *before* any blob uses it, the previous one becomes ``retiring``.
2. Rewrap every blob whose header names another key (data key re-wrapped, body unchanged),
   one atomic write per blob; then ``blobs.sync()``.
3. Verify EVERY blob: it decrypts with the keyring and sits on the active key. Blobs that
   appeared on an old key meanwhile are rewrapped in another pass (at most 3 passes).
4. Only when all blobs verify: retire the retiring key(s) (material destroyed) and save.

Why a kill -9 at any point leaves every blob readable: the keyring file and each blob are
replaced atomically; until step 4 both the old and the new key hold material, so a blob is
readable whichever header it has; step 4 happens only after every blob verified on the new
key; the next ``rotate()`` sees the ``retiring`` key and completes the work. A rotation that
finds unreadable blobs (tampered, foreign, plaintext, or wrapped by a key already retired)
raises :class:`RotationError` naming them and retires nothing; fix or purge those blobs and run
it again (it resumes).

Writers that do not hold ``keyring.writer_lock()`` can race a rotation (a blob sealed with the
old key after the last pass): the blob store should take that shared lock around seal+write
and around deletes, so rotation waits for them and they wait for rotation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from grace_pipelines.crypto.envelope import (
    HEADER_MAX,
    CryptoError,
    is_envelope,
    kek_id_of,
    open_blob,
    rewrap,
    seal,
)
from grace_pipelines.crypto.files import atomic_write_bytes, sync_folder
from grace_pipelines.crypto.keyring import Keyring

Progress = Callable[[str, int, int], None]
MAX_PASSES = 3


def default_aad(name: str) -> bytes:
    """The aad of a blob named ``"source_key/blob_name"``: the name's UTF-8 bytes."""
    return name.encode("utf-8")


@runtime_checkable
class BlobSet(Protocol):
    """What rotation needs from a blob store."""

    def names(self) -> Iterable[str]: ...

    def read(self, name: str) -> bytes: ...

    def write(self, name: str, data: bytes) -> None: ...


class FolderBlobs:
    """Blobs stored as files ``root/{source_key}/{name}``; names are ``"source_key/name"``.

    Names (folders or files) starting with ``.`` are skipped (temp files), as are symlinks.
    ``write`` is atomic (temp file in the same folder, fsync, os.replace); ``sync`` fsyncs the
    folders written since the last sync.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._touched: set[Path] = set()

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        out: list[str] = []
        with os.scandir(self.root) as folders:
            for folder in folders:
                if folder.name.startswith(".") or not folder.is_dir(follow_symlinks=False):
                    continue
                with os.scandir(folder.path) as files:
                    out.extend(
                        f"{folder.name}/{f.name}"
                        for f in files
                        if not f.name.startswith(".") and f.is_file(follow_symlinks=False)
                    )
        return sorted(out)

    def path(self, name: str) -> Path:
        parts = name.split("/")
        if len(parts) != 2 or any(not p or p.startswith(".") for p in parts):
            raise ValueError(f"invalid blob name {name!r} (expected 'source_key/name')")
        return self.root / parts[0] / parts[1]

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def read_head(self, name: str, size: int) -> bytes:
        with open(self.path(name), "rb") as handle:
            return handle.read(size)

    def write(self, name: str, data: bytes) -> None:
        path = self.path(name)
        atomic_write_bytes(path, data, fsync_dir=False)
        self._touched.add(path.parent)

    def sync(self) -> None:
        for folder in sorted(self._touched):
            sync_folder(folder)
        self._touched.clear()

    def __repr__(self) -> str:
        return f"FolderBlobs(root={str(self.root)!r})"


@dataclass(frozen=True)
class BlobFailure:
    """A blob that could not be read, rewrapped or decrypted (``reason`` is CryptoError.reason)."""

    name: str
    reason: str
    message: str

    @classmethod
    def of(cls, name: str, exc: CryptoError) -> BlobFailure:
        return cls(name, exc.reason or "error", str(exc))


@dataclass
class VerifyReport:
    active_key_id: str
    total: int = 0
    verified: int = 0
    bytes: int = 0
    by_key: dict[str, int] = field(default_factory=dict)
    failures: list[BlobFailure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def on_active(self) -> int:
        return self.by_key.get(self.active_key_id, 0)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(ok=self.ok, on_active=self.on_active)
        return out


@dataclass
class RotationReport:
    new_key_id: str
    old_key_ids: list[str]
    resumed: bool
    blobs: int = 0
    rewrapped: int = 0
    already_current: int = 0
    verified: int = 0
    passes: int = 0
    retired: list[str] = field(default_factory=list)
    failures: list[BlobFailure] = field(default_factory=list)
    completed: bool = False
    rewrap_seconds: float = 0.0
    verify_seconds: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RotationError(CryptoError):
    """Rotation stopped before retiring keys because some blobs do not verify."""

    def __init__(self, message: str, report: RotationReport) -> None:
        super().__init__(message, reason="rotation_incomplete")
        self.report = report


@dataclass
class KeyStatus:
    id: str
    state: str
    created_at: datetime
    age_seconds: float
    blobs: int
    retired_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "created_at": self.created_at.isoformat(),
            "age_seconds": round(self.age_seconds, 3),
            "age_days": round(self.age_seconds / 86400, 3),
            "blobs": self.blobs,
            "retired_at": self.retired_at.isoformat() if self.retired_at else None,
        }


@dataclass
class StatusReport:
    measured_at: datetime
    keys: list[KeyStatus]
    total_blobs: int
    unknown_key_blobs: dict[str, int]
    unreadable: list[BlobFailure]

    def to_dict(self) -> dict[str, Any]:
        return {
            "measured_at": self.measured_at.isoformat(),
            "keys": [k.to_dict() for k in self.keys],
            "total_blobs": self.total_blobs,
            "unknown_key_blobs": dict(self.unknown_key_blobs),
            "unreadable": [asdict(f) for f in self.unreadable],
        }


def _head(blobs: Any, name: str) -> bytes:
    reader = getattr(blobs, "read_head", None)
    return reader(name, HEADER_MAX) if reader is not None else blobs.read(name)


def _sync(blobs: Any) -> None:
    syncer = getattr(blobs, "sync", None)
    if syncer is not None:
        syncer()


def verify(
    keyring: Keyring, blobs: BlobSet, *, aad_for: Callable[[str], bytes] = default_aad, progress: Progress | None = None
) -> VerifyReport:
    """Decrypt every blob (fully, authenticating every segment); count them per key."""
    start = time.perf_counter()
    names = sorted(blobs.names())
    report = VerifyReport(active_key_id=keyring.active.id, total=len(names))
    for i, name in enumerate(names):
        try:
            blob = blobs.read(name)
        except FileNotFoundError:  # deleted since listing
            report.total -= 1
            continue
        try:
            kid = kek_id_of(blob, name=name)
            open_blob(blob, keyring, aad=aad_for(name), name=name)
        except CryptoError as exc:
            report.failures.append(BlobFailure.of(name, exc))
        else:
            report.verified += 1
            report.bytes += len(blob)
            report.by_key[kid] = report.by_key.get(kid, 0) + 1
        if progress is not None:
            progress("verify", i + 1, len(names))
    report.seconds = time.perf_counter() - start
    return report


def _describe(failures: list[BlobFailure], limit: int = 5) -> str:
    shown = "; ".join(f.message for f in failures[:limit])
    more = f"; and {len(failures) - limit} more" if len(failures) > limit else ""
    return shown + more


def rotate(
    keyring: Keyring, blobs: BlobSet, *, aad_for: Callable[[str], bytes] = default_aad, progress: Progress | None = None
) -> RotationReport:
    """Rotate to a new KEK (or resume an interrupted rotation); see the module docstring.

    Returns the report when every blob verified on the new key and the old key(s) are
    retired; raises RotationError (with ``.report``) otherwise, retiring nothing.
    """
    start = time.perf_counter()
    with keyring.rotation_lock():
        keyring.reload()
        old_ids = keyring.retiring_ids
        resumed = bool(old_ids)
        if resumed:
            new_id = keyring.active.id
        else:
            old_ids = [keyring.active.id]
            new_id = keyring.begin_rotation()
        report = RotationReport(new_key_id=new_id, old_key_ids=list(old_ids), resumed=resumed)
        vr: VerifyReport | None = None
        for pass_no in range(1, MAX_PASSES + 1):
            report.passes = pass_no
            t0 = time.perf_counter()
            names = sorted(blobs.names())
            for i, name in enumerate(names):
                if progress is not None:
                    progress("rewrap", i + 1, len(names))
                try:
                    if kek_id_of(_head(blobs, name), name=name) == new_id:
                        if pass_no == 1:
                            report.already_current += 1
                        continue
                    blobs.write(name, rewrap(blobs.read(name), keyring, aad=aad_for(name), name=name))
                    report.rewrapped += 1
                except FileNotFoundError:  # deleted since listing
                    pass
                except CryptoError:
                    pass  # verify reports it with its reason
            _sync(blobs)
            report.rewrap_seconds += time.perf_counter() - t0
            vr = verify(keyring, blobs, aad_for=aad_for, progress=progress)
            report.verify_seconds += vr.seconds
            if vr.failures or vr.on_active == vr.verified:
                break
        assert vr is not None
        report.blobs = vr.total
        report.verified = vr.verified
        report.failures = vr.failures
        if vr.failures or vr.on_active != vr.verified:
            report.seconds = time.perf_counter() - start
            if vr.failures:
                why = f"{len(vr.failures)} of {vr.total} blobs do not decrypt: {_describe(vr.failures)}"
            else:
                why = f"{vr.verified - vr.on_active} blobs are still on old keys after {report.passes} passes"
            raise RotationError(
                f"key rotation to {new_id} incomplete; keys {', '.join(old_ids)} are kept (retiring) and the next "
                f"rotation resumes. {why}. Restore, purge or quarantine those blobs, then rotate again.",
                report,
            )
        for old in old_ids:
            keyring.retire(old, save=False)
        keyring.save()
        report.retired = list(old_ids)
        report.completed = True
        report.seconds = time.perf_counter() - start
        return report


def status(keyring: Keyring, blobs: BlobSet, *, now: datetime | None = None) -> StatusReport:
    """Per key: id, state, created_at, age and blob count (headers only; no decryption)."""
    now = now or datetime.now(timezone.utc)
    keyring.refresh()
    counts: dict[str, int] = {}
    unreadable: list[BlobFailure] = []
    names = list(blobs.names())
    for name in names:
        try:
            kid = kek_id_of(_head(blobs, name), name=name)
        except FileNotFoundError:
            continue
        except CryptoError as exc:
            unreadable.append(BlobFailure.of(name, exc))
            continue
        counts[kid] = counts.get(kid, 0) + 1
    keys = [
        KeyStatus(
            id=k.id,
            state=k.state,
            created_at=k.created_at,
            age_seconds=k.age(now),
            blobs=counts.pop(k.id, 0),
            retired_at=k.retired_at,
        )
        for k in keyring.keys()
    ]  # noqa: SIM118
    return StatusReport(
        measured_at=now, keys=keys, total_blobs=len(names), unknown_key_blobs=counts, unreadable=unreadable
    )


def encrypt_plaintext_blobs(keyring: Keyring, blobs: BlobSet, *, aad_for: Callable[[str], bytes] = default_aad) -> int:
    """Seal every blob that is not an envelope yet (migrating a store written before encryption).

    Holds the writer lock; returns how many blobs were sealed. The plaintext originals are
    replaced atomically (on copy-on-write or journaled file systems their old blocks may
    linger on disk until reused).
    """
    sealed = 0
    with keyring.writer_lock():
        for name in sorted(blobs.names()):
            try:
                if is_envelope(_head(blobs, name)):
                    continue
                blobs.write(name, seal(blobs.read(name), keyring, aad=aad_for(name)))
            except FileNotFoundError:
                continue
            sealed += 1
        _sync(blobs)
    return sealed
