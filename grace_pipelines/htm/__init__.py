"""HTM, the task manager's policy: sizing, routing, batching and SLA tiers as pure functions.

No I/O and no Dagster here (the clock is a parameter), so every rule is a table-driven unit
test; the inbox sensor, `offpeak_schedule`, `sla_sensor` and `htm_metrics` apply them.
"""

from grace_pipelines.htm.routing import (
    OffPeak,
    Route,
    base_priority,
    route,
    should_flush,
)
from grace_pipelines.htm.sizing import SIZE_CLASSES, SizeThresholds, size_class
from grace_pipelines.htm.sla import (
    TIERS,
    SlaTarget,
    deadline,
    default_targets,
    target_for,
    tier,
)

__all__ = [
    "SIZE_CLASSES",
    "TIERS",
    "OffPeak",
    "Route",
    "SizeThresholds",
    "SlaTarget",
    "base_priority",
    "deadline",
    "default_targets",
    "route",
    "should_flush",
    "size_class",
    "target_for",
    "tier",
]
