"""The plain figures behind the control room's layered views (no Dagster): disk free and store
sizes, failed / held / quarantined sources with their reasons, today's SLA tier events per
origin x size, installed package versions, and markdown tables of them.

The layer assets (grace_pipelines/assets/layers/) are thin adapters over these, so the same
numbers can be computed and tested without a Dagster instance. Everything here returns counts,
bytes, file titles and reasons: never a transcript's or a document's text.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from grace_pipelines.db.schema import Stage
from grace_pipelines.db.state import StateDB
from grace_pipelines.ingest.media import safe_text

SLA_KINDS = ("warning", "violated", "critical", "starved")  # the HTM ledger's event kinds
PACKAGES = ("grace-pipelines", "dagster", "lancedb", "faster-whisper", "onnxruntime", "great-expectations")
NOT_INSTALLED = "not installed"
REASON_CHARS = 200  # a reason in a table cell; the full one is in `grace status`


# ---- disk and stores --------------------------------------------------------------------------
@dataclass(frozen=True)
class Disk:
    path: str  # the folder measured (GRACE_HOME, or its nearest existing parent)
    free: int
    total: int

    @property
    def free_ratio(self) -> float:
        return self.free / self.total if self.total else 0.0


def disk_of(path: Path) -> Disk:
    """Free and total bytes of the file system holding `path` (or its nearest existing parent)."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    return Disk(str(probe), int(usage.free), int(usage.total))


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under `path` (links not followed; a file removed meanwhile is
    skipped); 0 when `path` does not exist."""
    total = 0
    stack = [Path(path)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total


def store_sizes(stores: dict[str, Path]) -> dict[str, int]:
    """Bytes per named store folder or file (e.g. blob_store, lancedb, dagster_home)."""
    sizes = {}
    for name, path in stores.items():
        path = Path(path)
        sizes[name] = path.stat().st_size if path.is_file() else tree_bytes(path)
    return sizes


# ---- sources: failed, held, quarantined ---------------------------------------------------------
HELD = {Stage.AWAITING_CONSENT.value: "awaiting consent", Stage.NO_TEXT_LAYER.value: "no text layer"}


def _reason(text: str | None) -> str:
    return safe_text(text or "-", REASON_CHARS)


def source_health(db: StateDB, latest: int = 10) -> dict[str, Any]:
    """Failed sources (the latest with their reasons), held ones (awaiting consent, no text
    layer: waiting on a person, not broken) and the quarantine log (latest files, reasons)."""
    failed = sorted(db.sources_in_stages([Stage.FAILED]), key=lambda r: r.updated_at, reverse=True)
    held = db.sources_in_stages(list(HELD))
    quarantined = db.list_quarantine()
    return {
        "failed": len(failed),
        "last_failures": [
            {"title": r.title, "source": r.key, "reason": _reason(r.reason), "at": r.updated_at.isoformat()}
            for r in failed[:latest]
        ],
        "held": len(held),
        "held_by_reason": {why: sum(1 for r in held if r.stage == stage) for stage, why in HELD.items()},
        "held_sources": [
            {"title": r.title, "source": r.key, "held": HELD[str(r.stage)], "reason": _reason(r.reason)}
            for r in sorted(held, key=lambda r: r.updated_at, reverse=True)[:latest]
        ],
        "quarantined": len(quarantined),
        "last_quarantined": [
            {
                "file": safe_text(q["filename"], REASON_CHARS),
                "reason": _reason(q["reason"]),
                "at": q["at"].isoformat() if q["at"] else "-",
            }
            for q in reversed(quarantined[-latest:])
        ],
    }


# ---- SLA tiers ----------------------------------------------------------------------------------
def start_of_day(now: datetime, tz: ZoneInfo) -> datetime:
    """Midnight of `now`'s day in `tz` (the person's "today"), as an aware datetime."""
    local = now.astimezone(tz)
    return datetime.combine(local.date(), time(0, 0), tzinfo=tz)


def tier_counts(events: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    """SLA events per (origin, size class): counts of warning, violated, critical, starved."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for event in events:
        pair = (str(event["origin"]), str(event["size_class"]))
        counts = out.setdefault(pair, dict.fromkeys(SLA_KINDS, 0))
        if event["kind"] in counts:
            counts[event["kind"]] += 1
    return dict(sorted(out.items()))


def tier_totals(pairs: dict[tuple[str, str], dict[str, int]]) -> dict[str, int]:
    return {kind: sum(c[kind] for c in pairs.values()) for kind in SLA_KINDS}


# ---- versions -----------------------------------------------------------------------------------
def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Installed versions from the distributions' metadata (nothing heavy is imported)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = NOT_INSTALLED
    return out


# ---- presentation -------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    text = safe_text(str(value), 300)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or "-"


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "none") -> str:
    """A markdown table (cells escaped: a file name with `|` does not break it); `empty` when no row."""
    rows = list(rows)
    if not rows:
        return f"_{empty}_"
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def age_s(then: datetime | float | None, now: datetime) -> float | None:
    """Seconds from `then` (an aware datetime or a POSIX timestamp) to `now`."""
    if then is None:
        return None
    if isinstance(then, (int, float)):
        return round(now.timestamp() - float(then), 1)
    return round((now - then).total_seconds(), 1)
