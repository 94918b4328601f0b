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

import errno
import hashlib
import json
import os
import shutil
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from grace_pipelines.governance.consent import (
    MAX_SIDECAR_BYTES,
    ConsentError,
    parse_sidecar,
    policy_grants,
)
from grace_pipelines.htm.dispatcher import plan
from grace_pipelines.ingest.media import (
    PARTIAL_SUFFIXES,
    SIDECAR_SUFFIX,
    MediaError,
    check_file,
    check_media,
    ignore_reason,
    is_ignorable,
    name_problem,
    probe,
    safe_name,
    safe_text,
)
from grace_pipelines.settings import GraceSettings
from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.schema import utcnow
from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.audit.log import record
from grace_pipelines.governance.consent_records import record_consent

ORIGINS = ("voice_note", "meeting", "document", "screen", "api", "manual", "schedule")
DEFAULT_ORIGIN = {"audio": "voice_note", "video": "screen", "document": "document"}
REEMIT_AFTER_S = 60.0
ORPHAN_SIDECAR_AFTER_S = 600.0  # a sidecar alone this long (no media, no source) is quarantined
MAX_REASON_CHARS = 600


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
    # what happened to each file looked at, by its path (str): `grace ingest` reports them all
    outcomes: dict[str, FileOutcome] = field(default_factory=dict)


@dataclass
class FileOutcome:
    """One inbox file's outcome: new | retry | duplicate | registered (already, by an earlier
    scan or another process) | quarantined | consent_applied."""

    outcome: str
    key: str | None = None
    reason: str = ""


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
    with open(path, "rb", opener=_nofollow) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _nofollow(path: str, flags: int) -> int:
    """`open(..., opener=_nofollow)`: never read through a symbolic link (ELOOP instead)."""
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))


def sidecar_for(path: Path) -> Path | None:
    """`NAME.consent.json` beside `path` if there is one (a link counts: it is refused later).
    None when `NAME` is so long that the sidecar name cannot exist (ENAMETOOLONG)."""
    candidate_name = path.name + SIDECAR_SUFFIX
    if len(os.fsencode(candidate_name)) > 255:
        return None
    candidate = path.with_name(candidate_name)
    try:
        os.lstat(candidate)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return None
        raise
    return candidate


def read_sidecar(path: Path) -> bytes:
    """A sidecar's bytes: a regular file (never through a link), at most MAX_SIDECAR_BYTES."""
    shown = safe_name(path.name)
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise ConsentError(f"consent sidecar {shown!r} cannot be read ({exc.strerror or type(exc).__name__})") from None
    if stat.S_ISLNK(st.st_mode):
        raise ConsentError(f"consent sidecar {shown!r} is a symbolic link; links are never followed")
    if not stat.S_ISREG(st.st_mode):
        raise ConsentError(f"consent sidecar {shown!r} is not a regular file")
    if st.st_size > MAX_SIDECAR_BYTES:
        raise ConsentError(f"consent sidecar {shown!r} is {st.st_size} bytes; a sidecar is at most {MAX_SIDECAR_BYTES} bytes")
    try:
        with open(path, "rb", opener=_nofollow) as handle:
            return handle.read(MAX_SIDECAR_BYTES + 1)
    except OSError as exc:
        raise ConsentError(f"consent sidecar {shown!r} cannot be read ({exc.strerror or type(exc).__name__})") from None


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


def _lexists(path: Path) -> bool:
    try:
        os.lstat(path)
        return True
    except OSError:
        return False


def record_quarantine(db: StateDB, *, filename: str, path: str, reason: str, source_key: str | None) -> None:
    """Log a refused file (and why) in the quarantine table and the audit log."""
    db.record_quarantine(filename=filename, path=path, reason=reason, source_key=source_key)
    record(db, actor="inbox", action="quarantine", subject=filename, details={"reason": reason, "source_key": source_key})


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
    while _lexists(target):
        target = settings.quarantine / f"{stamp}-{n}-{shown}"
        n += 1
    sidecar = None if path.name.endswith(SIDECAR_SUFFIX) else sidecar_for(path)
    shutil.move(str(path), target)
    if sidecar is not None:
        shutil.move(str(sidecar), target.with_name(target.name + SIDECAR_SUFFIX))
    target.with_name(target.name + ".reason.txt").write_text(
        f"file: {shown}\nquarantined_at: {datetime.now(timezone.utc).isoformat()}\n"
        f"reason: {reason}\n",
        encoding="utf-8",
    )
    record_quarantine(db, filename=shown, path=str(target), reason=reason, source_key=key)
    return target


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
        reason = safe_text(f"{reason}; it could not be moved to quarantine ({type(exc).__name__}: {exc})", MAX_REASON_CHARS)
        record_quarantine(db, filename=safe_name(path.name), path=safe_text(str(path), 1000), reason=reason, source_key=key)
    result.quarantined.append((path.name, reason))
    result.outcomes[str(path)] = FileOutcome("quarantined", key, reason)


def _apply_sidecar_grants(db: StateDB, key: str, sidecar: Path, grants: list[tuple[str, str]]) -> None:
    for party, scope in grants:
        record_consent(
            db,
            source_key=key, party=party, scope=scope, action="grant", method="sidecar",
            actor=f"sidecar:{safe_name(sidecar.name)}",
        )


def _media_row(db: StateDB, media_name: str) -> SourceRow | None:
    """The registered source a sidecar's name points at: the exact title or file name only
    (never a key prefix, which `find_source` also accepts)."""
    title = safe_name(media_name)
    row = db.find_source(title)
    return row if row is not None and title in (row.title, row.filename) else None


def _handle_sidecar_only(
    settings: GraceSettings, db: StateDB, path: Path, st: os.stat_result, now: float, result: ScanResult
) -> None:
    """A sidecar that arrives after its media was registered: apply its grants, then file it.
    One with neither media beside it nor a source of that name is quarantined once it has
    waited ORPHAN_SIDECAR_AFTER_S."""
    media_name = path.name[: -len(SIDECAR_SUFFIX)]
    media_path = path.with_name(media_name)
    row = _media_row(db, media_name)
    if _lexists(media_path) and (row is None or row.inbox_path != str(media_path)):
        return  # its media is not registered yet: handled together with it
    if row is None:
        if any(_lexists(path.with_name(media_name + s)) for s in PARTIAL_SUFFIXES):
            return  # its media is still downloading
        age = now - st.st_mtime
        if age >= ORPHAN_SIDECAR_AFTER_S:
            _refuse(settings, db, path, (
                f"{safe_name(path.name)}: orphan consent sidecar: no media file {safe_name(media_name)} beside it "
                f"for {int(age // 60)} minutes and no source of that name"
            ), result)
        return  # media not here yet: wait for it
    try:
        parsed = parse_sidecar(read_sidecar(path), name=safe_name(path.name), owner=settings.owner)
        strangers = [party for party, _ in parsed.grants if party not in row.participants]
        if strangers:
            raise ConsentError(
                f"consent sidecar {safe_name(path.name)!r} grants for {safe_text(strangers[0], 60)!r}, "
                f"who is not a participant of {row.title}"
            )
    except ConsentError as exc:
        _refuse(settings, db, path, str(exc), result, key=row.key)
        return
    _apply_sidecar_grants(db, row.key, path, parsed.grants)
    path.unlink(missing_ok=True)
    result.consent_applied.append((path.name, row.key))
    result.outcomes[str(path)] = FileOutcome("consent_applied", row.key)


def _policy_grants_missing(db: StateDB, key: str) -> bool:
    """A source left `registered` with no policy event: a kill landed between its registration
    and the policy grants (which then were lost and the source waited for ever). Only for that
    window: a source further along keeps the consent history it has."""
    row = db.get_source(key)
    if row is None or row.stage != "registered":
        return False
    return not any(r["method"] == "policy" for r in db.consent_rows(source_key=key))


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
        _refuse(settings, db, path, f"{safe_name(path.name)}: could not be judged ({type(exc).__name__}: {exc})", result)


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
    participants = [settings.owner]
    grants: list[tuple[str, str]] = []
    if sidecar_path is not None:
        try:
            parsed = parse_sidecar(read_sidecar(sidecar_path), name=safe_name(sidecar_path.name), owner=settings.owner)
            participants, grants = parsed.participants, parsed.grants
        except ConsentError as exc:
            _refuse(settings, db, path, f"{shown}: {exc}", result)
            return
    try:
        digest = sha256_file(path)
        size = os.lstat(path).st_size
    except OSError as exc:
        _refuse(settings, db, path, f"{shown}: cannot read file ({exc.strerror or type(exc).__name__})", result)
        return
    key = digest[:16]
    title = shown
    origin = origin_for(settings, path, info.kind)
    drop = Drop(key, path, title, info.kind, origin, size, info.duration_s)
    dropped_at = dropped_at or utcnow()
    created = db.register_source(
        key=key, sha256=digest, filename=title, title=title, kind=info.kind, ext=info.ext,
        origin=origin, size=drop.size, duration_s=info.duration_s, participants=participants,
        inbox_path=str(path), dropped_at=dropped_at,
        **plan(settings, kind=info.kind, size=drop.size, duration_s=info.duration_s, origin=origin, dropped_at=dropped_at),
    )
    if grants and sidecar_path is not None:
        _apply_sidecar_grants(db, key, sidecar_path, grants)
    if created or _policy_grants_missing(db, key):
        for party, scope, rule in policy_grants(
            settings.consent_policy, origin=origin, participants=participants, owner=settings.owner
        ):
            record_consent(
            db,
                source_key=key, party=party, scope=scope, action="grant", method="policy", actor=f"policy:{rule}"
            )
    if sidecar_path is not None:
        sidecar_path.unlink(missing_ok=True)
    if created:
        result.new.append(drop)
        result.outcomes[str(path)] = FileOutcome("new", key)
        return
    existing = db.get_source(key)
    stored = (settings.store / key / "original").is_file()  # the blob store's layout
    if existing is not None and existing.stage == "purged" and not stored:
        # the raw recording was purged: keep this copy; it waits for a new grant
        db.update_source(key, stage="registered", reason=None, inbox_path=str(path), launched_at=None)
        drop.run_key = f"{key}:redrop:{time.time_ns()}"
        result.retry.append(drop)
        result.outcomes[str(path)] = FileOutcome("retry", key)
        return
    if existing is not None and existing.stage == "failed":
        # dropping a failed source again retries it (after a fix of the engine or settings)
        if stored:
            path.unlink(missing_ok=True)
        db.update_source(key, stage="registered", reason=None, inbox_path=None if stored else str(path), launched_at=None)
        drop.run_key = f"{key}:retry:{time.time_ns()}"
        result.retry.append(drop)
        result.outcomes[str(path)] = FileOutcome("retry", key)
        return
    if existing is not None and existing.inbox_path == str(path):
        # registered by an earlier tick (or another process) whose run may not have been
        # requested: re-emit (the run key dedupes), but not while a fresh registration is
        # still starting.
        age = (datetime.now(timezone.utc) - existing.updated_at).total_seconds()
        if existing.stage == "registered" and age >= REEMIT_AFTER_S:
            result.retry.append(drop)
            result.outcomes[str(path)] = FileOutcome("retry", key)
        else:
            result.outcomes[str(path)] = FileOutcome("registered", key)
        return
    # identical bytes already known: one source; drop the copy
    path.unlink(missing_ok=True)
    result.duplicates.append((name, key))
    result.outcomes[str(path)] = FileOutcome("duplicate", key)


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
    state = _Cursor.parse(cursor)
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
                _refuse(settings, db, path, f"{safe_name(path.name)}: could not be judged ({type(exc).__name__}: {exc})", result)
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
        if not _lexists(path):
            continue
        if path.name.endswith(SIDECAR_SUFFIX):
            media = path.with_name(path.name[: -len(SIDECAR_SUFFIX)])
            if _lexists(media):
                continue  # a link or odd sidecar beside its media: the media's refusal moves both
            _refuse(settings, db, path, f"{safe_name(path.name)}: consent sidecar is not a regular file "
                    f"({'a symbolic link; links are never followed' if stat.S_ISLNK(st.st_mode) else 'a pipe, socket or device'})",
                    result)
        else:
            register_file(settings, db, path, result, dropped_at)
        handled += 1
        if not blocked and only is None:
            if ctime_ns > watermark:
                watermark, names = ctime_ns, [spath]
            else:
                names.append(spath)
    result.cursor = _Cursor(watermark, names).dump() if only is None else (cursor or "")
    return result


def _folder(path: Path) -> Path:
    try:
        return Path(path).parent.resolve()
    except OSError:
        return Path(os.path.abspath(Path(path).parent))


def _place(path: Path) -> Path:
    """A path with its folder resolved but its last part kept (a link is not followed)."""
    return Path(path).parent.resolve() / Path(path).name


# ---- `grace ingest`: judge every given path first, then copy the good ones ----------------------
@dataclass
class Intake:
    """One path given to `grace ingest`, judged before anything is copied.

    state: pending (to copy) | dropped (copied to `target`) | refused | ignored | sidecar
    (travels with the media input at index `media`) | same (the same file as input `same_as`)
    | failed (copying it failed: a system failure)."""

    given: str
    path: Path
    name: str  # safe name of its basename: titles and messages
    shown: str  # safe form of the path as given: messages
    state: str = "pending"
    reason: str = ""
    kind: str | None = None  # audio | video | document | sidecar
    sidecar: Path | None = None  # the sidecar beside it that travels with it
    late_for: str | None = None  # a sidecar given alone: the key of the registered source it is for
    inbox_name: str = ""  # the name to give it in the inbox
    target: Path | None = None
    sha256: str | None = None
    media: int | None = None
    same_as: int | None = None

    def refuse(self, reason: str, state: str = "refused") -> None:
        self.state, self.reason = state, safe_text(reason, MAX_REASON_CHARS)


def judge_inputs(settings: GraceSettings, db: StateDB, paths: Sequence[str | Path]) -> list[Intake]:
    """Judge every path given to `grace ingest` before anything is copied: never following a
    link; a directory, a missing path, an unsupported type, an empty or too large file, a
    hidden or temporary name and a broken sidecar are refused or ignored with the reason; the
    same file given twice is copied once; a sidecar given with its media travels with it; one
    given alone applies to a registered source of that name (else it is an orphan, ignored)."""
    items: list[Intake] = []
    inodes: dict[tuple[int, int], int] = {}
    for index, raw in enumerate(paths):
        path = Path(raw)
        item = Intake(
            given=os.fsdecode(raw), path=path, name=safe_name(path.name or os.fsdecode(raw)),
            shown=safe_text(os.fsdecode(raw), 300),
        )
        items.append(item)
        try:
            _judge_input(settings, item, index, inodes)
        except Exception as exc:  # noqa: BLE001 - one path's surprise must not stop the batch
            item.refuse(f"{item.shown}: could not be judged ({type(exc).__name__}: {exc})")
    media_at: dict[tuple[Path, str], int] = {}
    for n, i in enumerate(items):
        if i.kind != "sidecar" and i.state in ("pending", "refused", "ignored"):
            media_at.setdefault((_folder(i.path), i.path.name), n)
    for item in items:
        if item.kind != "sidecar" or item.state != "pending":
            continue
        try:
            _judge_sidecar_input(settings, db, item, media_at, items)
        except SQLAlchemyError:
            raise
        except Exception as exc:  # noqa: BLE001
            item.refuse(f"{item.shown}: could not be judged ({type(exc).__name__}: {exc})")
    return items


def _judge_input(settings: GraceSettings, item: Intake, index: int, inodes: dict[tuple[int, int], int]) -> None:
    try:
        st = check_file(item.path, item.shown)
    except MediaError as exc:
        item.refuse(str(exc))
        return
    if item.path.name.endswith(SIDECAR_SUFFIX) and len(item.path.name) > len(SIDECAR_SUFFIX):
        item.kind = "sidecar"
        return
    problem = name_problem(item.path.name)
    if problem:  # `...md` has no name before its extension: say so, not "hidden" or "type md"
        item.refuse(f"{item.shown}: {problem}")
        return
    ignored = ignore_reason(item.path.name)
    if ignored:
        item.refuse(f"{item.shown}: {ignored}; not ingested (rename it to ingest it)", state="ignored")
        return
    try:
        item.kind = check_media(item.path.name, st.st_size, item.shown, settings.max_file_bytes)
    except MediaError as exc:
        item.refuse(str(exc))
        return
    first = inodes.setdefault((st.st_dev, st.st_ino), index)
    if first != index:
        item.state, item.same_as = "same", first
        return
    try:
        sidecar = sidecar_for(item.path)
    except OSError as exc:
        item.refuse(f"{item.shown}: cannot look for its consent sidecar ({exc.strerror or type(exc).__name__})")
        return
    if sidecar is not None:
        try:
            parse_sidecar(read_sidecar(sidecar), name=safe_name(sidecar.name), owner=settings.owner)
        except ConsentError as exc:
            item.refuse(f"{item.shown}: {exc}")
            return
        item.sidecar = sidecar
    item.inbox_name = item.name


def _judge_sidecar_input(
    settings: GraceSettings, db: StateDB, item: Intake, media_at: dict[tuple[Path, str], int], items: list[Intake]
) -> None:
    media_name = item.path.name[: -len(SIDECAR_SUFFIX)]
    partner = media_at.get((_folder(item.path), media_name))
    if partner is not None:
        item.state, item.media = "sidecar", partner
        return
    row = _media_row(db, media_name)
    if row is None:
        item.refuse(
            f"{item.shown}: orphan consent sidecar: its media {safe_name(media_name)} was not given and no source "
            "has that name (give the media file; its sidecar travels with it)", state="ignored",
        )
        return
    try:
        parsed = parse_sidecar(read_sidecar(item.path), name=item.name, owner=settings.owner)
    except ConsentError as exc:
        item.refuse(f"{item.shown}: {exc}")
        return
    strangers = [party for party, _ in parsed.grants if party not in row.participants]
    if strangers:
        item.refuse(f"{item.shown}: grants for {safe_text(strangers[0], 60)!r}, who is not a participant of {row.title}")
        return
    item.late_for, item.inbox_name = row.key, row.title + SIDECAR_SUFFIX


def inbox_names(name: str) -> list[str]:
    """`notes.md`, then `notes-2.md`, `notes-3.md`, ...: a second input with the same name
    never overwrites the first in the inbox (and its title stays readable)."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    suffix = "." + ext if ext else ""
    return [name] + [f"{stem}-{n}{suffix}" for n in range(2, 1000)]
