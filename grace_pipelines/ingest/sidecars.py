"""Consent sidecars beside dropped media (`NAME.consent.json`): finding one and reading it
without following a link or blocking on a pipe, within its size limit; applying the grants of
one that arrives after its media was registered."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from grace_pipelines.db.records import SourceRow
from grace_pipelines.db.schema import Stage
from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.consent import (
    MAX_SIDECAR_BYTES,
    ConsentError,
    parse_sidecar,
)
from grace_pipelines.governance.consent_records import record_consent
from grace_pipelines.ingest.media import (
    PARTIAL_SUFFIXES,
    SIDECAR_SUFFIX,
    safe_name,
    safe_text,
)
from grace_pipelines.settings import GraceSettings


def nofollow(path: str, flags: int) -> int:
    """`open(..., opener=nofollow)`: never read through a symbolic link (ELOOP instead)."""
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
        raise ConsentError(
            f"consent sidecar {shown!r} is {st.st_size} bytes; a sidecar is at most {MAX_SIDECAR_BYTES} bytes"
        )
    try:
        with open(path, "rb", opener=nofollow) as handle:
            return handle.read(MAX_SIDECAR_BYTES + 1)
    except OSError as exc:
        raise ConsentError(f"consent sidecar {shown!r} cannot be read ({exc.strerror or type(exc).__name__})") from None


def media_row(db: StateDB, media_name: str) -> SourceRow | None:
    """The registered source a sidecar's name points at: the exact title or file name only
    (never a key prefix, which `find_source` also accepts)."""
    title = safe_name(media_name)
    row = db.find_source(title)
    return row if row is not None and title in (row.title, row.filename) else None


def lexists(path: Path) -> bool:
    """Whether anything (a link included, never followed) is at `path`; the same test as
    `ingest.quarantine.lexists`, which imports this module and so cannot be imported here."""
    try:
        os.lstat(path)
        return True
    except OSError:
        return False


def sidecar_consent(sidecar: Path | None, owner: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The participants and (party, scope) grants a drop's sidecar declares (without one: the
    owner alone, no grants); ConsentError if it is unusable."""
    if sidecar is None:
        return [owner], []
    parsed = parse_sidecar(read_sidecar(sidecar), name=safe_name(sidecar.name), owner=owner)
    return parsed.participants, parsed.grants


def apply_sidecar_grants(db: StateDB, key: str, sidecar: Path, grants: list[tuple[str, str]]) -> None:
    """Record each of a sidecar's grants as a consent event of source `key`."""
    for party, scope in grants:
        record_consent(
            db,
            source_key=key,
            party=party,
            scope=scope,
            action="grant",
            method="sidecar",
            actor=f"sidecar:{safe_name(sidecar.name)}",
        )


def policy_grants_missing(db: StateDB, key: str) -> bool:
    """A source left `registered` with no policy event: a kill landed between its registration
    and the policy grants (which then were lost and the source waited for ever). Only for that
    window: a source further along keeps the consent history it has."""
    row = db.get_source(key)
    if row is None or row.stage != Stage.REGISTERED:
        return False
    return not any(r["method"] == "policy" for r in db.consent_rows(source_key=key))


@dataclass(frozen=True)
class SidecarOutcome:
    """What became of a sidecar that arrived alone: its grants applied to source `key`, or
    `refusal` (the reason to quarantine it; `key` then names the source it was for, if any)."""

    key: str | None = None
    refusal: str | None = None


def handle_sidecar_only(
    settings: GraceSettings, db: StateDB, path: Path, st: os.stat_result, now: float, *, orphan_after_s: float
) -> SidecarOutcome | None:
    """A sidecar that arrives after its media was registered: apply its grants, then remove it.
    One with neither media beside it nor a source of that name is refused once it has waited
    `orphan_after_s`. None: nothing to do yet (its media is still coming or not registered)."""
    media_name = path.name[: -len(SIDECAR_SUFFIX)]
    media_path = path.with_name(media_name)
    row = media_row(db, media_name)
    if lexists(media_path) and (row is None or row.inbox_path != str(media_path)):
        return None  # its media is not registered yet: handled together with it
    if row is None:
        if any(lexists(path.with_name(media_name + s)) for s in PARTIAL_SUFFIXES):
            return None  # its media is still downloading
        age = now - st.st_mtime
        if age >= orphan_after_s:
            return SidecarOutcome(
                refusal=(
                    f"{safe_name(path.name)}: orphan consent sidecar: no media file {safe_name(media_name)} beside it "
                    f"for {int(age // 60)} minutes and no source of that name"
                )
            )
        return None  # media not here yet: wait for it
    try:
        parsed = parse_sidecar(read_sidecar(path), name=safe_name(path.name), owner=settings.owner)
        strangers = [party for party, _ in parsed.grants if party not in row.participants]
        if strangers:
            raise ConsentError(
                f"consent sidecar {safe_name(path.name)!r} grants for {safe_text(strangers[0], 60)!r}, "
                f"who is not a participant of {row.title}"
            )
    except ConsentError as exc:
        return SidecarOutcome(key=row.key, refusal=str(exc))
    apply_sidecar_grants(db, row.key, path, parsed.grants)
    path.unlink(missing_ok=True)
    return SidecarOutcome(key=row.key)


def odd_sidecar_reason(path: Path, st: os.stat_result) -> str | None:
    """Why a sidecar that is not a regular file is refused; None when its media is beside it
    (then the media's refusal moves both)."""
    media = path.with_name(path.name[: -len(SIDECAR_SUFFIX)])
    if lexists(media):
        return None  # a link or odd sidecar beside its media: the media's refusal moves both
    what = "a symbolic link; links are never followed" if stat.S_ISLNK(st.st_mode) else "a pipe, socket or device"
    return f"{safe_name(path.name)}: consent sidecar is not a regular file ({what})"
