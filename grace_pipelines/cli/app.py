"""`grace`: the command line on top of the `Grace` API.

Exit codes: 0 done, 1 a user error with a clear message, 2 a system failure. `--json` prints
exactly one JSON object on stdout; human output goes through rich (to stderr for progress).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from grace_pipelines.errors import GraceError

if TYPE_CHECKING:  # the facade (Dagster, LanceDB, pydantic-settings) loads inside the commands
    from grace_pipelines.api import Grace

app = typer.Typer(
    help="Grace: recordings and documents become searchable, cited knowledge.",
    no_args_is_help=True,
    add_completion=False,
)

out = Console()
err = Console(stderr=True)

HomeOption = typer.Option(None, "--home", envvar="GRACE_HOME", help="GRACE_HOME folder (default ./.grace).")


def grace_for(home: Path | None) -> Grace:
    from grace_pipelines.api import Grace
    from grace_pipelines.settings import SettingsError

    try:
        return Grace(home)
    except SettingsError as exc:
        raise GraceError(str(exc)) from None


def fail(exc: BaseException) -> None:
    user = isinstance(exc, GraceError)
    if not user:
        from grace_pipelines.governance.consent import ConsentError
        from grace_pipelines.governance.vault import VaultError, VaultRefused
        from grace_pipelines.settings import SettingsError

        user = isinstance(exc, (ConsentError, SettingsError, VaultError, VaultRefused))
    if user:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(1)
    err.print(f"[bold red]system failure:[/] {type(exc).__name__}: {exc}", highlight=False)
    raise typer.Exit(2)


@contextmanager
def errors() -> Iterator[None]:
    """Turn any failure inside a command into the contract's exit code and a clear message."""
    try:
        yield
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - the CLI contract: every failure becomes exit 1 or 2
        fail(exc)


def warn(lines: list[str]) -> None:
    for line in lines:
        err.print(f"[bold yellow]warning:[/] {escape(line)}", highlight=False)


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=str) + "\n")


def actor() -> str:
    try:
        import getpass

        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user database entry (a container): still an actor
        return "cli"


def main() -> None:
    """The `grace` entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()


def spinner(*, quiet: bool) -> Progress:
    """A transient spinner with elapsed time on stderr (hidden for --json)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet,
    )
