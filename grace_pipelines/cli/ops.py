"""`grace doctor | dev | layers`: health and repair after faults; the Dagster UI and daemon on
127.0.0.1; the control room's layered views refreshed now."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

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
    serve_port: int | None = typer.Option(
        None, "--serve-port", help="Port of the person's web app (default serve_port, 8765; 0: any free port)."
    ),
    no_serve: bool = typer.Option(False, "--no-serve", help="Do not start the person's web app (grace serve)."),
    home: Path | None = HomeOption,
) -> None:
    """Start the Dagster web UI and daemon on 127.0.0.1 for GRACE_HOME, and beside them the
    person's web app (`grace serve`), which stops with them."""
    with errors():
        grace = grace_for(home)
        grace.init()
        # create the instance's SQLite storages once, here: `dagster dev` and the background
        # refresh below would otherwise both create them at once on a fresh GRACE_HOME
        # (measured: 1 start in 4 failed with "table snapshots already exists")
        with grace.instance():
            pass
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
    _refresh_layers_in_background(env, grace.settings.dagster_home / "layers-refresh.log")
    if not no_serve:
        _serve_in_background(env, grace.settings, serve_port)
    os.execvpe(argv[0], argv, env)


def _refresh_layers_in_background(env: dict[str, str], log: Path) -> None:
    """Materialize the layered views and dry-run every playbook once at start, in a child
    process (a few seconds the UI need not wait for), so a fresh control room is not full of
    "never materialized"; `layers_schedule` and the playbooks' own schedules keep them fresh.
    The child outlives this process's exec; its errors go to `log`."""
    import subprocess

    # then every playbook once as a dry run: its values and checks show at once, no action is taken
    code = (
        "from grace_pipelines.api import Grace\n"
        "g = Grace()\n"
        "g.refresh_layers()\n"
        "for p in g.playbooks()['playbooks']:\n"
        "    g.run_playbook(p['name'], dry_run=True)\n"
    )
    with open(log, "ab") as sink:
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
        )


def _serve_in_background(env: dict[str, str], settings: Any, port: int | None) -> None:
    """`grace serve` as a child of this process (which becomes `dagster dev` by exec, keeping its
    pid): in its process group, so Ctrl-C stops both, and watching its parent (`--exit-with`), so
    any other end of the control room stops it too. Its stdout (where the token URL goes) is
    dropped; its stderr goes to GRACE_HOME/web/serve.log. The URL is printed here instead."""
    import subprocess

    from grace_pipelines.cli.web import url_for
    from grace_pipelines.web.security import web_dir

    port = settings.serve_port if port is None else port
    argv = [sys.executable, "-c", "from grace_pipelines.cli import main; main()", "serve", "--port", str(port)]
    log = web_dir(settings.home) / "serve.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as sink:
        subprocess.Popen(
            [*argv, "--exit-with", str(os.getpid())],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    if port:
        err.print(f"Web app on {url_for(settings, port=port)}", highlight=False, soft_wrap=True)
    else:
        err.print(f"Web app on a free port: see {web_dir(settings.home) / 'server.json'}", highlight=False)


@app.command()
def layers(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    home: Path | None = HomeOption,
) -> None:
    """Refresh the control room's layered views now (ops, orchestration, intent, dev: what
    `layers_schedule` does every 15 minutes) and list their checks. Exit 1 if an ERROR check
    failed (a WARN is reported, not an exit code)."""
    with errors():
        report = grace_for(home).refresh_layers()
    if as_json:
        emit_json(report)
    else:
        for check in report["checks"]:
            mark = "[green]ok[/]" if check["passed"] else f"[red]{check['severity'].lower()}[/]"
            where = escape(f"{check['asset']}.{check['check']}")
            out.print(f"{mark} {where}: {escape(check['description'] or '-')}", highlight=False)
        out.print(f"{len(report['assets'])} views refreshed (run {report['run_id'][:8]}); open them with `grace dev`")
    if not report["success"]:
        err.print(f"[bold red]system failure:[/] layers_job failed: {escape(report['error'] or 'see the run')}")
        raise typer.Exit(2)
    if any(not c["passed"] and c["severity"] == "ERROR" for c in report["checks"]):
        raise typer.Exit(1)
