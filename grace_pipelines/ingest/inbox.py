"""Turn files dropped into the inbox folder into registered sources (or quarantined files).

Used by `inbox_sensor` on every tick and by `grace ingest --wait`, so both paths register a
drop the same way. The source key is the first 16 hex of the sha256 of the bytes; the state
database's primary key makes "same bytes twice = one source" hold even when two scanners race.

The scan is incremental: a cursor (the newest inode change time handled, plus the names at
exactly that time) skips files already seen, so a tick over a large inbox only stats files.
A file is picked up once it has been unchanged for `settle_seconds` (still being written
otherwise); hidden and partial-download names are ignored.

Every file is judged on its own: whatever goes wrong with one (a link, a name too long for its
sidecar, an unreadable file, an unexpected error) quarantines that one with a reason naming it,
and the others go on. `judge_inputs` does the same for the paths given to `grace ingest`,
before anything is copied.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from grace_pipelines.db.schema import Stage, utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.consent import (
    ConsentError,
    policy_grants,
)
from grace_pipelines.governance.consent_records import record_consent
from grace_pipelines.htm.dispatcher import plan
from grace_pipelines.ingest.media import (
    MAX_REASON_CHARS,
    SIDECAR_SUFFIX,
    MediaError,
    is_ignorable,
    probe,
    safe_name,
    safe_text,
)
from grace_pipelines.ingest.quarantine import quarantine_file, record_quarantine
from grace_pipelines.ingest.scan_records import Drop, FileOutcome, ScanCursor, ScanResult
from grace_pipelines.ingest.sidecars import (
    apply_sidecar_grants,
    handle_sidecar_only,
    lexists,
    nofollow,
    odd_sidecar_reason,
    policy_grants_missing,
    sidecar_consent,
    sidecar_for,
)
from grace_pipelines.settings import GraceSettings
from grace_pipelines.stores.blobs import ORIGINAL

ORIGINS = ("voice_note", "meeting", "document", "screen", "api", "manual", "schedule")
DEFAULT_ORIGIN = {"audio": "voice_note", "video": "screen", "document": "document"}
REEMIT_AFTER_S = 60.0
ORPHAN_SIDECAR_AFTER_S = 600.0  # a sidecar alone this long (no media, no source) is quarantined


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", opener=nofollow) as handle:
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
    """Entries in the inbox and its origin folders (one level), with their lstat: regular
    files, and also links, pipes and devices (refused and quarantined, never followed)."""
    found: list[tuple[Path, os.stat_result]] = []
    stack = [(inbox, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if is_ignorable(entry.name):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth == 0:
                        stack.append((Path(entry.path), 1))
                    continue
                found.append((Path(entry.path), entry.stat(follow_symlinks=False)))
            except OSError:
                continue  # gone meanwhile, or not even lstat-able: nothing to move
    return found


def _refuse(
    settings: GraceSettings, db: StateDB, path: Path, reason: str, result: ScanResult, key: str | None = None
) -> None:
    """Quarantine one file and say so in `result`; if even moving it fails, record why (it
    stays where it is and the cursor moves past it). Never raises but for the database."""
    reason = safe_text(reason, MAX_REASON_CHARS)
    try:
        quarantine_file(settings, db, path, reason, key=key)
    except SQLAlchemyError:
        raise
    except Exception as exc:  # noqa: BLE001 - the file stays; the others must go on
        reason = safe_text(
            f"{reason}; it could not be moved to quarantine ({type(exc).__name__}: {exc})", MAX_REASON_CHARS
        )
        record_quarantine(
            db, filename=safe_name(path.name), path=safe_text(str(path), 1000), reason=reason, source_key=key
        )
    result.quarantined.append((path.name, reason))
    result.outcomes[str(path)] = FileOutcome("quarantined", key, reason)


def _handle_sidecar_only(
    settings: GraceSettings, db: StateDB, path: Path, st: os.stat_result, now: float, result: ScanResult
) -> None:
    """Act on what `handle_sidecar_only` decides for a lone sidecar: refuse it, or note its grants applied."""
    outcome = handle_sidecar_only(settings, db, path, st, now, orphan_after_s=ORPHAN_SIDECAR_AFTER_S)
    if outcome is not None and outcome.refusal is not None:
        _refuse(settings, db, path, outcome.refusal, result, key=outcome.key)
    elif outcome is not None:
        result.consent_applied.append((path.name, outcome.key))
        result.outcomes[str(path)] = FileOutcome("consent_applied", outcome.key)


def register_file(
    settings: GraceSettings, db: StateDB, path: Path, result: ScanResult, dropped_at: datetime | None = None
) -> None:
    """Hash, probe and register one settled file; quarantine it with a reason on any refusal.

    Never raises for a problem with this one file (an OSError, a name too long for its sidecar,
    any unexpected error): that file is quarantined with the reason and the scan goes on. Only
    a database failure (a system failure, not the file's fault) propagates."""
    try:
        _register_file(settings, db, path, result, dropped_at)
    except SQLAlchemyError:
        raise
    except Exception as exc:  # noqa: BLE001 - one file's surprise must not stop the inbox
        _refuse(
            settings, db, path, f"{safe_name(path.name)}: could not be judged ({type(exc).__name__}: {exc})", result
        )


def _register_file(
    settings: GraceSettings, db: StateDB, path: Path, result: ScanResult, dropped_at: datetime | None
) -> None:
    name = path.name
    shown = safe_name(name)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        _refuse(settings, db, path, f"{shown}: the file name is not valid UTF-8; rename it", result)
        return
    try:
        info = probe(path, name=shown, max_bytes=settings.max_file_bytes)
    except MediaError as exc:
        _refuse(settings, db, path, str(exc), result)
        return
    except OSError as exc:
        _refuse(settings, db, path, f"{shown}: cannot read file ({exc.strerror or type(exc).__name__})", result)
        return
    sidecar_path = sidecar_for(path)
    try:
        participants, grants = sidecar_consent(sidecar_path, settings.owner)
    except ConsentError as exc:
        _refuse(settings, db, path, f"{shown}: {exc}", result)
        return
    try:
        digest = sha256_file(path)
        st = os.lstat(path)
        size = st.st_size
    except OSError as exc:
        _refuse(settings, db, path, f"{shown}: cannot read file ({exc.strerror or type(exc).__name__})", result)
        return
    key = digest[:16]
    title = shown
    origin = origin_for(settings, path, info.kind)
    drop = Drop(key, path, title, info.kind, origin, size, info.duration_s)
    dropped_at = dropped_at or utcnow()
    # when it was recorded: the container's creation-time tag, else the file's mtime as dropped
    recorded_at = info.recorded_at or datetime.fromtimestamp(st.st_mtime, timezone.utc)
    created = db.register_source(
        key=key,
        sha256=digest,
        filename=title,
        title=title,
        kind=info.kind,
        ext=info.ext,
        origin=origin,
        size=drop.size,
        duration_s=info.duration_s,
        participants=participants,
        inbox_path=str(path),
        dropped_at=dropped_at,
        recorded_at=recorded_at,
        **plan(
            settings, kind=info.kind, size=drop.size, duration_s=info.duration_s, origin=origin, dropped_at=dropped_at
        ),
    )
    _record_grants(settings, db, drop, participants, sidecar_path, grants, created=created)
    if sidecar_path is not None:
        sidecar_path.unlink(missing_ok=True)
    if created:
        result.new.append(drop)
        result.outcomes[str(path)] = FileOutcome("new", key)
        return
    _known_bytes(settings, db, path, drop, result)


def _record_grants(
    settings: GraceSettings,
    db: StateDB,
    drop: Drop,
    participants: list[str],
    sidecar_path: Path | None,
    grants: list[tuple[str, str]],
    *,
    created: bool,
) -> None:
    """Record the sidecar's grants, then the consent policy's (for a new source, or one a kill left without them)."""
    key = drop.key
    if grants and sidecar_path is not None:
        apply_sidecar_grants(db, key, sidecar_path, grants)
    if created or policy_grants_missing(db, key):
        for party, scope, rule in policy_grants(
            settings.consent_policy, origin=drop.origin, participants=participants, owner=settings.owner
        ):
            record_consent(
                db, source_key=key, party=party, scope=scope, action="grant", method="policy", actor=f"policy:{rule}"
            )


def _known_bytes(settings: GraceSettings, db: StateDB, path: Path, drop: Drop, result: ScanResult) -> None:
    """Decide what a drop of bytes already registered is: a retry (purged or failed), a re-emit, or a duplicate."""
    key = drop.key
    existing = db.get_source(key)
    stored = (settings.store / key / ORIGINAL).is_file()  # the blob store's layout
    if existing is not None and existing.stage == Stage.PURGED and not stored:
        # the raw recording was purged: keep this copy; it waits for a new grant
        db.update_source(key, stage=Stage.REGISTERED, reason=None, inbox_path=str(path), launched_at=None)
        drop.run_key = f"{key}:redrop:{time.time_ns()}"
        outcome = "retry"
    elif existing is not None and existing.stage == Stage.FAILED:
        # dropping a failed source again retries it (after a fix of the engine or settings)
        if stored:
            path.unlink(missing_ok=True)
        db.update_source(
            key, stage=Stage.REGISTERED, reason=None, inbox_path=None if stored else str(path), launched_at=None
        )
        drop.run_key = f"{key}:retry:{time.time_ns()}"
        outcome = "retry"
    elif existing is not None and existing.inbox_path == str(path):
        # registered by an earlier tick (or another process) whose run may not have been
        # requested: re-emit (the run key dedupes), but not while a fresh registration is
        # still starting.
        age = (datetime.now(timezone.utc) - existing.updated_at).total_seconds()
        outcome = "retry" if existing.stage == Stage.REGISTERED and age >= REEMIT_AFTER_S else "registered"
    else:
        # identical bytes already known: one source; drop the copy
        path.unlink(missing_ok=True)
        result.duplicates.append((path.name, key))
        outcome = "duplicate"
    if outcome == "retry":
        result.retry.append(drop)
    result.outcomes[str(path)] = FileOutcome(outcome, key)


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
    """One pass over the inbox. `only` restricts to given paths (used by `grace ingest`, which
    must handle every one: no `max_files_per_tick` cap then); `dropped_at` is the registration
    time (default: now; a sensor with an injected clock passes it)."""
    now = time.time() if now is None else now
    settle = settings.settle_seconds if settle_seconds is None else settle_seconds
    state = ScanCursor.parse(cursor)
    result = ScanResult()
    files = _list_inbox(settings.inbox)
    result.seen = len(files)
    if only is not None:
        wanted = {_place(p) for p in only}
        files = [(p, st) for p, st in files if _place(p) in wanted]
    # Sidecars are few and cheap (no hashing): look at every one, every tick.
    for path, st in files:
        if path.name.endswith(SIDECAR_SUFFIX) and stat.S_ISREG(st.st_mode) and now - st.st_mtime >= settle:
            try:
                _handle_sidecar_only(settings, db, path, st, now, result)
            except SQLAlchemyError:
                raise
            except Exception as exc:  # noqa: BLE001 - one sidecar must not stop the inbox
                _refuse(
                    settings,
                    db,
                    path,
                    f"{safe_name(path.name)}: could not be judged ({type(exc).__name__}: {exc})",
                    result,
                )
    done = set(state.names)
    pending = sorted(
        (
            (st.st_ctime_ns, str(p), p, st)
            for p, st in files
            if not (p.name.endswith(SIDECAR_SUFFIX) and stat.S_ISREG(st.st_mode))  # a sidecar link is refused
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
        if only is None and handled >= settings.max_files_per_tick:
            break
        if now - st.st_mtime < settle:
            result.unsettled += 1
            blocked = True  # do not move the watermark past a file still being written
            continue
        if not lexists(path):
            continue
        if path.name.endswith(SIDECAR_SUFFIX):
            reason = odd_sidecar_reason(path, st)
            if reason is None:
                continue  # a link or odd sidecar beside its media: the media's refusal moves both
            _refuse(settings, db, path, reason, result)
        else:
            register_file(settings, db, path, result, dropped_at)
        handled += 1
        if not blocked and only is None:
            if ctime_ns > watermark:
                watermark, names = ctime_ns, [spath]
            else:
                names.append(spath)
    result.cursor = ScanCursor(watermark, names).dump() if only is None else (cursor or "")
    return result


def _place(path: Path) -> Path:
    """A path with its folder resolved but its last part kept (a link is not followed)."""
    return Path(path).parent.resolve() / Path(path).name
