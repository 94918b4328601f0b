"""The control room as a person meets it: `grace dev` (webserver + daemon) on a temporary
GRACE_HOME, in its own process group, reached over HTTP and GraphQL. Kept apart from the browser
assertions so that starting, waiting on and stopping the server is one place, and a stuck or
dead server is reported with the tail of its log."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# quick enough for a test: the inbox sensor every second, files settled after half a second,
# tiny sources launched at once instead of waiting to fill a batch
GRACE_TOML = "inbox_poll_seconds = 1\nsettle_seconds = 0.5\ntiny_batch_wait_s = 0\n"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def grace_command() -> list[str]:
    """The `grace` console script of this interpreter's environment (what a person types)."""
    script = Path(sys.executable).with_name("grace")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from grace_pipelines.cli import main; main()"]


def _descendants(pid: int) -> list[int]:
    """Every live process below `pid` (from /proc), so that children which left the process
    group (the layer refresh `grace dev` starts in a session of its own) are stopped too."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class DevServer:
    """A running `grace dev`: its process, port, GRACE_HOME and log file."""

    process: subprocess.Popen[bytes]
    port: int
    home: Path
    log: Path
    location: str = ""  # the code location's name, once loaded

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def startup_error(self) -> str | None:
        """The first error line of the code server, or a storage race on a fresh instance ("table
        ... already exists"): either way the UI never comes up, so waiting longer is pointless."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return None
        for line in text.splitlines():
            if ("dagster.code_server" in line and "ERROR" in line) or "sqlite3.OperationalError" in line:
                return line.strip()
        return None

    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.loads(response.read())
        if payload.get("errors"):
            raise AssertionError(f"GraphQL error from {self.url}/graphql: {payload['errors']}")
        return payload["data"]

    def runs(self) -> list[dict[str, Any]]:
        """Every run of the instance: id, job, status and tags (a dict)."""
        data = self.graphql("{ runsOrError { ... on Runs { results { runId jobName status tags { key value } } } } }")
        return [{**run, "tags": {t["key"]: t["value"] for t in run["tags"]}} for run in data["runsOrError"]["results"]]

    def wait(
        self, what: str, probe: Callable[[], T | None], timeout: float, every: float = 1.0, starting: bool = False
    ) -> T:
        """Poll `probe` until it returns something truthy; fail naming `what`, the last value
        seen and the server's log when `timeout` passes or the server died (or, `starting`,
        when the code server logged an error: the UI would never come up)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"grace dev exited with {self.process.returncode} while waiting for {what}; "
                    f"log {self.log}:\n{self.log_tail()}"
                )
            broken = self.startup_error() if starting else None
            if broken:
                raise AssertionError(
                    f"grace dev failed while waiting for {what}: {broken}; log {self.log}:\n{self.log_tail()}"
                )
            try:
                last = probe()
            except (OSError, urllib.error.URLError, AssertionError) as exc:
                last = exc
            else:
                if last:
                    return last
            time.sleep(every)
        raise AssertionError(
            f"timed out after {timeout:.0f} s waiting for {what} (last seen: {last!r}); "
            f"log {self.log}:\n{self.log_tail()}"
        )

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM to the process group (and to any descendant that left it), then SIGKILL to
        whatever is still alive after `grace_s`."""
        pid = self.process.pid
        stragglers = _descendants(pid)
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        for child in stragglers:
            _signal(child, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for child in stragglers:
            _signal(child, signal.SIGKILL)
        self.process.wait(timeout=10)


def start_dev_server(home: Path, log: Path) -> DevServer:
    """`grace dev --port <free>` on `home` (DAGSTER_HOME unset, so the instance lives in
    `home/dagster`), in a new session; returns once the webserver answers and the code location
    has loaded (an error loading it fails at once, with the error)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "grace.toml").write_text(GRACE_TOML, encoding="utf-8")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GRACE_") and k not in ("DAGSTER_HOME", "OPENAI_API_KEY")
    }
    env["GRACE_HOME"] = str(home)
    port = free_port()
    sink = log.open("wb")
    process = subprocess.Popen(
        [*grace_command(), "dev", "--port", str(port), "--serve-port", "0"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=sink,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stop() signals all of dagster dev at once
    )
    sink.close()
    server = DevServer(process, port, home, log)
    try:
        server.wait(
            "the webserver (/server_info)", lambda: _answers(f"{server.url}/server_info"), timeout=150, starting=True
        )
        server.location = server.wait(
            "the code location to load", server_location_loaded(server), timeout=120, starting=True
        )
    except BaseException:
        server.stop()
        raise
    return server


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status == 200


def server_location_loaded(server: DevServer) -> Callable[[], str | None]:
    """A probe: the name of the loaded code location, None while loading; an AssertionError
    subclass would be swallowed by `wait`, so a load error is raised as RuntimeError."""

    def probe() -> str | None:
        data = server.graphql(
            "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus"
            " locationOrLoadError { __typename ... on PythonError { message } } } } } }"
        )
        for entry in data["workspaceOrError"]["locationEntries"]:
            if entry["loadStatus"] != "LOADED":
                return None
            loaded = entry["locationOrLoadError"] or {}
            if loaded.get("__typename") == "PythonError":
                raise RuntimeError(f"code location {entry['name']} failed to load: {loaded.get('message')}")
            return entry["name"]
        return None

    return probe
