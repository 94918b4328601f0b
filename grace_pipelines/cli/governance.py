"""`grace keys | audit | secrets`: key rotation and verification, the audit log, the credential vault."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from grace_pipelines.cli.app import HomeOption, actor, app, emit_json, err, errors, grace_for, out

keys_app = typer.Typer(help="Key-encryption keys: rotate, status, verify.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
secrets_app = typer.Typer(help="The vault: credentials used only with an approval for a purpose.", no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")


@keys_app.command("rotate")
def keys_rotate(as_json: bool = typer.Option(False, "--json"), home: Path | None = HomeOption) -> None:
    """New key, re-wrap every blob's data key, verify all, retire the old key (resumable)."""
    with errors():
        report = grace_for(home).rotate_keys()
    if as_json:
        emit_json({"rotation": report})
        return
    out.print(
        f"active key {report['new_key_id']}: {report['rewrapped']} of {report['blobs']} blobs re-wrapped, "
        f"{report['verified']} verified, retired {', '.join(report['retired']) or 'none'} in {report['seconds']:.2f} s",
        highlight=False,
    )


@keys_app.command("status")
def keys_status(as_json: bool = typer.Option(False, "--json"), home: Path | None = HomeOption) -> None:
    """Keys, their state and age, and how many blobs each wraps."""
    with errors():
        report = grace_for(home).key_status()
    if as_json:
        emit_json({"keys": report})
        return
    table = Table(title="keys")
    for column in ("id", "state", "created (UTC)", "age (days)", "blobs"):
        table.add_column(column)
    for key in report["keys"]:
        table.add_row(key["id"], key["state"], str(key["created_at"])[:19], f"{key['age_days']:.1f}", str(key["blobs"]))
    out.print(table)


@keys_app.command("verify")
def keys_verify(as_json: bool = typer.Option(False, "--json"), home: Path | None = HomeOption) -> None:
    """Decrypt every blob; exit 2 naming the ones that do not."""
    with errors():
        report = grace_for(home).verify_keys()
    if as_json:
        emit_json({"verify": report})
    else:
        out.print(f"{report['verified']} of {report['total']} blobs decrypt", highlight=False)
        for failure in report["failures"]:
            err.print(f"[red]unreadable:[/] {failure['name']}: {failure['reason']}", highlight=False)
    if report["failures"]:
        raise typer.Exit(2)


@audit_app.command("verify")
def audit_verify(as_json: bool = typer.Option(False, "--json"), home: Path | None = HomeOption) -> None:
    """Check the hash chain; exit 2 naming each edited, deleted, inserted or reordered entry."""
    with errors():
        report = grace_for(home).audit_verify()
    if as_json:
        emit_json({"audit": report})
    elif report["ok"]:
        out.print(
            f"audit log intact: {report['entries']} entries, head {report.get('head_hash', '')[:16]}", highlight=False
        )
    else:
        for problem in report["problems"]:
            err.print(f"[red]{problem['kind']}[/] entry {problem.get('seq')}: {problem['detail']}", highlight=False)
    if not report["ok"]:
        raise typer.Exit(2)


@audit_app.command("tail")
def audit_tail(
    n: int = typer.Option(20, "-n", help="How many entries."),
    as_json: bool = typer.Option(False, "--json"),
    home: Path | None = HomeOption,
) -> None:
    """The latest audit entries."""
    with errors():
        entries = grace_for(home).audit_tail(n)
    if as_json:
        emit_json({"entries": entries})
        return
    table = Table(title="audit log")
    for column in ("seq", "at (UTC)", "actor", "action", "subject"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(str(e["seq"]), str(e["at"])[:19], e["actor"], e["action"], e["subject"])
    out.print(table)


@secrets_app.command("set")
def secrets_set(
    name: str = typer.Argument(..., help="Secret name, e.g. openai."),
    home: Path | None = HomeOption,
) -> None:
    """Store a secret; the value comes from a hidden prompt or standard input, never argv."""
    with errors():
        grace = grace_for(home)
        if sys.stdin.isatty():
            value = typer.prompt(f"value for {name}", hide_input=True, confirmation_prompt=True)
        else:
            value = sys.stdin.readline().rstrip("\r\n")
        grace.vault.set(name, value, actor=actor())
    out.print(
        f"stored secret {name} (sealed); approve a use with: grace secrets approve {name} --purpose PURPOSE",
        highlight=False,
    )


@secrets_app.command("approve")
def secrets_approve(
    name: str = typer.Argument(...),
    purpose: str = typer.Option(..., "--purpose", help="e.g. embedding, transcription"),
    ttl: str | None = typer.Option(None, "--ttl", help="Approval lasts this long (12h, 30d, ...)."),
    home: Path | None = HomeOption,
) -> None:
    """Allow a secret to be used for one purpose (optionally for a limited time)."""
    with errors():
        from grace_pipelines.db.schema import utcnow
        from grace_pipelines.governance.consent import parse_ttl

        expires = utcnow() + parse_ttl(ttl) if ttl else None
        grace_for(home).vault.approve(name, purpose, actor=actor(), expires_at=expires)
    out.print(
        f"approved {name} for {purpose}" + (f" until {expires:%Y-%m-%d %H:%M} UTC" if expires else ""), highlight=False
    )


@secrets_app.command("refuse")
def secrets_refuse(
    name: str = typer.Argument(...),
    purpose: str = typer.Option(..., "--purpose", help="The purpose whose pending use is refused."),
    home: Path | None = HomeOption,
) -> None:
    """Refuse a pending use of a secret: the request is closed unapproved and audited."""
    with errors():
        count = grace_for(home).vault.refuse(name, purpose, actor=actor())
    out.print(f"refused {count} pending use(s) of {name} for {purpose}", highlight=False)


@secrets_app.command("revoke")
def secrets_revoke(
    name: str = typer.Argument(...),
    purpose: str | None = typer.Option(None, "--purpose", help="Only this purpose (default: all)."),
    home: Path | None = HomeOption,
) -> None:
    """Withdraw approvals of a secret; later uses are refused."""
    with errors():
        count = grace_for(home).vault.revoke(name, purpose, actor=actor())
    out.print(f"revoked {count} approval(s) of {name}", highlight=False)


@secrets_app.command("list")
def secrets_list(as_json: bool = typer.Option(False, "--json"), home: Path | None = HomeOption) -> None:
    """Secrets and their active approvals (never values)."""
    with errors():
        items = grace_for(home).vault.list()
    if as_json:
        emit_json({"secrets": items})
        return
    table = Table(title="secrets")
    for column in ("name", "updated (UTC)", "approved for"):
        table.add_column(column, overflow="fold")
    for i in items:
        approved = ", ".join(
            a["purpose"] + (f" (until {a['expires_at'][:16]})" if a["expires_at"] else "") for a in i["approvals"]
        )
        table.add_row(i["name"], i["updated_at"][:19], approved or "-")
    out.print(table)


@secrets_app.command("pending")
def secrets_pending(as_json: bool = typer.Option(False, "--json"), home: Path | None = HomeOption) -> None:
    """Uses that were refused for lack of approval, with the command that approves each."""
    with errors():
        items = grace_for(home).vault.pending()
    if as_json:
        emit_json({"pending": items})
        return
    if not items:
        out.print("no pending requests")
    for i in items:
        out.print(
            f"{i['name']} for {i['purpose']} (asked by {i['requested_by']} at {i['at'][:19]}): {i['approve']}",
            highlight=False,
        )
