"""`grace speakers list | name | merge | forget` and `grace export`: who spoke, remembered
across recordings, and a transcript with speakers and timings in the format you take elsewhere.

    grace speakers list [SOURCE]
    grace speakers name call.wav S2 Priya      # that voice is Priya in every recording
    grace speakers merge "Pri" Priya           # two profiles that are one person
    grace speakers forget Priya                # the profile and every embedding of her voice
    grace export call.wav --format srt|vtt|md|json [--out FILE]
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from grace_pipelines.cli.app import HomeOption, actor, app, emit_json, errors, grace_for, out
from grace_pipelines.search.citations import clock

speakers_app = typer.Typer(help="Speakers: voices remembered across recordings.", no_args_is_help=True)
app.add_typer(speakers_app, name="speakers")


@speakers_app.command("list")
def speakers_list(
    source: str | None = typer.Argument(None, help="Only this recording (key, title or path)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    home: Path | None = HomeOption,
) -> None:
    """Each recording's speakers: label, name (named by you, or matched by voice), seconds."""
    with errors():
        grace = grace_for(home)
        rows = grace.speakers(source)
        profiles = [p["name"] for p in grace.db.profiles()]
    if as_json:
        emit_json({"speakers": rows, "profiles": profiles})
        return
    if not rows:
        out.print("no speaker turns yet (recordings get them when they are transcribed)")
        return
    table = Table("recording", "speaker", "name", "how", "seconds", "first heard")
    for r in rows:
        how = r["how"] or ""
        if how == "matched" and r["similarity"] is not None:
            how = f"matched ({r['similarity']:.2f})"
        table.add_row(
            escape(r["title"] or r["source_key"]),
            r["label"],
            escape(r["name"] or "-"),
            how,
            f"{r['seconds']:.0f}",
            clock(r["first_s"]),
        )
    out.print(table)


@speakers_app.command("name")
def speakers_name(
    source: str = typer.Argument(..., help="The recording (key, title or path)."),
    speaker: str = typer.Argument(..., help="Its speaker label, as `grace speakers list` shows it (S1, S2...)."),
    name: str = typer.Argument(..., help="Who it is (as consent names the person)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    home: Path | None = HomeOption,
) -> None:
    """Name a speaker once: that voice is labelled in every past and future recording."""
    with errors():
        done = grace_for(home).name_speaker(source, speaker, name, actor=actor())
    if as_json:
        emit_json(done)
        return
    out.print(
        f"{escape(done['label'])} is {escape(done['name'])}; the voice is heard in {done['recordings']} recording(s)",
        highlight=False,
    )


@speakers_app.command("merge")
def speakers_merge(
    name: str = typer.Argument(..., help="The profile to fold in."),
    into: str = typer.Argument(..., help="The profile that stays."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    home: Path | None = HomeOption,
) -> None:
    """Two voice profiles that are one person."""
    with errors():
        done = grace_for(home).merge_speakers(name, into, actor=actor())
    if as_json:
        emit_json(done)
        return
    out.print(f"merged {escape(done['merged'])} into {escape(done['name'])}", highlight=False)


@speakers_app.command("forget")
def speakers_forget(
    name: str = typer.Argument(..., help="The person whose voice profile goes."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    home: Path | None = HomeOption,
) -> None:
    """Delete a person's voice profile and every embedding of their voice (audited); turns stay, unnamed."""
    with errors():
        done = grace_for(home).forget_speaker(name, actor=actor())
    if as_json:
        emit_json(done)
        return
    out.print(
        f"forgot {escape(done['name'])}: {done['voice_embeddings_deleted']} voice embedding(s) "
        f"in {done['recordings']} recording(s) deleted",
        highlight=False,
    )


@app.command("export")
def export(
    source: str = typer.Argument(..., help="The recording (key, title or path)."),
    fmt: str = typer.Option("md", "--format", "-f", help="srt | vtt | md | json"),
    out_path: Path | None = typer.Option(None, "--out", help="Write here (0600) instead of standard output."),
    home: Path | None = HomeOption,
) -> None:
    """A recording's transcript with speakers and timings (refused without consent)."""
    with errors():
        from grace_pipelines.errors import GraceError

        try:
            text = grace_for(home).export(source, fmt)
        except ValueError as exc:
            raise GraceError(str(exc)) from None
        if out_path is None:
            typer.echo(text, nl=not text.endswith("\n"))
            return
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    out.print(f"wrote {escape(str(out_path))} ({fmt})", highlight=False)
