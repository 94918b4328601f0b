"""What a playbook file may say, as pydantic models: a name, a description, a trigger (a cron
schedule in a time zone, or "after asset X materializes"), the assets to materialize first, the
checks with their thresholds and the actions to take.

Strict on purpose (`extra="forbid"`, known metrics and actions only, cron and time zone checked
here): a typo in a YAML file must be an error naming the file, the line and the field when the
file is loaded (loading.py), never a playbook that silently does nothing at 03:00. No Dagster.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from grace_pipelines.settings import known_zone

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
ASSET_RE = re.compile(r"^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$")
WHEN_KEYWORDS = ("breach", "always")
# minute, hour, day of month, month, day of week (0 and 7 are Sunday)
CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_CRON_TOKEN = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?$")


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a five-field cron schedule (numbers, `*`, ranges, steps, lists), or None."""
    fields = expression.split()
    if len(fields) != 5:
        return f"a cron schedule has 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
    for text, (what, low, high) in zip(fields, CRON_FIELDS):
        for token in text.split(","):
            if not _CRON_TOKEN.match(token):
                return f"{what} field {text!r}: use numbers, '*', ranges (1-5), steps (*/15) and lists (1,3)"
            head, _, step = token.partition("/")
            if step and int(step) == 0:
                return f"{what} field {text!r}: a step of 0"
            if head != "*":
                bounds = [int(n) for n in head.split("-")]
                if any(n < low or n > high for n in bounds) or bounds != sorted(bounds):
                    return f"{what} field {text!r}: values must be {low}-{high}, ranges low-high"
    return None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(Strict):
    """When the playbook runs: `cron` (+ `timezone`, default UTC) or `after_asset`."""

    cron: str | None = None
    timezone: str = "UTC"
    after_asset: str | None = None

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and (problem := cron_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    @field_validator("after_asset")
    @classmethod
    def _asset_key(cls, value: str | None) -> str | None:
        if value is not None and not ASSET_RE.match(value):
            raise ValueError(f"{value!r} is not an asset key (letters, digits, '_', parts joined by '/')")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        if (self.cron is None) == (self.after_asset is None):
            raise ValueError("a trigger needs exactly one of `cron` (with `timezone`) or `after_asset`")
        return self


def _known(kind: str, value: str, registry: dict[str, Any]) -> str:
    if value not in registry:
        raise ValueError(f"unknown {kind} {value!r}; known: {', '.join(sorted(registry))}")
    return value


class Check(Strict):
    """One threshold on one metric (a probe): it passes when every value it reports is within
    `min` / `max` (inclusive) and equals `equals`, if given."""

    name: str
    metric: str
    min: float | None = None
    max: float | None = None
    equals: float | None = None
    severity: Literal["warn", "error"] = "error"
    params: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"{value!r}: lower-case letters, digits and '_', starting with a letter")
        return value

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        from grace_pipelines.playbooks.probes import PROBES

        return _known("metric", value, PROBES)

    @field_validator("min", "max", "equals")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @model_validator(mode="after")
    def _a_threshold(self) -> Check:
        if self.min is None and self.max is None and self.equals is None:
            raise ValueError(f"check {self.name!r} needs a threshold: `min`, `max` or `equals`")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"check {self.name!r}: min ({self.min:g}) is above max ({self.max:g})")
        return self

    def threshold(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.equals is not None:
            parts.append(f"== {self.equals:g}")
        return " and ".join(parts)

    def passes(self, value: float) -> bool:
        return (
            (self.min is None or value >= self.min)
            and (self.max is None or value <= self.max)
            and (self.equals is None or value == self.equals)
        )


class Action(Strict):
    """What to do: `do` one registered action, `when` a check breached ("breach": any of them),
    "always", or the name of one check."""

    do: str
    when: str = "breach"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("do")
    @classmethod
    def _action(cls, value: str) -> str:
        from grace_pipelines.playbooks.actions import ACTIONS

        return _known("action", value, ACTIONS)


class Playbook(Strict):
    """One playbook file. A problem only the whole file shows starts its message with the
    location it is about ("actions.0.when: ..."), which loading.py turns into the line."""

    name: str
    description: str = Field(min_length=10)
    trigger: Trigger
    enabled: bool = True  # false: its schedule or sensor starts stopped (the asset and job still exist)
    materialize: list[str] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    _source: str = PrivateAttr("")  # the file it came from (as errors name it)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"{value!r}: lower-case letters, digits and '_', starting with a letter (max 63)")
        return value

    @field_validator("materialize")
    @classmethod
    def _assets(cls, value: list[str]) -> list[str]:
        for key in value:
            if not ASSET_RE.match(key):
                raise ValueError(f"{key!r} is not an asset key (letters, digits, '_', parts joined by '/')")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Playbook:
        names = [c.name for c in self.checks]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValueError(f"checks.{i}.name: check name {name!r} is used twice in this playbook")
        for i, action in enumerate(self.actions):
            if action.when not in WHEN_KEYWORDS and action.when not in names:
                raise ValueError(
                    f"actions.{i}.when: {action.when!r} is neither 'breach', 'always' nor a check of this playbook"
                )
        return self

    @property
    def source(self) -> str:
        return self._source

    def with_source(self, source: str) -> Playbook:
        self._source = source
        return self

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)
