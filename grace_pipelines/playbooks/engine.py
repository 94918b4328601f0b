"""Running one playbook, in plain Python: read each check's metric, judge it against its
threshold, take the actions whose `when` matches, and say what happened as numbers (one per
value, for the UI's plots), a JSON-ready summary and a markdown report (names and counts,
never content). The Dagster asset (dagster_defs.py) is a thin wrapper around `evaluate`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from grace_pipelines.playbooks.actions import ACTIONS
from grace_pipelines.playbooks.context import PlaybookContext
from grace_pipelines.playbooks.model import Check, Playbook
from grace_pipelines.playbooks.probes import PROBES

SHOWN = 10  # names listed per check or action in the report


@dataclass
class CheckOutcome:
    check: Check
    values: dict[str, float]  # "" for a single number, else one per group
    passed: bool
    failing: list[str] = field(default_factory=list)  # the groups that failed ("" for a single number)
    details: list[str] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    no_data: bool = False

    @property
    def name(self) -> str:
        return self.check.name

    def summary(self) -> str:
        if self.error:
            return f"could not be measured: {self.error}"
        if self.no_data:
            return "no data"
        shown = ", ".join(f"{g or 'value'} {v:g}" for g, v in list(self.values.items())[:SHOWN])
        if self.passed:
            return f"{shown} (want {self.check.threshold()})" if shown else "nothing to judge"
        bad = ", ".join(f"{g or 'value'} {self.values[g]:g}" for g in self.failing[:SHOWN])
        return f"{bad} (want {self.check.threshold()})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metric": self.check.metric,
            "severity": self.check.severity,
            "threshold": self.check.threshold(),
            "passed": self.passed,
            "values": self.values,
            "failing": self.failing,
            "details": self.details[:50],
            "error": self.error,
        }


@dataclass
class ActionOutcome:
    do: str
    when: str
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"do": self.do, "when": self.when, "result": self.result, "error": self.error}


@dataclass
class PlaybookResult:
    playbook: Playbook
    checks: list[CheckOutcome]
    actions: list[ActionOutcome]
    dry_run: bool
    seconds: float = 0.0

    @property
    def breached(self) -> list[CheckOutcome]:
        return [c for c in self.checks if not c.passed]

    def numeric(self) -> dict[str, float]:
        """One float per measured value (`check` or `check/group`), plus counts."""
        out: dict[str, float] = {}
        for c in self.checks:
            for group, value in c.values.items():
                out[f"{c.name}/{group}" if group else c.name] = float(value)
            for name, value in c.extra.items():
                out[f"{c.name}/{name}"] = float(value)
        for a in self.actions:
            for name, value in a.result.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    out[f"action/{a.do}/{name}"] = float(value)
        out["checks_failed"] = float(len(self.breached))
        out["actions_taken"] = float(sum(1 for a in self.actions if not a.error))
        out["actions_failed"] = float(sum(1 for a in self.actions if a.error))
        out["seconds"] = round(self.seconds, 3)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "playbook": self.playbook.name,
            "source": self.playbook.source,
            "dry_run": self.dry_run,
            "passed": not self.breached,
            "checks": [c.to_dict() for c in self.checks],
            "actions": [a.to_dict() for a in self.actions],
            "seconds": round(self.seconds, 3),
        }

    def markdown(self) -> str:
        p = self.playbook
        verdict = "all checks passed" if not self.breached else f"{len(self.breached)} of {len(self.checks)} breached"
        lines = [f"**{p.name}**{' (dry run)' if self.dry_run else ''}: {verdict}. {p.description.strip()}", ""]
        lines += ["| check | severity | result | detail |", "| --- | --- | --- | --- |"]
        for c in self.checks:
            mark = "pass" if c.passed else "**FAIL**"
            lines.append(f"| {c.name} | {c.check.severity} | {mark} | {_cell(c.summary())} |")
        for c in self.checks:
            if c.details and not c.passed:
                lines += ["", f"*{c.name}*:"] + [f"- {_cell(d)}" for d in c.details[:SHOWN]]
                if len(c.details) > SHOWN:
                    lines.append(f"- ... and {len(c.details) - SHOWN} more")
        if self.actions:
            lines += ["", "| action | when | outcome |", "| --- | --- | --- |"]
            for a in self.actions:
                lines.append(f"| {a.do} | {a.when} | {_cell(a.error or describe(a.result))} |")
        return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def describe(result: dict[str, Any]) -> str:
    parts = []
    for key, value in result.items():
        if isinstance(value, list):
            shown = ", ".join(str(v) for v in value[:SHOWN]) + (" ..." if len(value) > SHOWN else "")
            parts.append(f"{key}: {shown or 'none'}")
        elif not isinstance(value, dict):
            parts.append(f"{key} {value}")
    return "; ".join(parts) or "done"


def measure(check: Check, ctx: PlaybookContext) -> CheckOutcome:
    try:
        reading = PROBES[check.metric](ctx, dict(check.params))
    except Exception as exc:  # noqa: BLE001 - a probe that breaks fails its check, never the playbook
        return CheckOutcome(check, {}, passed=False, error=f"{type(exc).__name__}: {exc}"[:300])
    value = reading.value
    if value is None:
        return CheckOutcome(check, {}, passed=True, details=reading.details, extra=reading.extra, no_data=True)
    values = {"": float(value)} if isinstance(value, (int, float)) else {str(k): float(v) for k, v in value.items()}
    failing = [g for g, v in values.items() if not check.passes(v)]
    return CheckOutcome(check, values, not failing, failing, reading.details, reading.extra)


def _due(when: str, outcomes: list[CheckOutcome]) -> list[CheckOutcome] | None:
    """The breaches an action answers, or None when it should not run."""
    breached = [c for c in outcomes if not c.passed]
    if when == "always":
        return breached
    if when == "breach":
        return breached or None
    named = [c for c in breached if c.name == when]
    return named or None


def evaluate(playbook: Playbook, ctx: PlaybookContext, *, dry_run: bool = False) -> PlaybookResult:
    """Measure every check, then take the due actions in file order (each one's failure is
    reported, the others still run)."""
    start = time.perf_counter()
    outcomes = [measure(c, ctx) for c in playbook.checks]
    actions = []
    for action in playbook.actions:
        breaches = _due(action.when, outcomes)
        if breaches is None:
            continue
        done = ActionOutcome(action.do, action.when)
        try:
            done.result = ACTIONS[action.do](ctx, playbook, breaches, dict(action.params), dry_run)
        except Exception as exc:  # noqa: BLE001 - reported in the report and the metadata
            done.error = f"{type(exc).__name__}: {exc}"[:500]
        actions.append(done)
    return PlaybookResult(playbook, outcomes, actions, dry_run, time.perf_counter() - start)
