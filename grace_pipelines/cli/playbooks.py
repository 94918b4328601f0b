"""`grace playbooks list | validate [FILE] | run NAME [--dry-run]`: the operational routines in
`playbooks/` and `$GRACE_HOME/playbooks/`. An invalid file exits 1 with "FILE line N: field:
why"; a breached check is a result, not an error (exit 0, the report says what was done)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from grace_pipelines.cli.app import HomeOption, app, emit_json, err, errors, grace_for, out

playbooks_app = typer.Typer(help="Playbooks: checks with thresholds and actions, on a schedule.", no_args_is_help=True)
app.add_typer(playbooks_app, name="playbooks")


def _print_errors(problems: list[dict]) -> None:
    for e in problems:
        err.print(f"[bold red]error:[/] {escape(e['text'])}", highlight=False)


@playbooks_app.command("list")
def playbooks_list(as_json: bool = typer.Option(False, "--json"), home: Path | None = HomeOption) -> None:
    """Every playbook: its trigger, checks and actions (and the files that do not load)."""
    with errors():
        found = grace_for(home).playbooks()
    if as_json:
        emit_json(found)
        return
    table = Table(title="playbooks")
    for column in ("name", "trigger", "checks", "actions", "file"):
        table.add_column(column)
    for p in found["playbooks"]:
        table.add_row(
            p["name"] + ("" if p["enabled"] else " (off)"),
            p["trigger"],
            ", ".join(c["name"] for c in p["checks"]),
            ", ".join(f"{a['do']} ({a['when']})" for a in p["actions"]),
            p["file"],
        )
    out.print(table)
    _print_errors(found["errors"])


@playbooks_app.command("validate")
def playbooks_validate(
    file: Path | None = typer.Argument(None, help="A playbook file or folder (default: everything Grace loads)."),
    as_json: bool = typer.Option(False, "--json"),
    home: Path | None = HomeOption,
) -> None:
    """Check playbook files; exit 1 naming the file, line and field of each problem."""
    with errors():
        report = grace_for(home).validate_playbooks(file)
    if as_json:
        emit_json(report)
    elif report["ok"]:
        out.print(f"{len(report['playbooks'])} playbook(s) valid: {', '.join(report['playbooks'])}", highlight=False)
    else:
        _print_errors(report["errors"])
    if not report["ok"]:
        raise typer.Exit(1)


@playbooks_app.command("run")
def playbooks_run(
    name: str = typer.Argument(..., help="The playbook's name (grace playbooks list)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Measure and report; the actions change nothing."),
    as_json: bool = typer.Option(False, "--json"),
    home: Path | None = HomeOption,
) -> None:
    """Run a playbook now: its checks recorded in Dagster, its actions taken on a breach."""
    with errors():
        result = grace_for(home).run_playbook(name, dry_run=dry_run)
    if as_json:
        emit_json({"playbook": result})
        return
    verdict = "passed" if result["passed"] else "breached"
    out.print(f"playbook {result['playbook']}{' (dry run)' if dry_run else ''}: {verdict}", highlight=False)
    for c in result["checks"]:
        mark = "[green]pass[/]" if c["passed"] else ("[yellow]WARN[/]" if c["severity"] == "warn" else "[red]FAIL[/]")
        values = ", ".join(f"{g or 'value'} {v:g}" for g, v in list(c["values"].items())[:6]) or "no data"
        out.print(f"  {mark} {escape(c['name'])}: {escape(values)} (want {c['threshold']})", highlight=False)
        if not c["passed"]:
            for d in c["details"][:10]:
                out.print(f"      {escape(d)}", highlight=False)
    for a in result["actions"]:
        outcome = a["error"] or ", ".join(f"{k} {v}" for k, v in a["result"].items() if not isinstance(v, (list, dict)))
        out.print(f"  action {a['do']} ({a['when']}): {escape(outcome or 'done')}", highlight=False)
    out.print(f"run {result['run_id'][:8]} in {result['seconds']:.2f} s", highlight=False)
