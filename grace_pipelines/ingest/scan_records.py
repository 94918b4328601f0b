"""What one inbox scan found and decided, per file and in total, and the scan's cursor: the
records the inbox sensor, `grace ingest --wait` and the ingest outcomes read."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


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
class ScanCursor:
    ctime_ns: int = 0
    names: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: str | None) -> ScanCursor:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(int(data.get("ctime_ns", 0)), list(data.get("names", [])))
        except (ValueError, TypeError, AttributeError):
            return cls()

    def dump(self) -> str:
        return json.dumps({"ctime_ns": self.ctime_ns, "names": self.names})
