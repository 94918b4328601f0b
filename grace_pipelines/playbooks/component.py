"""The playbooks as a Dagster Component, the idiomatic way in Dagster 1.13: a `defs.yaml` with
`type: grace_pipelines.playbooks.component.PlaybooksComponent` (or an instance in Python) gives
every playbook's asset, checks, job and schedule or sensor, with Grace's resources.

Grace's own code location (definitions.py) calls the same loader directly, so it can also hand
the playbooks its other assets (what a playbook materializes first); a playbook built by the
component runs its own asset only and shows the assets it names as dependencies.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from grace_pipelines.playbooks.dagster_defs import build_playbook_definitions
from grace_pipelines.playbooks.loading import load_playbooks
from grace_pipelines.settings import load_settings


class PlaybooksComponent(dg.Component, dg.Model, dg.Resolvable):
    """Every playbook file as Dagster definitions."""

    home: str | None = None  # GRACE_HOME (default: the environment's)
    folder: str | None = None  # another folder of playbook files, read after $GRACE_HOME/playbooks
    include_shipped: bool = True  # the repository's playbooks/ folder

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        from grace_pipelines.resources import build_resources

        settings = load_settings(**({"home": Path(self.home)} if self.home else {}))
        extra = [Path(self.folder)] if self.folder else []
        playbooks, errors = load_playbooks(settings, seed=self.include_shipped, extra=extra)
        defs = build_playbook_definitions(settings, playbooks, errors)
        return dg.Definitions.merge(defs, dg.Definitions(resources=build_resources(settings)))
