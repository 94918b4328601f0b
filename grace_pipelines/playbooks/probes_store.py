"""Probes over what rests on disk: sealed blobs that do not open (named by source title and blob
kind), key age, key file permissions, the key backup reminder, retention (sources past their
origin's age, store size against a budget) and the search index (rows, fragments). No Dagster."""

from __future__ import annotations

import os
import random
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from grace_pipelines.crypto.master_key import MASTER_KEY_FILE
from grace_pipelines.crypto.rotation import verify
from grace_pipelines.db.schema import Stage, audit_table
from grace_pipelines.governance.vault import PREFIX
from grace_pipelines.playbooks.context import PlaybookContext, Reading, probe
from grace_pipelines.stores.blobs import CHUNKS, ORIGINAL, TEXT_KEY, TRANSCRIPT
from grace_pipelines.stores.sealed import sealed_things

BLOB_KINDS = {ORIGINAL: "original", TRANSCRIPT: "transcript", CHUNKS: "chunks", TEXT_KEY: "text key"}
BACKUP_TOPIC = "key_backup"  # the audit subject of a key backup (or of the reminder to make one)


def blob_label(ctx: PlaybookContext, name: str) -> str:
    """A blob as a person knows it: "standup.mp3 (transcript)", "vault secret openai"."""
    if name.startswith(PREFIX):
        return f"vault secret {name[len(PREFIX) :]}"
    key, _, blob = name.partition("/")
    return f"{ctx.title(key)} ({BLOB_KINDS.get(blob, blob)})"


class _Subset:
    """A rotation BlobSet restricted to some names (a sample)."""

    def __init__(self, blobs: Any, names: list[str]) -> None:
        self.blobs, self._names = blobs, names

    def names(self) -> list[str]:
        return list(self._names)

    def read(self, name: str) -> bytes:
        return self.blobs.read(name)

    def write(self, name: str, data: bytes) -> None:  # pragma: no cover - verification never writes
        raise RuntimeError("read-only")


@probe("crypto.unreadable_blobs")
def unreadable_blobs(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Sealed things (blobs and vault values) that do not decrypt: all of them, or a random
    `sample` of that many (0: all)."""
    blobs = sealed_things(ctx.blob_store.root, ctx.db)
    names = list(blobs.names())
    sample = int(params.get("sample", 0))
    if 0 < sample < len(names):
        names = sorted(random.sample(names, sample))
    report = verify(ctx.blob_store.keyring(), _Subset(blobs, names))
    details = [f"{blob_label(ctx, f.name)}: {f.reason}" for f in report.failures]
    return Reading(float(len(report.failures)), details, extra={"checked": float(report.total)})


@probe("crypto.active_key_age_days")
def active_key_age(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Days since the active key-encryption key was made."""
    active = ctx.blob_store.keyring().active
    return Reading(round((ctx.now - active.created_at).total_seconds() / 86400, 6), [f"active key {active.id}"])


def _mode_problem(path: Path, want: int) -> str | None:
    mode = stat.S_IMODE(path.stat().st_mode)
    return None if mode & 0o077 == 0 else f"{path.name} is {mode:04o} (want {want:04o}: readable by others)"


@probe("crypto.key_permissions_ok")
def key_permissions(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """1 when the keys folder is private (0700) and the master key file (when the key comes from
    a file, not GRACE_MASTER_KEY) is 0600; else 0, naming what is open."""
    keys_dir = Path(ctx.settings.keys_dir)
    problems = []
    if keys_dir.is_dir():
        problems.append(_mode_problem(keys_dir, 0o700))
        master = keys_dir / MASTER_KEY_FILE
        if master.is_file():
            problems.append(_mode_problem(master, 0o600))
    found = [p for p in problems if p]
    return Reading(0.0 if found else 1.0, found)


@probe("crypto.backup_reminder_age_days")
def backup_age(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Days since the last key backup (or reminder to make one) in the audit log; with none, since
    the keys were made."""
    c = audit_table.c
    query = sa.select(sa.func.max(c.at)).where(c.subject == BACKUP_TOPIC)
    with ctx.db.begin() as conn:
        last = conn.execute(query).scalar()
    if last is not None and last.tzinfo is None:  # SQLite's max() comes back as naive text
        last = last.replace(tzinfo=ctx.now.tzinfo)
    if last is None:
        last = min(k.created_at for k in ctx.blob_store.keyring().keys())
        why = "no backup recorded since the keys were made"
    else:
        why = f"last backup or reminder {last:%Y-%m-%d} UTC"
    return Reading(round((ctx.now - last).total_seconds() / 86400, 3), [why])


# ---- retention -------------------------------------------------------------------------------------
def age_limits(params: dict[str, Any]) -> tuple[float, dict[str, float]]:
    """(`days`, `days_by_origin`): the default age limit and the per-origin ones."""
    return float(params.get("days", 3650)), {k: float(v) for k, v in (params.get("days_by_origin") or {}).items()}


def old_sources(ctx: PlaybookContext, params: dict[str, Any]) -> list[Any]:
    """Sources not purged yet and older than their origin's limit, oldest first."""
    default, by_origin = age_limits(params)
    out = []
    for row in ctx.db.list_sources():
        if row.stage in (Stage.PURGED, Stage.PURGING):
            continue
        if ctx.now - row.dropped_at > timedelta(days=by_origin.get(row.origin, default)):
            out.append(row)
    return out


@probe("retention.sources_older_than")
def sources_older_than(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Per origin: sources older than `days_by_origin[origin]` (else `days`, default 3650)."""
    rows = old_sources(ctx, params)
    counts: dict[str, float] = {}
    for row in rows:
        counts[row.origin] = counts.get(row.origin, 0.0) + 1
    details = [f"{r.title} ({r.origin}): {(ctx.now - r.dropped_at).days} days old" for r in rows]
    return Reading(counts or 0.0, details)


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def store_bytes(ctx: PlaybookContext) -> tuple[int, int]:
    return folder_bytes(Path(ctx.settings.store)), folder_bytes(Path(ctx.settings.lancedb))


@probe("retention.store_bytes")
def store_size(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Bytes on disk of the blob store plus the LanceDB folder."""
    blobs, index = store_bytes(ctx)
    return Reading(
        float(blobs + index),
        [f"blob store {blobs:,} bytes, index {index:,} bytes"],
        extra={"blob_bytes": float(blobs), "index_bytes": float(index)},
    )


# ---- search index ------------------------------------------------------------------------------------
def _table(ctx: PlaybookContext) -> Any | None:
    return ctx.chunk_index.table() if ctx.chunk_index is not None else None


@probe("index.rows")
def index_rows(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Rows of the current model's chunks table."""
    table = _table(ctx)
    return Reading(float(table.count_rows()) if table is not None else 0.0)


@probe("index.fragments")
def index_fragments(ctx: PlaybookContext, params: dict[str, Any]) -> Reading:
    """Data fragments of the chunks table (each upsert adds small ones; compaction folds them)."""
    table = _table(ctx)
    if table is None:
        return Reading(0.0)
    stats = table.stats()
    fragments = getattr(stats, "fragment_stats", None)
    count = getattr(fragments, "num_fragments", None)
    if count is None and isinstance(stats, dict):
        count = stats.get("fragment_stats", {}).get("num_fragments")
    return Reading(float(count or 0), extra={"versions": float(len(table.list_versions()))})
