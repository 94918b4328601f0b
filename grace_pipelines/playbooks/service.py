"""What the Python API and the CLI do with playbooks: list them, validate files, and run one
now: its job executed in this process on the GRACE_HOME's Dagster instance, so the
materialization and the checks are recorded as a scheduled run's would be (the UI shows them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grace_pipelines import tags as tag
from grace_pipelines.errors import GraceError
from grace_pipelines.playbooks.loading import PlaybookError, load_playbooks, validate_path
from grace_pipelines.playbooks.model import Playbook


def summary(p: Playbook) -> dict[str, Any]:
    t = p.trigger
    return {
        "name": p.name,
        "file": p.source,
        "description": p.description.strip(),
        "trigger": f"cron {t.cron} ({t.timezone})" if t.cron else f"after {t.after_asset}",
        "enabled": p.enabled,
        "materialize": p.materialize,
        "checks": [
            {"name": c.name, "metric": c.metric, "threshold": c.threshold(), "severity": c.severity} for c in p.checks
        ],
        "actions": [{"do": a.do, "when": a.when} for a in p.actions],
        "asset": f"playbook_{p.name}",
        "job": f"playbook_{p.name}_job",
    }


def list_playbooks(settings: Any) -> dict[str, Any]:
    playbooks, errors = load_playbooks(settings)
    return {"playbooks": [summary(p) for p in playbooks], "errors": [e.to_dict() for e in errors]}


def validate(settings: Any, path: str | Path | None = None) -> dict[str, Any]:
    """One file or folder, or (no path) everything the code location would load."""
    playbooks, errors = validate_path(Path(path)) if path is not None else load_playbooks(settings)
    return {
        "ok": not errors,
        "playbooks": [p.name for p in playbooks],
        "errors": [e.to_dict() for e in errors],
    }


def _find(settings: Any, name: str) -> Playbook:
    playbooks, errors = load_playbooks(settings)
    for p in playbooks:
        if p.name == name:
            return p
    broken: list[PlaybookError] = [e for e in errors if e.stem == name]
    if broken:
        raise GraceError("playbook cannot run: " + "; ".join(str(e) for e in broken))
    known = ", ".join(p.name for p in playbooks) or "none"
    raise GraceError(f"no playbook named {name!r} (known: {known}; `grace playbooks validate` lists broken files)")


def run_playbook(runner: Any, defs: Any, settings: Any, name: str, *, dry_run: bool = False) -> dict[str, Any]:
    """Execute `playbook_<name>_job` now (`dry_run`: the playbook's asset only, and its actions
    only say what they would do); returns the run's summary (checks, values, actions)."""
    import dagster as dg

    from grace_pipelines.runtime.execution import failure_message
    from grace_pipelines.runtime.recovery import run_tags

    playbook = _find(settings, name)
    asset = dg.AssetKey(f"playbook_{playbook.name}")
    try:
        job = defs.resolve_job_def(f"playbook_{playbook.name}_job")
    except Exception:  # noqa: BLE001 - not built: the adapter refused it (an unknown asset, a bad cron)
        raise GraceError(f"playbook {name!r} is not loaded; `grace playbooks validate` says why") from None
    with runner.instance() as instance:
        result = job.execute_in_process(
            instance=instance,
            run_config={
                "ops": {asset.path[-1]: {"config": {"dry_run": dry_run}}},
                "loggers": {"console": {"config": {"log_level": runner.log_level}}},
            },
            asset_selection=[asset] if dry_run else None,
            tags={tag.TRIGGER: "cli", **run_tags()},
            raise_on_error=False,
        )
    if not result.success:
        raise RuntimeError(
            f"playbook {name} failed (run {result.run_id[:8]}): {failure_message(result) or 'see the UI'}"
        )
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key == asset:
            out = dict(materialization.metadata["result"].value)  # type: ignore[arg-type]
            out["run_id"] = result.run_id
            out["report"] = materialization.metadata["report"].value
            return out
    raise RuntimeError(f"playbook {name}: the run recorded no materialization of {asset.to_user_string()}")
