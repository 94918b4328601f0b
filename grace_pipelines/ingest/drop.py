"""Dropping files into the inbox for a person (`grace ingest`, the Python API): judge every
path first (name, type, size, link-ness: nothing refused is copied), then copy the good ones
and their `NAME.consent.json` sidecars into the inbox atomically, never over another file and
never through a link. The inbox sensor (or `--wait`) takes it from there."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from grace_pipelines.db.state import StateDB
from grace_pipelines.errors import SYSTEM_FAILURE, GraceError
from grace_pipelines.governance.consent import MAX_SIDECAR_BYTES
from grace_pipelines.ingest.inbox import ORIGINS
from grace_pipelines.ingest.intake import Intake, inbox_names, judge_inputs
from grace_pipelines.ingest.media import (
    SIDECAR_SUFFIX,
    MediaError,
    safe_name,
    safe_text,
)
from grace_pipelines.settings import GraceSettings


def drop_files(
    settings: GraceSettings, db: StateDB, paths: Sequence[str | Path], origin: str | None = None
) -> list[Intake]:
    """Judge every path first (name, type, size, link-ness: nothing refused is copied), then
    copy the good ones (and any `NAME.consent.json` beside them) into the inbox, atomically
    and never over another file (a second `notes.md` becomes `notes-2.md`).

    One `Intake` per path, in order: `dropped` (with its `target` in the inbox), `refused`
    or `ignored` (with the reason; the user still has the file), `sidecar` (travels with
    the media given beside it), `same` (the same file given twice) or `failed` (copying
    into the inbox failed: a system failure)."""
    if origin is not None and origin not in ORIGINS:
        raise GraceError(f"unknown origin {origin!r}; use one of: {', '.join(ORIGINS)}")
    folder = settings.inbox / origin if origin else settings.inbox
    folder.mkdir(parents=True, exist_ok=True)
    items = judge_inputs(settings, db, paths)
    for item in items:
        if item.state == "pending":
            _drop_one(item, folder, settings.max_file_bytes)
    return items


def _drop_one(item: Intake, folder: Path, max_bytes: int) -> None:
    """Copy one judged path into `folder`; its state says how it went."""
    try:
        if item.late_for is not None:  # a sidecar for a source registered earlier
            target = folder / item.inbox_name
            item.sha256 = atomic_copy(item.path, target, max_bytes=MAX_SIDECAR_BYTES)
            item.state, item.target = "dropped", target
            return
        for name in inbox_names(item.inbox_name):
            if _place_under(item, folder, name, max_bytes):
                return
        item.refuse(f"{item.shown}: no free name for it in the inbox")
    except FileExistsError:
        item.refuse(f"{item.shown}: a consent sidecar of that name is already waiting in the inbox")
    except MediaError as exc:
        item.refuse(str(exc))
    except OSError as exc:
        item.state = "failed"
        item.reason = safe_text(
            f"{SYSTEM_FAILURE}: could not copy {item.shown} into the inbox ({exc.strerror or type(exc).__name__})"
        )


def _place_under(item: Intake, folder: Path, name: str, max_bytes: int) -> bool:
    """Copy `item` (its sidecar first, so the media never shows up without it) to `folder/name`;
    False when that name is taken (already, or by another process meanwhile)."""
    target = folder / name
    beside = folder / (name + SIDECAR_SUFFIX)
    if os.path.lexists(target) or (item.sidecar is not None and os.path.lexists(beside)):
        return False
    placed: list[Path] = []

    def place_sidecar() -> None:
        if item.sidecar is not None:
            atomic_copy(item.sidecar, beside, max_bytes=MAX_SIDECAR_BYTES)
            placed.append(beside)

    try:
        item.sha256 = atomic_copy(item.path, target, max_bytes=max_bytes, before_place=place_sidecar)
    except BaseException as exc:
        for extra in placed:
            extra.unlink(missing_ok=True)
        if isinstance(exc, FileExistsError):
            return False  # another process took this name meanwhile: the next one
        raise
    item.state, item.target = "dropped", target
    return True


def atomic_copy(
    src: Path, dst: Path, *, max_bytes: int | None = None, before_place: Callable[[], None] | None = None
) -> str:
    """Copy `src` to `dst` through a hidden temp file in the same folder (`.grace-*.<pid>.part`:
    recovery removes it if this process dies) and return the sha256 of the bytes copied.

    Never reads through a link (O_NOFOLLOW) or blocks on a pipe, never replaces an existing
    `dst` (FileExistsError), stops past `max_bytes` (a file still growing). `before_place` runs
    once the copy is complete, just before `dst` appears. Reading errors are MediaError (the
    input's fault, naming it); writing errors stay OSError (a system failure)."""
    shown = safe_name(src.name)
    try:
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise MediaError(f"{shown}: is a symbolic link; links are never followed (give the file itself)") from None
        raise MediaError(f"{shown}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    tmp = dst.with_name(f".grace-{os.urandom(4).hex()}.{os.getpid()}.part")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "rb") as reader:
            st = os.fstat(reader.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise MediaError(f"{shown}: not a regular file")
            if max_bytes is not None and st.st_size > max_bytes:
                raise MediaError(f"{shown}: file is {st.st_size} bytes, above the limit of {max_bytes} bytes")
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as writer:
                copied = 0
                while True:
                    try:
                        block = reader.read(1 << 20)
                    except OSError as exc:
                        raise MediaError(f"{shown}: cannot read it ({exc.strerror or type(exc).__name__})") from None
                    if not block:
                        break
                    copied += len(block)
                    if max_bytes is not None and copied > max_bytes:
                        raise MediaError(f"{shown}: grew above the limit of {max_bytes} bytes while being copied")
                    digest.update(block)
                    writer.write(block)
        # keep the file's own modification time: it is when a recording without a creation-time
        # tag was made (sources.recorded_at); the inbox scan's cursor reads the change time, not this
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        if before_place is not None:
            before_place()
        try:
            os.link(tmp, dst)  # atomic and never over an existing file
        except FileExistsError:
            raise
        except OSError as exc:  # a file system without hard links
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            if os.path.lexists(dst):
                raise FileExistsError(errno.EEXIST, "already exists", str(dst)) from None
            os.replace(tmp, dst)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return digest.hexdigest()
