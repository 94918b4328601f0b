"""`grace init | ingest | status`: setting up a GRACE_HOME, dropping files, and each source's state."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from grace_pipelines.cli.app import HomeOption, app, emit_json, err, errors, grace_for, out
from grace_pipelines.errors import SYSTEM_FAILURE
from grace_pipelines.ingest.media import safe_text

REFUSED_STATES = ("refused", "ignored", "quarantined")  # an input that was not ingested: exit 1


@app.command()
def init(home: Path | None = HomeOption) -> None:
    """Create GRACE_HOME with its inbox, store, index and Dagster instance (idempotent)."""
    with errors():
        path = grace_for(home).init()
    out.print(f"Grace home ready at [bold]{path}[/]")


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files to ingest (a NAME.consent.json beside one travels with it)."),
    origin: str | None = typer.Option(None, help="voice_note, meeting, document, screen, api, manual, schedule"),
    wait: bool = typer.Option(False, "--wait", help="Run them through the pipeline now and report each."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    home: Path | None = HomeOption,
) -> None:
    """Drop files into the inbox; with --wait, run the Dagster asset graph for them to the end.

    Every path is reported with its outcome (refused, ignored, quarantined, or its source's
    state). Exit 1 when any input was refused; 2 on a system failure."""
    with errors():
        grace = grace_for(home)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=as_json or not wait,
        ) as progress:
            task = progress.add_task("ingesting", total=len(paths))

            def step(key: str, title: str) -> None:
                progress.update(task, description=f"processing {escape(safe_text(title, 80))}")
                progress.advance(task)

            outcomes = grace.ingest(paths, origin=origin, wait=wait, progress=step)
    given = [os.fsdecode(p) for p in paths] if len(paths) == len(outcomes) else [None] * len(outcomes)
    if as_json:
        emit_json({"sources": [{"path": path, **o.to_dict()} for path, o in zip(given, outcomes)]})
    else:
        _status_table(outcomes)
        for o in outcomes:
            if o.state in REFUSED_STATES:  # each reason names the file
                err.print(f"[bold red]{o.state}:[/] {escape(safe_text(o.why))}", highlight=False)
    # bad input is handled (failed with its reason, bytes kept); only a system failure exits 2
    if any(o.state == "failed" and o.why.startswith(SYSTEM_FAILURE) for o in outcomes):
        raise typer.Exit(2)
    if any(o.state in REFUSED_STATES for o in outcomes):
        raise typer.Exit(1)


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    htm: bool = typer.Option(False, "--htm", help="Task manager figures instead: throughput, latency, SLAs, queues."),
    window: float = typer.Option(60.0, "--window", help="With --htm: minutes to look back."),
    home: Path | None = HomeOption,
) -> None:
    """Each source's state (awaiting_consent, processing, searchable, failed, quarantined) and why."""
    if htm:
        with errors():
            report = grace_for(home).htm(window_s=window * 60)
        if as_json:
            emit_json(report)
        else:
            from rich.markdown import Markdown

            out.print(Markdown(report["markdown"]))
        return
    from grace_pipelines.cli import fastpath

    with errors():
        found = fastpath.status(home)
        if found is None:  # no server for this GRACE_HOME: in-process
            from grace_pipelines.web.wire import status_json  # the same JSON as GET /api/v1/sources

            found = status_json(grace_for(home).status())
    if as_json:
        emit_json(found)
    else:
        _status_table(found["sources"])


def _status_table(items: list[Any]) -> None:
    table = Table(title="sources")
    for column in ("source", "title", "kind", "origin", "state", "why"):
        table.add_column(column, overflow="fold")
    colors = {
        "searchable": "green",
        "awaiting_consent": "yellow",
        "failed": "red",
        "quarantined": "magenta",
        "refused": "red",
        "ignored": "magenta",
    }
    for item in items:
        get = item.get if isinstance(item, dict) else item.__getattribute__  # the JSON or the objects
        color = colors.get(get("state"), "cyan")
        # titles, reasons and party names are user data: no markup, no control characters
        cells = [escape(safe_text(get(name) or "-", 2000)) for name in ("source_key", "title", "kind", "origin")]
        table.add_row(*cells, f"[{color}]{escape(get('state'))}[/]", escape(safe_text(get("why"), 4000)))
    out.print(table)
