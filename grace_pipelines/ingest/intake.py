"""Judging what a person hands `grace ingest` before anything is copied: each path's name,
type, size and link-ness, its consent sidecar, and the same file given twice; and the free
names it may take in the inbox (`notes.md`, then `notes-2.md`, ...)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.consent import (
    ConsentError,
    parse_sidecar,
)
from grace_pipelines.ingest.media import (
    MAX_REASON_CHARS,
    SIDECAR_SUFFIX,
    MediaError,
    check_file,
    check_media,
    ignore_reason,
    name_problem,
    safe_name,
    safe_text,
)
from grace_pipelines.ingest.sidecars import media_row, read_sidecar, sidecar_for
from grace_pipelines.settings import GraceSettings


def _folder(path: Path) -> Path:
    try:
        return Path(path).parent.resolve()
    except OSError:
        return Path(os.path.abspath(Path(path).parent))


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
            given=os.fsdecode(raw),
            path=path,
            name=safe_name(path.name or os.fsdecode(raw)),
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
    row = media_row(db, media_name)
    if row is None:
        item.refuse(
            f"{item.shown}: orphan consent sidecar: its media {safe_name(media_name)} was not given and no source "
            "has that name (give the media file; its sidecar travels with it)",
            state="ignored",
        )
        return
    try:
        parsed = parse_sidecar(read_sidecar(item.path), name=item.name, owner=settings.owner)
    except ConsentError as exc:
        item.refuse(f"{item.shown}: {exc}")
        return
    strangers = [party for party, _ in parsed.grants if party not in row.participants]
    if strangers:
        item.refuse(
            f"{item.shown}: grants for {safe_text(strangers[0], 60)!r}, who is not a participant of {row.title}"
        )
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
