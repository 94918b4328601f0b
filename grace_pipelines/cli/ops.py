"""`grace doctor | dev`: health and repair after faults; the Dagster UI and daemon on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import typer
from rich.markup import escape

from grace_pipelines.cli.app import HomeOption, app, emit_json, err, errors, grace_for, out


@app.command()
def doctor(
    repair: bool = typer.Option(
        False, "--repair", help="Fix what is found (mark dead runs failed, free slots, resume, chmod)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    home: Path | None = HomeOption,
) -> None:
    """Report (and with --repair fix) what crashes left: dead runs, pool slots, stuck sources,
    unfinished purges, temporary files, and files others can read. Exit 1 if problems remain."""
    with errors():
        report = grace_for(home).doctor(repair=repair)
    if as_json:
        emit_json(report)
    else:
        sections = [
            ("dead runs", "dead_runs"),
            ("pool slots of finished or dead runs", "slots"),
            ("stuck sources", "stuck_sources"),
            ("unfinished purges", "unfinished_purges"),
            ("temporary files", "temp_files"),
            ("readable by others", "permissions"),
        ]
        for title, name in sections:
            items = report[name]
            verb = "fixed" if repair else "found"
            out.print(f"{title}: {len(items)} {verb if items else ''}".rstrip(), highlight=False)
            for item in items[:20]:
                out.print(f"  {escape(json.dumps(item) if isinstance(item, dict) else str(item))}", highlight=False)
        if report["healthy"]:
            out.print("[green]healthy[/]")
        elif not repair:
            out.print("run: grace doctor --repair")
    if not report["healthy"]:
        raise typer.Exit(1)


@app.command()
def dev(
    port: int = typer.Option(3000, help="Port of the web UI."),
    home: Path | None = HomeOption,
) -> None:
    """Start the Dagster web UI and daemon on 127.0.0.1 for GRACE_HOME."""
    with errors():
        grace = grace_for(home)
        grace.init()
    env = dict(os.environ)
    env["GRACE_HOME"] = str(grace.settings.home)
    env.setdefault("DAGSTER_HOME", str(grace.settings.dagster_home))
    # A shell's ignored signals would be inherited; restore defaults so Ctrl-C/SIGTERM work.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    argv = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-m",
        "grace_pipelines.definitions",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    err.print(f"Dagster UI on http://127.0.0.1:{port} (GRACE_HOME={grace.settings.home})")
    os.execvpe(argv[0], argv, env)
