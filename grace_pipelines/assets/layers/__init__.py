"""The control room's four layered views (the seed's dashboards) as Dagster asset groups.

- `ops` (health): `ops_health`, `quarantine` (ops.py)
- `orchestration` (HTM, SLAs): `sla_tiers` (orchestration.py) beside `htm_metrics`
- `intent`: `search_quality` (intent.py) beside `intents`
- `dev`: `data_quality`, `versions` (dev.py) beside the `playbook_<name>` assets

Dagster has no group description, so each group has one overview asset whose description
starts "Look here first" (docs/control_room.md lists them). Every metric is numeric metadata
(plotted by the UI) or a markdown table, never content; each view has threshold checks.
`layers_job` (jobs.py) materializes them every 15 minutes and on demand (`Grace.refresh_layers`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg

from grace_pipelines.assets.layers.dev import build_dev_assets
from grace_pipelines.assets.layers.intent import build_intent_assets
from grace_pipelines.assets.layers.ops import build_ops_assets
from grace_pipelines.assets.layers.orchestration import build_orchestration_assets
from grace_pipelines.settings import GraceSettings

LAYER_GROUPS = ("ops", "orchestration", "intent", "dev")
OVERVIEW_ASSETS = {"ops": "ops_health", "orchestration": "sla_tiers", "intent": "search_quality", "dev": "data_quality"}


def build_layer_assets(settings: GraceSettings, graph: Callable[[], Any] | None = None) -> list[dg.AssetsDefinition]:
    """The layer assets for one GRACE_HOME (paths and time zone from its settings); `graph`
    returns the code location's whole asset graph at run time (see dev.whole_graph)."""
    return [
        *build_ops_assets(settings),
        *build_orchestration_assets(settings),
        *build_intent_assets(settings),
        *build_dev_assets(settings, graph),
    ]
