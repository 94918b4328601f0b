"""The playbook half of the `Grace` facade (mixed into api.Grace): list, validate, run.

Kept here so the facade stays one thin class: each method delegates to service.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class PlaybooksMixin:
    """`Grace.playbooks()`, `Grace.validate_playbooks(path)`, `Grace.run_playbook(name)`."""

    settings: Any
    runner: Any
    defs: Any

    def playbooks(self) -> dict[str, Any]:
        """Every loaded playbook (shipped and `$GRACE_HOME/playbooks/`) and every file's errors."""
        from grace_pipelines.playbooks.service import list_playbooks

        return list_playbooks(self.settings)

    def validate_playbooks(self, path: str | Path | None = None) -> dict[str, Any]:
        """`ok`, the playbooks and the errors (file, line, field, message) of one file or folder,
        or of everything the code location loads."""
        from grace_pipelines.playbooks.service import validate

        return validate(self.settings, path)

    def run_playbook(self, name: str, dry_run: bool = False) -> dict[str, Any]:
        """Run playbook `name` now on the GRACE_HOME instance (its checks and materialization are
        recorded); `dry_run`: actions only say what they would do."""
        from grace_pipelines.playbooks.service import run_playbook

        return run_playbook(self.runner, self.defs, self.settings, name, dry_run=dry_run)
