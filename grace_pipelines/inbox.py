"""Turn files dropped into the inbox folder into registered sources (or quarantined files).

Used by `inbox_sensor` on every tick and by `grace ingest --wait`, so both paths register a
drop the same way. The source key is the first 16 hex of the sha256 of the bytes; the state
database's primary key makes "same bytes twice = one source" hold even when two scanners race.

The scan is incremental: a cursor (the newest inode change time handled, plus the names at
exactly that time) skips files already seen, so a tick over a large inbox only stats files.
A file is picked up once it has been unchanged for `settle_seconds` (still being written
otherwise); hidden and partial-download names are ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from grace_pipelines.consent import ConsentError, parse_sidecar, policy_grants
from grace_pipelines.media import (
    SIDECAR_SUFFIX,
    MediaError,
    is_ignorable,
    probe,
    safe_name,
)
from grace_pipelines.dispatcher import plan
from grace_pipelines.settings import GraceSettings
from grace_pipelines.state import StateDB, utcnow

ORIGINS = ("voice_note", "meeting", "document", "screen", "api", "manual", "schedule")
DEFAULT_ORIGIN = {"audio": "voice_note", "video": "screen", "document": "document"}
REEMIT_AFTER_S = 60.0


@dataclass
class Drop:
    """A newly registered source, ready for a run."""

    key: str
    path: Path
    title: str
    kind: str
    origin: str
    size: int
    duration_s: float | None
    run_key: str = ""  # defaults to the key: a source's first run is requested once

    def __post_init__(self) -> None:
        self.run_key = self.run_key or self.key


@dataclass
class ScanResult:
    new: list[Drop] = field(default_factory=list)
    retry: list[Drop] = field(default_factory=list)  # registered earlier, run request re-emitted
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (file, existing key)
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    consent_applied: list[tuple[str, str]] = field(default_factory=list)  # (sidecar, key)
    unsettled: int = 0
    seen: int = 0
    cursor: str = ""


@dataclass
class _Cursor:
    ctime_ns: int = 0
    names: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: str | None) -> _Cursor:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(int(data.get("ctime_ns", 0)), list(data.get("names", [])))
        except (ValueError, TypeError, AttributeError):
            return cls()

    def dump(self) -> str:
        return json.dumps({"ctime_ns": self.ctime_ns, "names": self.names})


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def origin_for(settings: GraceSettings, path: Path, kind: str) -> str:
    """The first folder under the inbox names the origin (`inbox/meeting/x.m4a`)."""
    try:
        rel = path.relative_to(settings.inbox)
    except ValueError:
        return DEFAULT_ORIGIN.get(kind, "manual")
    if len(rel.parts) > 1 and rel.parts[0] in ORIGINS:
        return rel.parts[0]
    return DEFAULT_ORIGIN.get(kind, "manual")


def _list_inbox(inbox: Path) -> list[tuple[Path, os.stat_result]]:
    """Files in the inbox and its origin folders (one level), with their stat."""
    found: list[tuple[Path, os.stat_result]] = []
    stack = [(inbox, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            if is_ignorable(entry.name):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth == 0:
                        stack.append((Path(entry.path), 1))
                elif entry.is_file(follow_symlinks=False):
                    found.append((Path(entry.path), entry.stat(follow_symlinks=False)))
            except FileNotFoundError:
                continue
    return found


def quarantine_file(settings: GraceSettings, db: StateDB, path: Path, reason: str, key: str | None = None) -> Path:
    """Move a refused file (and its sidecar) out of the inbox, with a `.reason.txt` beside it."""
    settings.quarantine.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    target = settings.quarantine / f"{stamp}-{safe_name(path.name)}"
    n = 1
    while target.exists():
        target = settings.quarantine / f"{stamp}-{n}-{safe_name(path.name)}"
        n += 1
    shutil.move(str(path), target)
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if sidecar.exists():
        shutil.move(str(sidecar), target.with_name(target.name + SIDECAR_SUFFIX))
    target.with_name(target.name + ".reason.txt").write_text(
        f"file: {safe_name(path.name)}\nquarantined_at: {datetime.now(timezone.utc).isoformat()}\n"
        f"reason: {reason}\n",
        encoding="utf-8",
    )
    db.record_quarantine(filename=safe_name(path.name), path=str(target), reason=reason, source_key=key)
    return target


def _apply_sidecar_grants(db: StateDB, key: str, sidecar: Path, grants: list[tuple[str, str]]) -> None:
    for party, scope in grants:
        db.record_consent(
            source_key=key, party=party, scope=scope, action="grant", method="sidecar",
            actor=f"sidecar:{safe_name(sidecar.name)}",
        )


def _handle_sidecar_only(settings: GraceSettings, db: StateDB, path: Path, result: ScanResult) -> None:
    """A sidecar that arrives after its media was registered: apply its grants, then file it."""
    media_name = path.name[: -len(SIDECAR_SUFFIX)]
    media_path = path.with_name(media_name)
    row = db.find_source(safe_name(media_name))
    if media_path.exists() and (row is None or row.inbox_path != str(media_path)):
        return  # its media is not registered yet: handled together with it
    if row is None:
        return  # media not here yet: wait for it
    try:
        parsed = parse_sidecar(path.read_bytes(), name=path.name, owner=settings.owner)
    except ConsentError as exc:
        quarantine_file(settings, db, path, str(exc), key=row.key)
        result.quarantined.append((path.name, str(exc)))
        return
    _apply_sidecar_grants(db, row.key, path, parsed.grants)
    path.unlink(missing_ok=True)
    result.consent_applied.append((path.name, row.key))


def register_file(
    settings: GraceSettings, db: StateDB, path: Path, result: ScanResult, dropped_at: datetime | None = None
) -> None:
    """Hash, probe and register one settled file; quarantine it with a reason on any refusal."""
    name = path.name
    try:
        info = probe(path, name=safe_name(name), max_bytes=settings.max_file_bytes)
    except MediaError as exc:
        quarantine_file(settings, db, path, str(exc))
        result.quarantined.append((name, str(exc)))
        return
    except OSError as exc:
        reason = f"{safe_name(name)}: cannot read file ({exc.strerror or type(exc).__name__})"
        quarantine_file(settings, db, path, reason)
        result.quarantined.append((name, reason))
        return
    sidecar_path = path.with_name(name + SIDECAR_SUFFIX)
    participants = [settings.owner]
    grants: list[tuple[str, str]] = []
    if sidecar_path.exists():
        try:
            parsed = parse_sidecar(sidecar_path.read_bytes(), name=sidecar_path.name, owner=settings.owner)
            participants, grants = parsed.participants, parsed.grants
        except ConsentError as exc:
            reason = f"{safe_name(name)}: {exc}"
            quarantine_file(settings, db, path, reason)
            result.quarantined.append((name, reason))
            return
    digest = sha256_file(path)
    key = digest[:16]
    title = safe_name(name)
    origin = origin_for(settings, path, info.kind)
    drop = Drop(key, path, title, info.kind, origin, path.stat().st_size, info.duration_s)
    dropped_at = dropped_at or utcnow()
    created = db.register_source(
        key=key, sha256=digest, filename=title, title=title, kind=info.kind, ext=info.ext,
        origin=origin, size=drop.size, duration_s=info.duration_s, participants=participants,
        inbox_path=str(path), dropped_at=dropped_at,
        **plan(settings, kind=info.kind, size=drop.size, duration_s=info.duration_s, origin=origin, dropped_at=dropped_at),
    )
    if grants:
        _apply_sidecar_grants(db, key, sidecar_path, grants)
    if created:
        for party, scope, rule in policy_grants(
            settings.consent_policy, origin=origin, participants=participants, owner=settings.owner
        ):
            db.record_consent(
                source_key=key, party=party, scope=scope, action="grant", method="policy", actor=f"policy:{rule}"
            )
    if sidecar_path.exists():
        sidecar_path.unlink(missing_ok=True)
    if created:
        result.new.append(drop)
        return
    existing = db.get_source(key)
    stored = (settings.store / key / "original").is_file()  # the blob store's layout
    if existing is not None and existing.stage == "purged" and not stored:
        # the raw recording was purged: keep this copy; it waits for a new grant
        db.update_source(key, stage="registered", reason=None, inbox_path=str(path), launched_at=None)
        drop.run_key = f"{key}:redrop:{time.time_ns()}"
        result.retry.append(drop)
        return
    if existing is not None and existing.stage == "failed":
        # dropping a failed source again retries it (after a fix of the engine or settings)
        if stored:
            path.unlink(missing_ok=True)
        db.update_source(key, stage="registered", reason=None, inbox_path=None if stored else str(path), launched_at=None)
        drop.run_key = f"{key}:retry:{time.time_ns()}"
        result.retry.append(drop)
        return
    if existing is not None and existing.inbox_path == str(path):
        # registered by an earlier tick whose run may not have been requested: re-emit
        # (the run key dedupes), but not while a fresh registration is still starting.
        age = (datetime.now(timezone.utc) - existing.updated_at).total_seconds()
        if existing.stage == "registered" and age >= REEMIT_AFTER_S:
            result.retry.append(drop)
        return
    # identical bytes already known: one source; drop the copy
    path.unlink(missing_ok=True)
    result.duplicates.append((name, key))


def scan_inbox(
    settings: GraceSettings,
    db: StateDB,
    cursor: str | None = None,
    *,
    now: float | None = None,
    only: set[Path] | None = None,
    settle_seconds: float | None = None,
    dropped_at: datetime | None = None,
) -> ScanResult:
    """One pass over the inbox. `only` restricts to given paths (used by `grace ingest`);
    `dropped_at` is the registration time (default: now; a sensor with an injected clock passes it)."""
    now = time.time() if now is None else now
    settle = settings.settle_seconds if settle_seconds is None else settle_seconds
    state = _Cursor.parse(cursor)
    result = ScanResult()
    files = _list_inbox(settings.inbox)
    result.seen = len(files)
    if only is not None:
        wanted = {p.resolve() for p in only}
        files = [(p, st) for p, st in files if p.resolve() in wanted]
    # Sidecars are few and cheap (no hashing): look at every one, every tick.
    for path, st in files:
        if path.name.endswith(SIDECAR_SUFFIX) and now - st.st_mtime >= settle:
            _handle_sidecar_only(settings, db, path, result)
    done = set(state.names)
    pending = sorted(
        (
            (st.st_ctime_ns, str(p), p, st)
            for p, st in files
            if not p.name.endswith(SIDECAR_SUFFIX)
            and (
                only is not None
                or st.st_ctime_ns > state.ctime_ns
                or (st.st_ctime_ns == state.ctime_ns and str(p) not in done)
            )
        ),
        key=lambda item: (item[0], item[1]),
    )
    watermark, names = state.ctime_ns, list(state.names)
    blocked = False
    handled = 0
    for ctime_ns, spath, path, st in pending:
        if handled >= settings.max_files_per_tick:
            break
        if now - st.st_mtime < settle:
            result.unsettled += 1
            blocked = True  # do not move the watermark past a file still being written
            continue
        if not path.exists():
            continue
        register_file(settings, db, path, result, dropped_at)
        handled += 1
        if not blocked and only is None:
            if ctime_ns > watermark:
                watermark, names = ctime_ns, [spath]
            else:
                names.append(spath)
    result.cursor = _Cursor(watermark, names).dump() if only is None else (cursor or "")
    return result
