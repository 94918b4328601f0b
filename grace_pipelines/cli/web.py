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
    home: Path | None = HomeOption,
) -> None:
    """Run the web app and HTTP API (/api/v1, docs at /api/docs) with the models and index kept
    warm. Prints a URL carrying the access token (kept in GRACE_HOME/web/token, 0600)."""
    from grace_pipelines.web.server import Listening
    from grace_pipelines.web.server import serve as run

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
