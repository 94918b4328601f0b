"""Durable, atomic file writes for key material and sealed blobs, and finding the temporary
files a killed writer left: a temp name carries the writer's pid (`.tmp-<pid>-...`), so a
recovery can tell a live writer's file from a dead one's (no Dagster)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def sync_folder(folder: Path) -> None:
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
        return stat[stat.rindex(")") + 2 :].split()[0] not in ("Z", "X")
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
        pid_text = tmp.name[len(TEMP_PREFIX) :].split("-", 1)[0]
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
        sync_folder(path.parent)
