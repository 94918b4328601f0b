"""Quarantine: a file refused on its content is moved aside with a `.reason.txt` beside it, the
refusal logged (quarantine table and audit log), and the other files go on."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.audit.log import record
from grace_pipelines.ingest.media import (
    MAX_REASON_CHARS,
    SIDECAR_SUFFIX,
    safe_name,
    safe_text,
)
from grace_pipelines.ingest.sidecars import lexists, sidecar_for
from grace_pipelines.settings import GraceSettings


def record_quarantine(db: StateDB, *, filename: str, path: str, reason: str, source_key: str | None) -> None:
    """Log a refused file (and why) in the quarantine table and the audit log."""
    db.record_quarantine(filename=filename, path=path, reason=reason, source_key=source_key)
    record(
        db, actor="inbox", action="quarantine", subject=filename, details={"reason": reason, "source_key": source_key}
    )


def quarantine_file(settings: GraceSettings, db: StateDB, path: Path, reason: str, key: str | None = None) -> Path:
    """Move a refused file (and its sidecar) out of the inbox, with a `.reason.txt` beside it.
    A link is moved as a link (never followed); names are made safe (no control characters,
    no leading dashes, short enough for the stamp and suffixes)."""
    reason = safe_text(reason, MAX_REASON_CHARS)
    shown = safe_name(path.name)
    settings.quarantine.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    target = settings.quarantine / f"{stamp}-{shown}"
    n = 1
    while lexists(target):
        target = settings.quarantine / f"{stamp}-{n}-{shown}"
        n += 1
    sidecar = None if path.name.endswith(SIDECAR_SUFFIX) else sidecar_for(path)
    shutil.move(str(path), target)
    if sidecar is not None:
        shutil.move(str(sidecar), target.with_name(target.name + SIDECAR_SUFFIX))
    target.with_name(target.name + ".reason.txt").write_text(
        f"file: {shown}\nquarantined_at: {datetime.now(timezone.utc).isoformat()}\nreason: {reason}\n",
        encoding="utf-8",
    )
    record_quarantine(db, filename=shown, path=str(target), reason=reason, source_key=key)
    return target
