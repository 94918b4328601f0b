"""`grace serve`'s server for real: uvicorn on a free loopback port in a thread, server.json
(0600) while it runs and gone after, a second server on the same GRACE_HOME refused with a
message naming the running one, and logs that carry neither the query nor the token."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from grace_pipelines.cli import app as cli
from grace_pipelines.web.server import ServerRunning, listening, running_server

from ..conftest import serving
from .conftest import Served

CLIENT_LOGGERS = ("httpx", "httpcore")  # the test's own client logs its URLs; the server must not


@pytest.fixture
def live(served: Served, caplog: pytest.LogCaptureFixture) -> Iterator[dict[str, Any]]:
    caplog.set_level(logging.DEBUG)
    with serving(served.grace) as state:
        yield state


def test_server_json_single_instance_and_clean_logs(served: Served, live: dict[str, Any], caplog) -> None:
    bound = live["bound"]
    info_path = served.home / "web" / "server.json"
    assert stat.S_IMODE(info_path.stat().st_mode) == 0o600
    info = json.loads(info_path.read_text())
    assert info["pid"] == os.getpid() and info["port"] == bound.port and info["host"] == "127.0.0.1"
    assert running_server(served.home)["port"] == bound.port

    with pytest.raises(ServerRunning, match=f"pid {os.getpid()} at http://127.0.0.1:{bound.port}/"):
        with listening(served.home, "127.0.0.1", 0):
            pass
    second = CliRunner().invoke(cli, ["serve", "--port", "0", "--home", str(served.home)])
    assert second.exit_code == 1 and "already running" in second.output and str(bound.port) in second.output

    query = "zebra-quarterly-secret-phrase"
    wrong = "not-the-token-" + "q" * 30
    base = bound.url.rstrip("/")
    with httpx.Client(base_url=base) as client:
        found = client.get("/api/v1/search", params={"q": query}, headers={"Authorization": f"Bearer {served.token}"})
        assert found.status_code == 200 and found.json()["query"] == query
        assert client.get("/api/v1/health", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
        assert client.get("/", params={"token": wrong}).status_code == 401
        assert client.get("/", params={"token": served.token}).status_code == 303
        assert client.get("/api/v1/health", headers={"Host": "evil.example"}).status_code == 400
    server_lines = [r.getMessage() for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]
    client_lines = [r.getMessage() for r in caplog.records if r.name.startswith(CLIENT_LOGGERS)]
    assert any(query in line for line in client_lines), "the capture works: the client's own log has the URL"
    text = "\n".join(server_lines)
    assert query not in text and served.token not in text and wrong not in text


def test_server_json_is_removed_on_exit(served: Served) -> None:
    assert not (served.home / "web" / "server.json").exists()
    assert running_server(served.home) is None


@pytest.mark.slow
def test_sigterm_stops_grace_serve_and_removes_server_json(tmp_path) -> None:
    """A real `grace serve` process: SIGTERM (what a service manager sends) ends it with
    server.json removed (uvicorn re-raises the signal after its shutdown; the default action
    would kill the process before the clean-up)."""
    import signal
    import subprocess
    import sys
    import time

    home = tmp_path / "grace"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRACE_") and k != "DAGSTER_HOME"}
    env["GRACE_HOME"] = str(home)
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("grace")), "serve", "--port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while running_server(home) is None:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else "exited"
            assert time.monotonic() < deadline, "grace serve did not start"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, "a SIGTERM is a normal stop"
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (home / "web" / "server.json").exists()


@pytest.mark.slow
def test_grace_serve_stops_when_its_parent_is_killed(tmp_path) -> None:
    """`grace dev` starts `grace serve --exit-with <its pid>` as a child: when that parent dies
    (here kill -9, which no clean-up sees) the web app stops on its own, server.json removed."""
    import signal
    import subprocess
    import sys
    import time

    home = tmp_path / "grace"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRACE_") and k != "DAGSTER_HOME"}
    env["GRACE_HOME"] = str(home)
    grace = str(Path(sys.executable).with_name("grace"))
    # the parent: starts the server as its child, prints the child's pid, then waits forever
    code = (
        "import os, subprocess, sys, time\n"
        f"child = subprocess.Popen([{grace!r}, 'serve', '--port', '0', '--exit-with', str(os.getpid())],"
        " stdout=subprocess.DEVNULL)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE)
    child = int(parent.stdout.readline())
    try:
        deadline = time.monotonic() + 60
        while running_server(home) is None:
            assert time.monotonic() < deadline, "grace serve did not start"
            time.sleep(0.2)
        assert running_server(home)["pid"] == child
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{child}").exists() and "Z" not in Path(f"/proc/{child}/stat").read_text().split()[2]:
            assert time.monotonic() < deadline, "grace serve outlived its parent"
            time.sleep(0.2)
        assert not (home / "web" / "server.json").exists()
    finally:
        for pid in (parent.pid, child):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_print_url_names_the_token_url_and_serves_nothing(tmp_path) -> None:
    home = tmp_path / "grace"
    result = CliRunner().invoke(cli, ["serve", "--print-url", "--port", "8799", "--home", str(home)])
    assert result.exit_code == 0, result.output
    token = (home / "web" / "token").read_text().strip()
    assert result.output.strip() == f"http://127.0.0.1:8799/?token={token}"
    assert stat.S_IMODE((home / "web" / "token").stat().st_mode) == 0o600
    assert running_server(home) is None
