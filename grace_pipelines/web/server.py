"""Running the web app: one server per GRACE_HOME (a lock held for the process's life, so a
second `grace serve` names the running one instead of fighting it), the listening socket,
GRACE_HOME/web/server.json (0600: pid, host, port; removed on exit) for a later CLI to find
the server, and uvicorn in-process with its access log off (no query or token in logs)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grace_pipelines.db.schema import utcnow
from grace_pipelines.errors import GraceError
from grace_pipelines.settings import GraceSettings
from grace_pipelines.web.security import host_header, load_or_create_token, web_dir


class ServerRunning(GraceError):
    """Another `grace serve` holds this GRACE_HOME."""


@dataclass
class Listening:
    home: Path
    host: str
    port: int
    sock: socket.socket
    token: str

    @property
    def url(self) -> str:
        return f"http://{host_header(self.host, self.port)}/"

    @property
    def token_url(self) -> str:
        """The URL to open in a browser (carries the token: print it, never log it)."""
        return f"{self.url}?token={self.token}"


def server_file(home: Path) -> Path:
    return web_dir(home) / "server.json"


def running_server(home: Path) -> dict[str, Any] | None:
    """What server.json says about a live server for `home` (None: none, or a stale file)."""
    try:
        info = json.loads(server_file(home).read_text(encoding="utf-8"))
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info


@contextlib.contextmanager
def listening(home: Path, host: str, port: int) -> Iterator[Listening]:
    """Hold the GRACE_HOME's server lock, listen on host:port (0: any free port) and keep
    server.json while inside; a clear GraceError when another server holds the home or the
    address is taken."""
    folder = web_dir(home)
    lock = os.open(folder / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = running_server(home) or {}
            where = f"pid {info.get('pid', '?')} at {info.get('url', '?')}"
            raise ServerRunning(f"a Grace server is already running for {home}: {where}") from None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise GraceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        sock.set_inheritable(True)
        bound = Listening(Path(home), host, sock.getsockname()[1], sock, load_or_create_token(home))
        path = server_file(home)
        info = {
            "pid": os.getpid(),
            "host": host,
            "port": bound.port,
            "url": bound.url,
            "started_at": utcnow().isoformat(),
        }
        tmp = path.with_name(f".server.json.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info, f, default=str)
        os.replace(tmp, path)
        try:
            yield bound
        finally:
            path.unlink(missing_ok=True)
            sock.close()
    finally:
        os.close(lock)  # releases the lock


class _DropAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def silence_access_log() -> None:
    """uvicorn's request lines carry query strings (search terms) and ?token=: never emit them,
    whatever configured logging since (uvicorn's own `access_log=False` is undone by any later
    dictConfig, which resets `propagate` and `disabled` of existing loggers)."""
    access = logging.getLogger("uvicorn.access")
    access.disabled, access.propagate, access.handlers = True, False, []
    if not any(isinstance(f, _DropAll) for f in access.filters):
        access.addFilter(_DropAll())


def serve(
    settings: GraceSettings,
    *,
    host: str | None = None,
    port: int | None = None,
    grace: Any = None,
    on_ready: Callable[[Listening, Any], None] | None = None,
) -> None:
    """Run the app until stopped (Ctrl-C, SIGTERM, or `server.should_exit = True`); `on_ready`
    gets the address and the uvicorn server once it accepts connections."""
    import uvicorn

    from grace_pipelines.web.app import create_app

    host = host or settings.serve_host
    port = settings.serve_port if port is None else port
    if threading.current_thread() is threading.main_thread():
        # SIGTERM as Ctrl-C's twin, from before server.json exists: uvicorn re-raises a captured
        # SIGTERM once it has shut down, and a SIGTERM while the app is built would otherwise kill
        # the process with the default handler before `listening` removes server.json
        signal.signal(signal.SIGTERM, _interrupt)
    with listening(settings.home, host, port) as bound:
        app = create_app(settings, grace, host=host, port=bound.port)
        config = uvicorn.Config(
            app,
            log_config=None,  # leave logging to the process; uvicorn adds no handler
            access_log=False,  # request lines carry query strings (search terms) and ?token=
            proxy_headers=False,
            server_header=False,
            lifespan="on",
        )

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                silence_access_log()  # again: a later logging.config call may have re-enabled it
                await super().startup(sockets)
                if on_ready is not None and not self.should_exit:
                    on_ready(bound, self)

        Server(config).run(sockets=[bound.sock])


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
