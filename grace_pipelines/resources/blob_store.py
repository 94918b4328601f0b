"""Blobs per source under GRACE_HOME/store/{source_key}/: the original media, transcript, chunks.

Writes are atomic (temp file in the same folder, fsync, rename), so a crash never leaves a
half-written blob under its final name. Readers get bytes in memory. Encryption at rest
(issue 3) plugs in here, below every caller.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

_KEY_RE = re.compile(r"^[0-9a-f]{16}$")
_NAME_RE = re.compile(r"^[a-z0-9_.-]{1,64}$")


class BlobError(RuntimeError):
    """A blob is missing or unreadable; the message names it."""


class BlobStore(dg.ConfigurableResource):
    """A folder of per-source blobs (local by default)."""

    root: str = Field(description="Folder holding one subfolder per source key")

    def _path(self, key: str, name: str) -> Path:
        if not _KEY_RE.match(key):
            raise BlobError(f"invalid source key {key!r}")
        if not _NAME_RE.match(name) or name.startswith("."):
            raise BlobError(f"invalid blob name {name!r}")
        return Path(self.root) / key / name

    def exists(self, key: str, name: str) -> bool:
        return self._path(key, name).is_file()

    def put_bytes(self, key: str, name: str, data: bytes) -> int:
        path = self._path(key, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return len(data)

    def get_bytes(self, key: str, name: str) -> bytes:
        path = self._path(key, name)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise BlobError(f"blob {key}/{name} is missing from the store") from None

    def put_json(self, key: str, name: str, value: Any) -> int:
        return self.put_bytes(key, name, json.dumps(value, ensure_ascii=False).encode("utf-8"))

    def get_json(self, key: str, name: str) -> Any:
        try:
            return json.loads(self.get_bytes(key, name))
        except json.JSONDecodeError as exc:
            raise BlobError(f"blob {key}/{name} is not valid JSON: {exc}") from None

    def list(self, key: str) -> list[str]:
        folder = self._path(key, "x").parent
        return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")) if folder.is_dir() else []

    def delete(self, key: str, name: str) -> int:
        path = self._path(key, name)
        size = path.stat().st_size if path.exists() else 0
        path.unlink(missing_ok=True)
        return size

    def delete_source(self, key: str) -> int:
        folder = self._path(key, "x").parent
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0
        shutil.rmtree(folder, ignore_errors=True)
        return size
