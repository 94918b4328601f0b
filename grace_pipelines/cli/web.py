"""`grace serve`: the web app and HTTP API on 127.0.0.1, one warm process for a GRACE_HOME."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from grace_pipelines.cli.app import HomeOption, app, err, errors, grace_for

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command()
def serve(
    port: int | None = typer.Option(None, "--port", help="Port (default serve_port, 8765; 0: any free port)."),
    host: str | None = typer.Option(None, "--host", help="Address to bind (default 127.0.0.1)."),
    print_url: bool = typer.Option(
        False, "--print-url", help="Only print the URL it serves (with its token) and exit; serve nothing."
    ),
    exit_with: int | None = typer.Option(None, "--exit-with", hidden=True, help="Stop when this parent exits."),
    home: Path | None = HomeOption,
) -> None:
    """Run the web app and HTTP API (/api/v1, docs at /api/docs) with the models and index kept
    warm. Prints a URL carrying the access token (kept in GRACE_HOME/web/token, 0600)."""
    if print_url:
        with errors():
            sys.stdout.write(url_for(grace_for(home).settings, host=host, port=port) + "\n")
        return
    from grace_pipelines.web.server import Listening
    from grace_pipelines.web.server import serve as run

    if exit_with is not None:
        stop_with_parent(exit_with)

    def ready(bound: Listening, _server: Any) -> None:
        # the token goes to stdout only, never to a log
        sys.stdout.write(f"Grace is serving {bound.home}\n  open: {bound.token_url}\n  API:  {bound.url}api/docs\n")
        sys.stdout.flush()

    with errors():
        grace = grace_for(home)
        chosen = host or grace.settings.serve_host
        if chosen not in LOOPBACK:
            err.print(f"[bold yellow]warning:[/] listening on {chosen}: reachable from other machines", highlight=False)
        try:
            run(grace.settings, host=chosen, port=port, grace=grace, on_ready=ready)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: a normal stop, after server.json is removed
            err.print("stopped", highlight=False)


def url_for(settings: Any, *, host: str | None = None, port: int | None = None) -> str:
    """The token URL `grace serve` serves for these settings (the token is created if missing)."""
    from grace_pipelines.web.security import host_header, load_or_create_token

    chosen = host or settings.serve_host
    chosen = "127.0.0.1" if chosen in ("0.0.0.0", "") else "::1" if chosen == "::" else chosen
    token = load_or_create_token(settings.home)
    return f"http://{host_header(chosen, settings.serve_port if port is None else port)}/?token={token}"


def stop_with_parent(parent: int, every_s: float = 1.0) -> None:
    """SIGTERM to this process once `parent` is no longer its parent (it exited): `grace dev`
    starts `grace serve` as its child, and a control room that stops takes the web app with it,
    whichever way it stopped (Ctrl-C reaches both; a SIGTERM or kill -9 to dagster dev does not)."""
    import os
    import signal
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os.kill(os.getpid(), signal.SIGTERM)  # the server's own SIGTERM path: server.json removed

    threading.Thread(target=watch, name="grace-exit-with-parent", daemon=True).start()
