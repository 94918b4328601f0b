"""`grace`: the command line on top of the `Grace` API.

Exit codes: 0 done, 1 a user error with a clear message, 2 a system failure. `--json` prints
exactly one JSON object on stdout; human output goes through rich (to stderr for progress).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
import signal
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from grace_pipelines.api import SYSTEM_FAILURE, Grace, GraceError
from grace_pipelines.governance.consent import ConsentError, parse_ttl
from grace_pipelines.ingest.media import safe_text
from grace_pipelines.settings import SettingsError
from grace_pipelines.db.schema import utcnow

app = typer.Typer(help="Grace: recordings and documents become searchable, cited knowledge.", no_args_is_help=True, add_completion=False)
consent_app = typer.Typer(help="Grant, revoke and list consent.", no_args_is_help=True)
app.add_typer(consent_app, name="consent")

out = Console()
err = Console(stderr=True)

HomeOption = typer.Option(None, "--home", envvar="GRACE_HOME", help="GRACE_HOME folder (default ./.grace).")


def _grace(home: Optional[Path]) -> Grace:
    try:
        return Grace(home)
    except SettingsError as exc:
        raise GraceError(str(exc)) from None


def _fail(exc: BaseException) -> None:
    from grace_pipelines.governance.vault import VaultError, VaultRefused

    if isinstance(exc, (GraceError, ConsentError, SettingsError, VaultError, VaultRefused)):
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(1)
    err.print(f"[bold red]system failure:[/] {type(exc).__name__}: {exc}", highlight=False)
    raise typer.Exit(2)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn any failure inside a command into the contract's exit code and a clear message."""
    try:
        yield
    except typer.Exit:
        raise
    except Exception as exc:
        _fail(exc)


def _warn(lines: list[str]) -> None:
    for line in lines:
        err.print(f"[bold yellow]warning:[/] {escape(line)}", highlight=False)


def _emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=str) + "\n")


@app.command()
def init(home: Optional[Path] = HomeOption) -> None:
    """Create GRACE_HOME with its inbox, store, index and Dagster instance (idempotent)."""
    with _errors():
        path = _grace(home).init()
    out.print(f"Grace home ready at [bold]{path}[/]")


REFUSED_STATES = ("refused", "ignored", "quarantined")  # an input that was not ingested: exit 1


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files to ingest (a NAME.consent.json beside one travels with it)."),
    origin: Optional[str] = typer.Option(None, help="voice_note, meeting, document, screen, api, manual, schedule"),
    wait: bool = typer.Option(False, "--wait", help="Run them through the pipeline now and report each."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    home: Optional[Path] = HomeOption,
) -> None:
    """Drop files into the inbox; with --wait, run the Dagster asset graph for them to the end.

    Every path is reported with its outcome (refused, ignored, quarantined, or its source's
    state). Exit 1 when any input was refused; 2 on a system failure."""
    with _errors():
        grace = _grace(home)
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), console=err, transient=True, disable=as_json or not wait,
        ) as progress:
            task = progress.add_task("ingesting", total=len(paths))

            def step(key: str, title: str) -> None:
                progress.update(task, description=f"processing {escape(safe_text(title, 80))}")
                progress.advance(task)

            outcomes = grace.ingest(paths, origin=origin, wait=wait, progress=step)
    given = [os.fsdecode(p) for p in paths] if len(paths) == len(outcomes) else [None] * len(outcomes)
    if as_json:
        _emit_json({"sources": [{"path": path, **o.to_dict()} for path, o in zip(given, outcomes)]})
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
    home: Optional[Path] = HomeOption,
) -> None:
    """Each source's state (awaiting_consent, processing, searchable, failed, quarantined) and why."""
    if htm:
        with _errors():
            report = _grace(home).htm(window_s=window * 60)
        if as_json:
            _emit_json(report)
        else:
            from rich.markdown import Markdown

            out.print(Markdown(report["markdown"]))
        return
    with _errors():
        items = _grace(home).status()
    if as_json:
        _emit_json({"sources": [i.to_dict() for i in items]})
    else:
        _status_table(items)


def _status_table(items: list[Any]) -> None:
    table = Table(title="sources")
    for column in ("source", "title", "kind", "origin", "state", "why"):
        table.add_column(column, overflow="fold")
    colors = {"searchable": "green", "awaiting_consent": "yellow", "failed": "red", "quarantined": "magenta",
              "refused": "red", "ignored": "magenta"}
    for item in items:
        color = colors.get(item.state, "cyan")
        # titles, reasons and party names are user data: no markup, no control characters
        cells = [escape(safe_text(v or "-", 2000)) for v in (item.source_key, item.title, item.kind, item.origin)]
        table.add_row(*cells, f"[{color}]{escape(item.state)}[/]", escape(safe_text(item.why, 4000)))
    out.print(table)


@app.command()
def search(
    query: str = typer.Argument(..., help="What you are looking for, in your own words."),
    k: int = typer.Option(5, "-k", "--k", help="How many results."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid | vector | keyword"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    home: Optional[Path] = HomeOption,
) -> None:
    """Find the passages that answer QUERY, with the recording and second (or lines) they come from."""
    with _errors():
        grace = _grace(home)
        results = grace.search(query, k=k, mode=mode)
    _warn(grace.search_warnings)
    if as_json:
        keys = ("rank", "score", "source_key", "title", "kind", "start_s", "end_s", "text", "citation")
        _emit_json({"query": query, "results": [{k_: r.to_dict()[k_] for k_ in keys} for r in results],
                    "skipped": grace.search_warnings})
        return
    if not results:
        out.print("nothing found")
        return
    for r in results:
        out.print(f"[bold]{r.rank}.[/] [cyan]{r.citation}[/]  score {r.score:.4f}", highlight=False)
        out.print(f"   {r.text}", highlight=False, markup=False)


@app.command()
def ask(
    question: str = typer.Argument(..., help="Your question, in your own words."),
    k: int = typer.Option(5, "-k", "--k", help="How many passages to consider."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    home: Optional[Path] = HomeOption,
) -> None:
    """Answer in a few sentences with [n] citations (extractive when no chat model is set)."""
    with _errors():
        grace = _grace(home)
        answer = grace.ask(question, k=k)
    _warn(grace.search_warnings)
    if as_json:
        _emit_json(answer.to_dict())
        return
    out.print(answer.answer, highlight=False, markup=False)
    if answer.citations:
        out.print("")
        for c in answer.citations:
            out.print(f"[{c.n}] {c.citation}", highlight=False, markup=False)


@app.command()
def reembed(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    home: Optional[Path] = HomeOption,
) -> None:
    """After changing the embedding model: re-embed what the old model indexed (nothing is re-transcribed)."""
    with _errors():
        grace = _grace(home)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                      transient=True, disable=as_json) as progress:
            task = progress.add_task("re-embedding", total=None)
            done = grace.reembed(progress=lambda _key, title: progress.update(task, description=f"re-embedding {title}"))
    failed = sorted(k for k, ok in done.items() if not ok)
    if as_json:
        _emit_json({"reembedded": sorted(k for k, ok in done.items() if ok), "failed": failed})
    else:
        out.print(f"re-embedded {len(done) - len(failed)} source(s)" + (f"; failed: {', '.join(failed)}" if failed else ""))
    if failed:
        raise typer.Exit(2)


@app.command("eval")
def eval_(
    set_path: Path = typer.Option(Path("tests/eval"), "--set", help="Eval set: a questions.yaml or the folder holding it."),
    home: Optional[Path] = typer.Option(
        None, "--home", help="Where to ingest the corpus (kept and reused next time); default a temporary folder, never GRACE_HOME."
    ),
    fail_under: Optional[float] = typer.Option(None, "--fail-under", help="Exit 1 when hybrid recall@5 is below this."),
    misses: bool = typer.Option(False, "--misses", help="Also list the questions hybrid search did not answer first."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Retrieval quality: recall@1, recall@5 and MRR per search mode on an evaluation set."""
    from grace_pipelines.search.evaluation import evaluate

    with _errors():
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                      transient=True, disable=as_json) as progress:
            task = progress.add_task("ingesting the eval corpus", total=None)
            report = evaluate(set_path, home=home, progress=lambda _key, title: progress.update(task, description=f"ingesting {title}"))
    hybrid = report["modes"]["hybrid"]
    if as_json:
        _emit_json(report)
    else:
        table = Table(title=f"retrieval on {report['questions']} questions over {report['sources']} sources "
                            f"({report['spoken_sources']} spoken)")
        for column in ("mode", "recall@1", "recall@5", "MRR", "moment@1", "p50 ms"):
            table.add_column(column, justify="left" if column == "mode" else "right")
        for m in report["modes"].values():
            moment = "-" if m["moment_at_1"] is None else f"{m['moment_at_1']:.3f}"
            table.add_row(m["mode"], f"{m['recall_at_1']:.3f}", f"{m['recall_at_5']:.3f}", f"{m['mrr']:.3f}", moment, f"{m['p50_ms']:.0f}")
        out.print(table)
        styles = Table(title="by question style (recall@1 / recall@5 / MRR)")
        styles.add_column("mode")
        names = sorted({name for m in report["modes"].values() for name in m["by_style"]})
        for name in names:
            styles.add_column(f"{name} ({hybrid['by_style'][name]['questions']})", justify="right")
        for m in report["modes"].values():
            styles.add_row(m["mode"], *(
                "{recall_at_1:.2f} / {recall_at_5:.2f} / {mrr:.2f}".format(**m["by_style"][name]) for name in names
            ))
        out.print(styles)
        out.print("moment@1: share of spoken questions whose top result's cited seconds land on the answer", style="dim")
        if misses:
            for miss in report["misses"]["hybrid"]:
                out.print(f"{miss['id']} rank {miss['rank'] or '-'}: {miss['question']}  expected {miss['expected']}, "
                          f"top {miss['top']}", highlight=False, markup=False)
    if fail_under is not None and hybrid["recall_at_5"] < fail_under:
        err.print(f"[bold red]hybrid recall@5 {hybrid['recall_at_5']:.3f} is below {fail_under}[/]")
        raise typer.Exit(1)


@app.command()
def play(
    citation: str = typer.Argument(..., help="A citation as search prints it, e.g. 'standup.mp3 @ 00:03-00:09'."),
    out_path: Optional[Path] = typer.Option(None, "--out", help="Write the clip (WAV) here instead of playing it."),
    context: float = typer.Option(1.0, "--context", help="Seconds of context either side."),
    home: Optional[Path] = HomeOption,
) -> None:
    """Hear the exact moment: decode just the cited window (with context) and play or save it."""
    from grace_pipelines.audio.clip import play_wav

    with _errors():
        wav, row = _grace(home).clip(citation, context_s=context)
    if out_path is not None:
        out_path.write_bytes(wav)
        out.print(f"wrote {out_path} ({len(wav)} bytes) from {row.title}", highlight=False)
        return
    try:
        played = play_wav(wav)
    except RuntimeError as exc:
        err.print(f"[bold red]error:[/] {exc}; use --out clip.wav", highlight=False)
        raise typer.Exit(1)
    if not played:
        err.print("[bold red]error:[/] no audio player found (ffplay, aplay, paplay); use --out clip.wav", highlight=False)
        raise typer.Exit(1)


@consent_app.command("grant")
def consent_grant(
    source: str = typer.Argument(..., help="Source key, or the file name of a drop."),
    party: str = typer.Option(..., "--party", help="Who consents."),
    scope: str = typer.Option(..., "--scope", help="transcribe | index | all"),
    wait: bool = typer.Option(False, "--wait", help="Run the work this releases now."),
    ttl: Optional[str] = typer.Option(None, "--ttl", help="Consent lasts this long (90m, 12h, 30d, 2w)."),
    home: Optional[Path] = HomeOption,
) -> None:
    """Record a grant; waiting work is launched by consent_sensor (or now, with --wait)."""
    with _errors():
        grace = _grace(home)
        expires = utcnow() + parse_ttl(ttl) if ttl else None
        grace.grant(source, party, scope, actor=_actor(), wait=wait, expires_at=expires)
        row = grace.resolve(source)
        state = grace.status_of(row.key)
    out.print(f"granted {scope} for {row.title} by {party}; now {state.state}: {state.why}", highlight=False)


@consent_app.command("revoke")
def consent_revoke(
    source: str = typer.Argument(..., help="Source key, or the file name of a drop."),
    party: str = typer.Option(..., "--party"),
    scope: str = typer.Option(..., "--scope", help="transcribe | index | all"),
    wait: bool = typer.Option(False, "--wait", help="Run the purge to completion now."),
    home: Optional[Path] = HomeOption,
) -> None:
    """Record a revocation: search stops returning the source at once, and purge_job removes
    everything derived (consent_sensor launches it; --wait runs it now)."""
    with _errors():
        grace = _grace(home)
        grace.revoke(source, party, scope, actor=_actor(), wait=wait)
        row = grace.resolve(source)
        status = grace.status_of(row.key)
    out.print(f"revoked {scope} for {row.title} by {party}; now {status.state}: {status.why}", highlight=False)


@app.command()
def purge(
    source: str = typer.Argument(..., help="Source key, or the file name of a drop."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Runs purge_job to completion (always)."),
    original: bool = typer.Option(False, "--original", help="Delete the raw recording too."),
    as_json: bool = typer.Option(False, "--json"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Purge everything derived from a source (transcript, chunks, vectors, index entries)."""
    with _errors():
        receipt = _grace(home).purge(source, reason="purge requested from the CLI", remove_original=original or None)
    if as_json:
        _emit_json({"receipt": receipt})
    else:
        out.print(f"purged {source}: {json.dumps(receipt)}", highlight=False, markup=False)


@consent_app.command("list")
def consent_list(
    pending: bool = typer.Option(False, "--pending", help="Only what still misses someone's grant."),
    as_json: bool = typer.Option(False, "--json"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Per source and scope: participants, who granted and who is missing."""
    with _errors():
        items = _grace(home).consent_list(pending=pending)
    if as_json:
        _emit_json({"consent": items})
        return
    table = Table(title="consent")
    for column in ("source", "title", "scope", "granted", "missing"):
        table.add_column(column, overflow="fold")
    for i in items:
        table.add_row(i["source_key"], i["title"], i["scope"], ", ".join(i["granted"]) or "-", ", ".join(i["missing"]) or "-")
    out.print(table)


keys_app = typer.Typer(help="Key-encryption keys: rotate, status, verify.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")


@keys_app.command("rotate")
def keys_rotate(as_json: bool = typer.Option(False, "--json"), home: Optional[Path] = HomeOption) -> None:
    """New key, re-wrap every blob's data key, verify all, retire the old key (resumable)."""
    with _errors():
        report = _grace(home).rotate_keys()
    if as_json:
        _emit_json({"rotation": report})
        return
    out.print(
        f"active key {report['new_key_id']}: {report['rewrapped']} of {report['blobs']} blobs re-wrapped, "
        f"{report['verified']} verified, retired {', '.join(report['retired']) or 'none'} in {report['seconds']:.2f} s",
        highlight=False,
    )


@keys_app.command("status")
def keys_status(as_json: bool = typer.Option(False, "--json"), home: Optional[Path] = HomeOption) -> None:
    """Keys, their state and age, and how many blobs each wraps."""
    with _errors():
        report = _grace(home).key_status()
    if as_json:
        _emit_json({"keys": report})
        return
    table = Table(title="keys")
    for column in ("id", "state", "created (UTC)", "age (days)", "blobs"):
        table.add_column(column)
    for key in report["keys"]:
        table.add_row(key["id"], key["state"], str(key["created_at"])[:19], f"{key['age_days']:.1f}", str(key["blobs"]))
    out.print(table)


@keys_app.command("verify")
def keys_verify(as_json: bool = typer.Option(False, "--json"), home: Optional[Path] = HomeOption) -> None:
    """Decrypt every blob; exit 2 naming the ones that do not."""
    with _errors():
        report = _grace(home).verify_keys()
    if as_json:
        _emit_json({"verify": report})
    else:
        out.print(f"{report['verified']} of {report['total']} blobs decrypt", highlight=False)
        for failure in report["failures"]:
            err.print(f"[red]unreadable:[/] {failure['name']}: {failure['reason']}", highlight=False)
    if report["failures"]:
        raise typer.Exit(2)


@audit_app.command("verify")
def audit_verify(as_json: bool = typer.Option(False, "--json"), home: Optional[Path] = HomeOption) -> None:
    """Check the hash chain; exit 2 naming each edited, deleted, inserted or reordered entry."""
    with _errors():
        report = _grace(home).audit_verify()
    if as_json:
        _emit_json({"audit": report})
    elif report["ok"]:
        out.print(f"audit log intact: {report['entries']} entries, head {report.get('head_hash', '')[:16]}", highlight=False)
    else:
        for problem in report["problems"]:
            err.print(f"[red]{problem['kind']}[/] entry {problem.get('seq')}: {problem['detail']}", highlight=False)
    if not report["ok"]:
        raise typer.Exit(2)


@audit_app.command("tail")
def audit_tail(
    n: int = typer.Option(20, "-n", help="How many entries."),
    as_json: bool = typer.Option(False, "--json"),
    home: Optional[Path] = HomeOption,
) -> None:
    """The latest audit entries."""
    with _errors():
        entries = _grace(home).audit_tail(n)
    if as_json:
        _emit_json({"entries": entries})
        return
    table = Table(title="audit log")
    for column in ("seq", "at (UTC)", "actor", "action", "subject"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(str(e["seq"]), str(e["at"])[:19], e["actor"], e["action"], e["subject"])
    out.print(table)


secrets_app = typer.Typer(help="The vault: credentials used only with an approval for a purpose.", no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")


@secrets_app.command("set")
def secrets_set(
    name: str = typer.Argument(..., help="Secret name, e.g. openai."),
    home: Optional[Path] = HomeOption,
) -> None:
    """Store a secret; the value comes from a hidden prompt or standard input, never argv."""
    with _errors():
        grace = _grace(home)
        if sys.stdin.isatty():
            value = typer.prompt(f"value for {name}", hide_input=True, confirmation_prompt=True)
        else:
            value = sys.stdin.readline().rstrip("\r\n")
        grace.vault.set(name, value, actor=_actor())
    out.print(f"stored secret {name} (sealed); approve a use with: grace secrets approve {name} --purpose PURPOSE", highlight=False)


@secrets_app.command("approve")
def secrets_approve(
    name: str = typer.Argument(...),
    purpose: str = typer.Option(..., "--purpose", help="e.g. embedding, transcription"),
    ttl: Optional[str] = typer.Option(None, "--ttl", help="Approval lasts this long (12h, 30d, ...)."),
    home: Optional[Path] = HomeOption,
) -> None:
    """Allow a secret to be used for one purpose (optionally for a limited time)."""
    with _errors():
        expires = utcnow() + parse_ttl(ttl) if ttl else None
        _grace(home).vault.approve(name, purpose, actor=_actor(), expires_at=expires)
    out.print(f"approved {name} for {purpose}" + (f" until {expires:%Y-%m-%d %H:%M} UTC" if expires else ""), highlight=False)


@secrets_app.command("revoke")
def secrets_revoke(
    name: str = typer.Argument(...),
    purpose: Optional[str] = typer.Option(None, "--purpose", help="Only this purpose (default: all)."),
    home: Optional[Path] = HomeOption,
) -> None:
    """Withdraw approvals of a secret; later uses are refused."""
    with _errors():
        count = _grace(home).vault.revoke(name, purpose, actor=_actor())
    out.print(f"revoked {count} approval(s) of {name}", highlight=False)


@secrets_app.command("list")
def secrets_list(as_json: bool = typer.Option(False, "--json"), home: Optional[Path] = HomeOption) -> None:
    """Secrets and their active approvals (never values)."""
    with _errors():
        items = _grace(home).vault.list()
    if as_json:
        _emit_json({"secrets": items})
        return
    table = Table(title="secrets")
    for column in ("name", "updated (UTC)", "approved for"):
        table.add_column(column, overflow="fold")
    for i in items:
        approved = ", ".join(a["purpose"] + (f" (until {a['expires_at'][:16]})" if a["expires_at"] else "") for a in i["approvals"])
        table.add_row(i["name"], i["updated_at"][:19], approved or "-")
    out.print(table)


@secrets_app.command("pending")
def secrets_pending(as_json: bool = typer.Option(False, "--json"), home: Optional[Path] = HomeOption) -> None:
    """Uses that were refused for lack of approval, with the command that approves each."""
    with _errors():
        items = _grace(home).vault.pending()
    if as_json:
        _emit_json({"pending": items})
        return
    if not items:
        out.print("no pending requests")
    for i in items:
        out.print(f"{i['name']} for {i['purpose']} (asked by {i['requested_by']} at {i['at'][:19]}): {i['approve']}", highlight=False)


@app.command()
def doctor(
    repair: bool = typer.Option(False, "--repair", help="Fix what is found (mark dead runs failed, free slots, resume, chmod)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    home: Optional[Path] = HomeOption,
) -> None:
    """Report (and with --repair fix) what crashes left: dead runs, pool slots, stuck sources,
    unfinished purges, temporary files, and files others can read. Exit 1 if problems remain."""
    with _errors():
        report = _grace(home).doctor(repair=repair)
    if as_json:
        _emit_json(report)
    else:
        sections = [("dead runs", "dead_runs"), ("pool slots of finished or dead runs", "slots"),
                    ("stuck sources", "stuck_sources"), ("unfinished purges", "unfinished_purges"),
                    ("temporary files", "temp_files"), ("readable by others", "permissions")]
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
    home: Optional[Path] = HomeOption,
) -> None:
    """Start the Dagster web UI and daemon on 127.0.0.1 for GRACE_HOME."""
    with _errors():
        grace = _grace(home)
        grace.init()
    env = dict(os.environ)
    env["GRACE_HOME"] = str(grace.settings.home)
    env.setdefault("DAGSTER_HOME", str(grace.settings.dagster_home))
    # A shell's ignored signals would be inherited; restore defaults so Ctrl-C/SIGTERM work.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    argv = [sys.executable, "-m", "dagster", "dev", "-m", "grace_pipelines.definitions", "-h", "127.0.0.1", "-p", str(port)]
    err.print(f"Dagster UI on http://127.0.0.1:{port} (GRACE_HOME={grace.settings.home})")
    os.execvpe(argv[0], argv, env)


def _actor() -> str:
    try:
        import getpass

        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def main() -> None:
    """The `grace` entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
