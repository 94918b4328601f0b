"""What probes and actions are given and what a probe returns: `PlaybookContext` (plain
objects: settings, state database, blob store, chunk index, the clock, alerts, and what the
Dagster adapter fetched from its instance), `Reading`, and the probe registry `PROBES` that
probes.py and probes_store.py fill. No Dagster."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from grace_pipelines.db.state import StateDB

Value = float | dict[str, float] | None


@dataclass
class Reading:
    value: Value
    details: list[str] = field(default_factory=list)  # what is behind the number, by name
    extra: dict[str, float] = field(default_factory=dict)  # more numbers worth plotting (e.g. blobs checked)


class InstanceData(Protocol):
    """What the Dagster adapter fetches from the instance for the probes that need it."""

    def check_records(self, since: datetime) -> list[dict[str, Any]]:
        """Asset check evaluations since `since`: {asset, check, passed, partition, at}."""
        ...

    def stage_throughput(self, since: datetime) -> dict[str, dict[str, float]]: ...


@dataclass
class PlaybookContext:
    """Everything a probe or an action may use (plain objects; built by the adapter or the API)."""

    settings: Any  # GraceSettings
    db: StateDB
    blob_store: Any  # stores.blobs.SealedBlobStore
    chunk_index: Any | None  # stores.vectors.ChunkIndex
    now: datetime
    alerts: Any | None = None  # anything with send(text, **fields) -> (delivered, outcome)
    instance_data: InstanceData | None = None
    actor: str = "playbook"
    cache: dict[Any, Any] = field(default_factory=dict)

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def title(self, key: str) -> str:
        row = self.cached(("row", key), lambda: self.db.get_source(key))
        return row.title if row else key


Probe = Callable[[PlaybookContext, dict[str, Any]], Reading]
PROBES: dict[str, Probe] = {}


def probe(name: str) -> Callable[[Probe], Probe]:
    def register(fn: Probe) -> Probe:
        PROBES[name] = fn
        return fn

    return register


def hours(params: dict[str, Any], name: str = "hours", default: float = 24.0) -> timedelta:
    return timedelta(hours=float(params.get(name, default)))
