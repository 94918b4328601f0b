"""`grace consent grant | revoke | list` and `grace purge`: consent decisions and what a revocation removes."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from grace_pipelines.cli.app import HomeOption, actor, app, emit_json, errors, grace_for, out

consent_app = typer.Typer(help="Grant, revoke and list consent.", no_args_is_help=True)
app.add_typer(consent_app, name="consent")


@consent_app.command("grant")
def consent_grant(
    source: str = typer.Argument(..., help="Source key, or the file name of a drop."),
    party: str = typer.Option(..., "--party", help="Who consents."),
    scope: str = typer.Option(..., "--scope", help="transcribe | index | all"),
    wait: bool = typer.Option(False, "--wait", help="Run the work this releases now."),
    ttl: str | None = typer.Option(None, "--ttl", help="Consent lasts this long (90m, 12h, 30d, 2w)."),
    home: Path | None = HomeOption,
) -> None:
    """Record a grant; waiting work is launched by consent_sensor (or now, with --wait)."""
    with errors():
        grace = grace_for(home)
        from grace_pipelines.db.schema import utcnow
        from grace_pipelines.governance.consent import parse_ttl

        expires = utcnow() + parse_ttl(ttl) if ttl else None
        grace.grant(source, party, scope, actor=actor(), wait=wait, expires_at=expires)
        row = grace.resolve(source)
        state = grace.status_of(row.key)
    out.print(f"granted {scope} for {row.title} by {party}; now {state.state}: {state.why}", highlight=False)


@consent_app.command("revoke")
def consent_revoke(
    source: str = typer.Argument(..., help="Source key, or the file name of a drop."),
    party: str = typer.Option(..., "--party"),
    scope: str = typer.Option(..., "--scope", help="transcribe | index | all"),
    wait: bool = typer.Option(False, "--wait", help="Run the purge to completion now."),
    home: Path | None = HomeOption,
) -> None:
    """Record a revocation: search stops returning the source at once, and purge_job removes
    everything derived (consent_sensor launches it; --wait runs it now)."""
    with errors():
        grace = grace_for(home)
        grace.revoke(source, party, scope, actor=actor(), wait=wait)
        row = grace.resolve(source)
        status = grace.status_of(row.key)
    out.print(f"revoked {scope} for {row.title} by {party}; now {status.state}: {status.why}", highlight=False)


@app.command()
def purge(
    source: str = typer.Argument(..., help="Source key, or the file name of a drop."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Runs purge_job to completion (always)."),
    original: bool = typer.Option(False, "--original", help="Delete the raw recording too."),
    as_json: bool = typer.Option(False, "--json"),
    home: Path | None = HomeOption,
) -> None:
    """Purge everything derived from a source (transcript, chunks, vectors, index entries)."""
    with errors():
        receipt = grace_for(home).purge(source, reason="purge requested from the CLI", remove_original=original or None)
    if as_json:
        emit_json({"receipt": receipt})
    else:
        out.print(f"purged {source}: {json.dumps(receipt)}", highlight=False, markup=False)


@consent_app.command("list")
def consent_list(
    pending: bool = typer.Option(
        False, "--pending", help="Only what still waits on someone's decision (a refusal is a decision)."
    ),
    as_json: bool = typer.Option(False, "--json"),
    home: Path | None = HomeOption,
) -> None:
    """Per source and scope: participants, who granted, who is missing (refused: marked)."""
    with errors():
        items = grace_for(home).consent_list(pending=pending)
    if as_json:
        emit_json({"consent": items})
        return
    table = Table(title="consent")
    for column in ("source", "title", "scope", "granted", "missing"):
        table.add_column(column, overflow="fold")
    for i in items:
        cells = (
            i["source_key"],
            i["title"],
            i["scope"],
            ", ".join(i["granted"]) or "-",
            ", ".join([f"{p} (refused)" if p in i["refused"] else p for p in i["missing"]] + i.get("voices", []))
            or "-",
        )
        table.add_row(*(escape(c) for c in cells))  # a title or party may look like [markup]
    out.print(table)
