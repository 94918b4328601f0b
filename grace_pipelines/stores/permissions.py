"""Least privilege on disk: GRACE_HOME 0700, every file in it 0600, whatever the umask.

Under the default umask 022 the libraries Grace builds on create world-readable state:
before this module GRACE_HOME, `lancedb/` and `dagster/` were 0755 and `grace.db`, the
`*.lance` files and Dagster's databases 0644, so any local user could read titles, the
consent ledger, the audit log and the vectors. SQLite, LanceDB and Dagster create their
files with the process umask, so the fix is a process umask of 077 set before any of them
writes (`secure_umask`, called whenever GRACE_HOME is opened), plus `loose_paths` /
`tighten` for what an older version or another tool left (`grace doctor [--repair]`).

No Dagster here.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


def secure_umask() -> None:
    """Make everything this process creates from now on private to its user."""
    current = os.umask(PRIVATE_UMASK)
    os.umask(current | PRIVATE_UMASK)


def loose_paths(home: Path, skip: Iterable[Path] = ()) -> list[tuple[Path, int]]:
    """Files and folders under `home` (itself included) that group or others can reach, with
    their mode. Links are not followed; `skip` folders (the inbox, where people drop their own
    files) are not descended."""
    skipped = {p.resolve() for p in skip}
    found: list[tuple[Path, int]] = []
    if not home.exists():
        return found
    for root, dirs, files in os.walk(home, followlinks=False):
        root_path = Path(root)
        mode = stat.S_IMODE(root_path.lstat().st_mode)
        if mode & 0o077:
            found.append((root_path, mode))
        dirs[:] = [d for d in dirs if (root_path / d).resolve() not in skipped and not (root_path / d).is_symlink()]
        for name in files:
            path = root_path / name
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o077:
                found.append((path, stat.S_IMODE(info.st_mode)))
    return found


def tighten(paths: Iterable[Path]) -> int:
    """chmod folders to 0700 and files to 0600; returns how many were changed."""
    changed = 0
    for path in paths:
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        os.chmod(path, DIR_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE)
        changed += 1
    return changed
