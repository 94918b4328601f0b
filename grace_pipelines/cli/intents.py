"""`grace intent submit | status | list | cancel`: ask for an outcome with a deadline, and follow it.

    grace intent submit --searchable rec.m4a notes.pdf --by 09:00
    grace intent submit --notify standup.mp3
    grace intent submit --reembed all-MiniLM-L6-v2 --by monday

`--searchable` and `--notify` are flags followed by the sources (keys, titles, or paths: a file
Grace does not know yet is dropped into the inbox); `--reembed` takes the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from grace_pipelines.cli.app import HomeOption, actor, app, emit_json, errors, grace_for, out
from grace_pipelines.errors import GraceError

intent_app = typer.Typer(help="Intents: a requested outcome with a deadline, and its progress.", no_args_is_help=True)
app.add_typer(intent_app, name="intent")


def _line(i: dict[str, Any]) -> str:
    deadline = i["deadline_local"] or "no deadline"
    risk = "" if i["on_time"] else " [bold yellow](at risk)[/]"
    failed = f", {i['failed']} failed" if i["failed"] else ""
    return (
        f"#{i['id']} {i['status']}{risk}: {escape(i['description'])} — {i['done']}/{i['total']} done"
        f"{failed} (deadline {escape(deadline)})"
    )


@intent_app.command("submit")
def intent_submit(
    sources: list[str] = typer.Argument(None, help="Sources (key, title or path) for --searchable / --notify."),
    searchable: bool = typer.Option(False, "--searchable", help="These sources searchable by --by."),
    notify: bool = typer.Option(False, "--notify", help="Tell me (webhook + audit log) when they are searchable."),
    reembed: str | None = typer.Option(None, "--reembed", metavar="MODEL", help="Re-embed everything with MODEL."),
    by: str | None = typer.Option(None, "--by", help="Deadline: 09:00, 'tomorrow 9am', monday, 2026-12-01T17:00."),
    description: str | None = typer.Option(None, "--description", help="Say what it is for (default: titles)."),
    as_json: bool = typer.Option(False, "--json"),
    home: Path | None = HomeOption,
) -> None:
    """Submit an intent; its deadline feeds the task manager's SLA at once."""
    with errors():
        chosen = [name for name, on in (("searchable", searchable), ("notify", notify), ("reembed", reembed)) if on]
        if len(chosen) != 1:
            raise GraceError("say exactly one of --searchable SOURCE..., --notify SOURCE... or --reembed MODEL")
        kind = chosen[0]
        if kind != "reembed" and not sources:
            raise GraceError(f"--{kind} needs at least one source (a key, a title or a file path)")
        grace = grace_for(home)
        info = grace.submit_intent(kind, sources or [], by=by, model=reembed, description=description, actor=actor())
    if as_json:
        emit_json({"intent": info})
        return
    out.print(f"submitted {_line(info)}", highlight=False)


@intent_app.command("status")
def intent_status(
    intent_id: int = typer.Argument(..., help="The intent's number (grace intent list)."),
    as_json: bool = typer.Option(False, "--json"),
    home: Path | None = HomeOption,
) -> None:
    """An intent's progress: done/total, what failed and why, what is pending and why."""
    with errors():
        info = grace_for(home).intent_status(intent_id)
    if as_json:
        emit_json({"intent": info})
        return
    out.print(_line(info), highlight=False)
    if info["projected_finish"]:
        out.print(f"projected to finish by {info['projected_finish']}", highlight=False)
    table = Table(title="sources")
    for column in ("source", "title", "state", "why"):
        table.add_column(column, overflow="fold")
    for state, items in (("failed", info["failures"]), ("pending", info["pending"])):
        for item in items:
            table.add_row(item["key"], item["title"], state, item["reason"])
    if table.row_count:
        out.print(table)


@intent_app.command("list")
def intent_list(
    only_open: bool = typer.Option(False, "--open", help="Only open and overdue intents."),
    as_json: bool = typer.Option(False, "--json"),
    home: Path | None = HomeOption,
) -> None:
    """Every intent with its status and progress."""
    with errors():
        items = grace_for(home).intents(open_only=only_open)
    if as_json:
        emit_json({"intents": items})
        return
    table = Table(title="intents")
    for column in ("intent", "kind", "status", "description", "deadline", "done/total", "failed"):
        table.add_column(column, overflow="fold")
    for i in items:
        table.add_row(
            f"#{i['id']}",
            i["kind"],
            i["status"] + ("" if i["on_time"] else " (at risk)"),
            i["description"],
            i["deadline_local"] or "-",
            f"{i['done']}/{i['total']}",
            str(i["failed"]),
        )
    out.print(table)


@intent_app.command("cancel")
def intent_cancel(
    intent_id: int = typer.Argument(...),
    as_json: bool = typer.Option(False, "--json"),
    home: Path | None = HomeOption,
) -> None:
    """Cancel an open or overdue intent (its sources keep going; only the intent stops)."""
    with errors():
        info = grace_for(home).cancel_intent(intent_id, actor=actor())
    if as_json:
        emit_json({"intent": info})
        return
    out.print(f"cancelled {_line(info)}", highlight=False)
