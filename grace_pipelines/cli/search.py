"""`grace search | ask | reembed | eval | play`: finding what was said, answering, playing the cited second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from grace_pipelines.cli.app import HomeOption, app, emit_json, err, errors, grace_for, out, spinner, warn

# the filters people ask for (search/filters.py), shared by search and ask
SinceOption = typer.Option(None, "--since", help="From: 2026-11-30, '30 Nov', yesterday, 'last week', '6 hours ago'.")
UntilOption = typer.Option(None, "--until", help="Before (exclusive; a day means its end): same forms as --since.")
OriginOption = typer.Option(None, "--origin", help="Only this origin: voice_note, meeting, document, screen, ...")
KindOption = typer.Option(None, "--kind", help="Only this kind: audio | video | document.")
SourceOption = typer.Option(None, "--source", help="Only this source: key, key prefix or file name.")
ByOption = typer.Option("recorded", "--by", help="What --since/--until filter: recorded | dropped.")
SpeakerOption = typer.Option(None, "--speaker", help="Only what this named voice said (see `grace speakers list`).")


def _typed(
    since: str | None,
    until: str | None,
    origin: str | None,
    kind: str | None,
    source: str | None,
    by: str,
    speaker: str | None,
) -> dict[str, Any]:
    """The filter options as typed: what the fast path sends and `_filters` reads."""
    return {
        "since": since,
        "until": until,
        "origin": origin,
        "kind": kind,
        "source": source,
        "by": by,
        "speaker": speaker,
    }


def _filters(grace: Any, typed: dict[str, Any]) -> Any:
    """The typed filters read and checked (search/filters.parse_filters)."""
    from grace_pipelines.db.schema import utcnow
    from grace_pipelines.search.filters import parse_filters

    t = typed
    return parse_filters(
        t["since"],
        t["until"],
        t["origin"],
        t["kind"],
        t["source"],
        t["by"],
        t["speaker"],
        now=utcnow(),
        tz=grace.settings.tz,
    )


@app.command()
def search(
    query: str = typer.Argument(..., help="What you are looking for, in your own words."),
    k: int = typer.Option(5, "-k", "--k", help="How many results."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid | vector | keyword"),
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    origin: str | None = OriginOption,
    kind: str | None = KindOption,
    source: str | None = SourceOption,
    by: str = ByOption,
    speaker: str | None = SpeakerOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    home: Path | None = HomeOption,
) -> None:
    """Find the passages that answer QUERY, with the recording and second (or lines) they come from."""
    from grace_pipelines.cli import fastpath

    with errors():
        typed = _typed(since, until, origin, kind, source, by, speaker)
        found = fastpath.search(home, query, k=k, mode=mode, **typed)
        if found is None:  # no server for this GRACE_HOME: in-process
            from grace_pipelines.web.wire import search_json  # the same JSON as GET /api/v1/search

            grace = grace_for(home)
            filters = _filters(grace, typed)
            results = grace.search(query, k=k, mode=mode, filters=filters)
            found = search_json(query, results, grace.search_warnings, filters)
    warn(found["skipped"])
    if as_json:
        emit_json(found)
        return
    if not found["results"]:
        out.print("nothing found")
        return
    for r in found["results"]:
        out.print(f"[bold]{r['rank']}.[/] [cyan]{r['citation']}[/]  score {r['score']:.4f}", highlight=False)
        out.print(f"   {r['text']}", highlight=False, markup=False)


@app.command()
def ask(
    question: str = typer.Argument(..., help="Your question, in your own words."),
    k: int = typer.Option(5, "-k", "--k", help="How many passages to consider."),
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    origin: str | None = OriginOption,
    kind: str | None = KindOption,
    source: str | None = SourceOption,
    by: str = ByOption,
    speaker: str | None = SpeakerOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    home: Path | None = HomeOption,
) -> None:
    """Answer in a few sentences with numbered citations ([1], [2]...) (extractive when no chat model is set)."""
    from grace_pipelines.cli import fastpath

    with errors():
        typed = _typed(since, until, origin, kind, source, by, speaker)
        answer = fastpath.ask(home, question, k=k, **typed)
        if answer is None:  # no server for this GRACE_HOME: in-process
            from grace_pipelines.web.wire import ask_json  # the same JSON as POST /api/v1/ask

            grace = grace_for(home)
            filters = _filters(grace, typed)
            answer = ask_json(grace.ask(question, k=k, filters=filters), grace.search_warnings, filters)
    warn(answer["skipped"])
    if as_json:
        emit_json(answer)
        return
    out.print(answer["answer"], highlight=False, markup=False)
    if answer["citations"]:
        out.print("")
        for c in answer["citations"]:
            out.print(f"[{c['n']}] {c['citation']}", highlight=False, markup=False)


@app.command()
def reembed(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    home: Path | None = HomeOption,
) -> None:
    """After changing the embedding model: re-embed what the old model indexed (nothing is re-transcribed)."""
    with errors():
        grace = grace_for(home)
        with spinner(quiet=as_json) as progress:
            task = progress.add_task("re-embedding", total=None)
            done = grace.reembed(
                progress=lambda _key, title: progress.update(task, description=f"re-embedding {title}")
            )
    failed = sorted(k for k, ok in done.items() if not ok)
    if as_json:
        emit_json({"reembedded": sorted(k for k, ok in done.items() if ok), "failed": failed})
    else:
        out.print(
            f"re-embedded {len(done) - len(failed)} source(s)" + (f"; failed: {', '.join(failed)}" if failed else "")
        )
    if failed:
        raise typer.Exit(2)


@app.command("eval")
def eval_(
    set_path: Path = typer.Option(
        Path("tests/eval"), "--set", help="Eval set: a questions.yaml or the folder holding it."
    ),
    home: Path | None = typer.Option(
        None,
        "--home",
        help="Where to ingest the corpus (kept and reused next time); default a temporary folder, never GRACE_HOME.",
    ),
    fail_under: float | None = typer.Option(None, "--fail-under", help="Exit 1 when hybrid recall@5 is below this."),
    misses: bool = typer.Option(False, "--misses", help="Also list the questions hybrid search did not answer first."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Retrieval quality: recall@1, recall@5 and MRR per search mode on an evaluation set."""
    from grace_pipelines.search.evaluation import evaluate

    with errors():
        with spinner(quiet=as_json) as progress:
            task = progress.add_task("ingesting the eval corpus", total=None)
            report = evaluate(
                set_path,
                home=home,
                progress=lambda _key, title: progress.update(task, description=f"ingesting {title}"),
            )
    hybrid = report["modes"]["hybrid"]
    if as_json:
        emit_json(report)
    else:
        table = Table(
            title=f"retrieval on {report['questions']} questions over {report['sources']} sources "
            f"({report['spoken_sources']} spoken)"
        )
        for column in ("mode", "recall@1", "recall@5", "MRR", "moment@1", "p50 ms"):
            table.add_column(column, justify="left" if column == "mode" else "right")
        for m in report["modes"].values():
            moment = "-" if m["moment_at_1"] is None else f"{m['moment_at_1']:.3f}"
            table.add_row(
                m["mode"],
                f"{m['recall_at_1']:.3f}",
                f"{m['recall_at_5']:.3f}",
                f"{m['mrr']:.3f}",
                moment,
                f"{m['p50_ms']:.0f}",
            )
        out.print(table)
        styles = Table(title="by question style (recall@1 / recall@5 / MRR)")
        styles.add_column("mode")
        names = sorted({name for m in report["modes"].values() for name in m["by_style"]})
        for name in names:
            styles.add_column(f"{name} ({hybrid['by_style'][name]['questions']})", justify="right")
        for m in report["modes"].values():
            styles.add_row(
                m["mode"],
                *("{recall_at_1:.2f} / {recall_at_5:.2f} / {mrr:.2f}".format(**m["by_style"][name]) for name in names),
            )
        out.print(styles)
        out.print(
            "moment@1: share of spoken questions whose top result's cited seconds land on the answer", style="dim"
        )
        if misses:
            for miss in report["misses"]["hybrid"]:
                out.print(
                    f"{miss['id']} rank {miss['rank'] or '-'}: {miss['question']}  expected {miss['expected']}, "
                    f"top {miss['top']}",
                    highlight=False,
                    markup=False,
                )
    if fail_under is not None and hybrid["recall_at_5"] < fail_under:
        err.print(f"[bold red]hybrid recall@5 {hybrid['recall_at_5']:.3f} is below {fail_under}[/]")
        raise typer.Exit(1)


@app.command()
def play(
    citation: str = typer.Argument(..., help="A citation as search prints it, e.g. 'standup.mp3 @ 00:03-00:09'."),
    out_path: Path | None = typer.Option(None, "--out", help="Write the clip (WAV) here instead of playing it."),
    context: float = typer.Option(1.0, "--context", help="Seconds of context either side."),
    home: Path | None = HomeOption,
) -> None:
    """Hear the exact moment: decode just the cited window (with context) and play or save it."""
    from grace_pipelines.audio.clip import play_wav

    with errors():
        wav, row = grace_for(home).clip(citation, context_s=context)
    if out_path is not None:
        out_path.write_bytes(wav)
        out.print(f"wrote {out_path} ({len(wav)} bytes) from {row.title}", highlight=False)
        return
    try:
        played = play_wav(wav)
    except RuntimeError as exc:
        err.print(f"[bold red]error:[/] {exc}; use --out clip.wav", highlight=False)
        raise typer.Exit(1) from None
    if not played:
        err.print(
            "[bold red]error:[/] no audio player found (ffplay, aplay, paplay); use --out clip.wav", highlight=False
        )
        raise typer.Exit(1)
