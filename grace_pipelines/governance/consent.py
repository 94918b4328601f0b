"""Consent policy: who must agree to what, and whether they have.

Pure functions over ledger events (no database, no Dagster), so the rule that decides whether
a recording may be transcribed or indexed is testable on its own. The ledger itself is
append-only; the *latest* event per (party, scope) wins, and an expired grant counts as none.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from grace_pipelines.db.records import ConsentEvent

SCOPES: tuple[str, ...] = ("transcribe", "index")
MAX_PARTICIPANTS = 100  # a sidecar naming more is refused (a 60,000-name list is not a meeting)
MAX_GRANTS = 2 * MAX_PARTICIPANTS
MAX_NAME_CHARS = 200
MAX_SIDECAR_BYTES = 256 * 1024
MAX_PROBLEMS_SHOWN = 5


class ConsentError(ValueError):
    """A consent request or sidecar is malformed; the message names the file or value."""


def expand_scope(scope: str) -> tuple[str, ...]:
    """`all` means every scope; anything else must be a known scope."""
    if scope == "all":
        return SCOPES
    if scope not in SCOPES:
        raise ConsentError(f"unknown consent scope {scope!r}; use one of: {', '.join(SCOPES)}, all")
    return (scope,)


def granted_parties(events: Iterable[ConsentEvent], scope: str, now: datetime) -> set[str]:
    """Parties whose latest event for `scope` is an unexpired grant."""
    latest: dict[str, ConsentEvent] = {}
    for event in events:
        if event.scope == scope:
            latest[event.party] = event
    return {
        party
        for party, event in latest.items()
        if event.action == "grant" and (event.expires_at is None or event.expires_at > now)
    }


def refused_parties(events: Iterable[ConsentEvent], scope: str) -> set[str]:
    """Parties whose latest event for `scope` is a revocation: they decided no (a refusal from
    the decisions page is recorded as one), so nothing waits on them."""
    latest: dict[str, ConsentEvent] = {}
    for event in events:
        if event.scope == scope:
            latest[event.party] = event
    return {party for party, event in latest.items() if event.action == "revoke"}


def missing_parties(
    participants: Sequence[str], events: Iterable[ConsentEvent], scope: str, now: datetime
) -> list[str]:
    """Required parties (in participant order) without an effective grant for `scope`."""
    granted = granted_parties(list(events), scope, now)
    return [p for p in participants if p not in granted]


def grant_command(source_key: str, party: str, scope: str) -> str:
    """The command that grants `scope` for `party`, every argument shell-quoted: a party named
    `x; touch PWNED` must arrive as one argument when the printed line is pasted, never run."""
    return shlex.join(["grace", "consent", "grant", source_key, "--party", party, "--scope", scope])


_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def _clock(seconds: float | None) -> str:
    total = int(seconds or 0)
    hours, rest = divmod(total, 3600)
    return (f"{hours}:" if hours else "") + f"{rest // 60:02d}:{rest % 60:02d}"


def voice_holds(participants: Sequence[str], speakers: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """The voices that hold indexing a recording: more distinct voices than its declared
    participants account for. Named voices account for the participant of that name (a named
    voice that is not a participant was made one when it was named or matched, so its own
    grant is asked for like anyone's); the unnamed voices beyond the participants left over,
    in order of first appearance, each hold: "an unnamed third speaker at 00:41-01:10".
    `speakers`: the recording's speakers (label, name, first_s, last_s), as db.source_speakers."""
    declared = {p.casefold() for p in participants}
    named = {s["name"].casefold() for s in speakers if s.get("name")}
    free = len(declared - named)
    unnamed = sorted((s for s in speakers if not s.get("name")), key=lambda s: (s.get("first_s") or 0.0, s["label"]))
    holds = []
    for s in unnamed[free:]:
        n = int(s["label"][1:]) if s["label"][1:].isdigit() else 0
        ordinal = _ORDINALS[n - 1] if 0 < n <= len(_ORDINALS) else f"{n}th"
        when = f"{_clock(s.get('first_s'))}-{_clock(s.get('last_s'))}"
        holds.append({"label": s["label"], "reason": f"an unnamed {ordinal} speaker at {when}"})
    return holds


def name_command(source_key: str, label: str) -> str:
    """The command that names a voice (NAME is the placeholder a person replaces)."""
    return shlex.join(["grace", "speakers", "name", source_key, label]) + " NAME"


def check_name(value: str) -> str:
    """A party's (or a voice's) name: not empty, no control or invisible characters."""
    if not value.strip():
        raise ValueError("a name must not be empty")
    if any(not ch.isprintable() for ch in value):
        raise ValueError("a name must not contain control or invisible characters")
    return value.strip()


class SidecarGrant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    party: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    scopes: list[str] = Field(min_length=1, max_length=len(SCOPES) + 1)

    @field_validator("party")
    @classmethod
    def _printable_party(cls, value: str) -> str:
        return check_name(value)

    @field_validator("scopes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for scope in value:
            out.extend(expand_scope(scope))
        return out


class Sidecar(BaseModel):
    """`NAME.consent.json`: who took part and who agreed to what."""

    model_config = ConfigDict(extra="forbid")
    participants: list[str] | None = Field(None, max_length=MAX_PARTICIPANTS)
    grants: list[SidecarGrant] = Field(default_factory=list, max_length=MAX_GRANTS)

    @field_validator("participants")
    @classmethod
    def _non_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value or any(not p.strip() for p in value):
                raise ValueError("participants must be a non-empty list of names")
            for p in value:
                if len(p) > MAX_NAME_CHARS:
                    raise ValueError(f"a participant name is longer than {MAX_NAME_CHARS} characters")
                check_name(p)
            return list(dict.fromkeys(p.strip() for p in value))
        return value


@dataclass
class ParsedSidecar:
    participants: list[str]
    grants: list[tuple[str, str]] = field(default_factory=list)  # (party, scope)


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def parse_sidecar(raw: bytes, *, name: str, owner: str) -> ParsedSidecar:
    """Parse and validate a sidecar; errors name the file and what is wrong with it, and stay
    short whatever the sidecar holds (at most MAX_PARTICIPANTS names, MAX_SIDECAR_BYTES)."""
    label = repr(_short(name))
    if len(raw) > MAX_SIDECAR_BYTES:
        raise ConsentError(
            f"consent sidecar {label} is {len(raw)} bytes; a sidecar is at most {MAX_SIDECAR_BYTES} bytes"
        )
    try:
        data: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConsentError(f"consent sidecar {label} is not valid JSON: {_short(str(exc))}") from None
    except RecursionError:
        raise ConsentError(f"consent sidecar {label} is not valid JSON: nested too deeply") from None
    if (
        isinstance(data, dict)
        and isinstance(data.get("participants"), list)
        and len(data["participants"]) > MAX_PARTICIPANTS
    ):
        raise ConsentError(
            f"consent sidecar {label} is invalid: participants: {len(data['participants'])} names, "
            f"at most {MAX_PARTICIPANTS} are allowed"
        )
    try:
        sidecar = Sidecar.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(
            f"{_short('.'.join(str(p) for p in e['loc']) or 'file', 60)}: {_short(e['msg'])}"
            for e in errors[:MAX_PROBLEMS_SHOWN]
        )
        if len(errors) > MAX_PROBLEMS_SHOWN:
            problems += f"; and {len(errors) - MAX_PROBLEMS_SHOWN} more problems"
        raise ConsentError(f"consent sidecar {label} is invalid: {problems}") from None
    participants = sidecar.participants or [owner]
    grants = []
    for grant in sidecar.grants:
        if grant.party not in participants:
            shown = ", ".join(_short(p, 40) for p in participants[:10]) + (", ..." if len(participants) > 10 else "")
            raise ConsentError(
                f"consent sidecar {label} grants for {_short(grant.party, 60)!r}, who is not a participant ({shown})"
            )
        grants.extend((grant.party, scope) for scope in grant.scopes)
    return ParsedSidecar(participants=participants, grants=grants)


class PolicyRule(BaseModel):
    """Consent the owner gives once for a kind of recording, instead of per file.

    A rule grants `scopes` on the owner's behalf for sources whose origin is in `origins`
    (and, with `owner_only`, only when the owner is the sole participant). It never grants
    for anyone else: other participants always consent themselves.
    """

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    origins: list[str] = Field(min_length=1)
    scopes: list[str] = Field(default_factory=lambda: list(SCOPES))
    owner_only: bool = True

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for scope in value:
            out.extend(expand_scope(scope))
        return list(dict.fromkeys(out))


def policy_grants(
    rules: Sequence[PolicyRule], *, origin: str, participants: Sequence[str], owner: str
) -> list[tuple[str, str, str]]:
    """(party, scope, rule name) grants the policy makes for a new source."""
    if owner not in participants:
        return []
    grants: list[tuple[str, str, str]] = []
    for rule in rules:
        if origin not in rule.origins:
            continue
        if rule.owner_only and list(participants) != [owner]:
            continue
        grants.extend((owner, scope, rule.name) for scope in rule.scopes)
    return list({(p, s): (p, s, r) for p, s, r in grants}.values())


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_ttl(text: str) -> timedelta:
    """'30d', '12h', '90m', '2w' -> timedelta; a clear error otherwise."""
    match = _DURATION.match(text or "")
    if not match or int(match.group(1)) <= 0:
        raise ConsentError(f"invalid duration {text!r}; use a number and a unit: 90m, 12h, 30d, 2w")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
