"""One GRACE_HOME for tests/web with a real ingested recording (standup.mp3 and its consent
sidecar, transcribed once), the long-lived `Grace` the app holds, the app, and clients: one
with the bearer token, one anonymous (both speak the server's own Host)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from grace_pipelines.api import Grace
from grace_pipelines.web.app import create_app
from grace_pipelines.web.security import load_or_create_token

from ..conftest import FIXTURES, clean_env

PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"


@dataclass
class Served:
    home: Path
    grace: Grace
    app: FastAPI
    token: str

    def client(self, *, token: bool = True, app: FastAPI | None = None) -> TestClient:
        headers = {"Authorization": f"Bearer {self.token}"} if token else {}
        return TestClient(app or self.app, base_url=BASE, headers=headers, follow_redirects=False)


@pytest.fixture(scope="package")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("web") / "grace"
    with pytest.MonkeyPatch.context() as mp, dg.instance_for_test() as instance:
        clean_env(mp)
        grace = Grace(home, instance=instance)
        (standup,) = grace.ingest([FIXTURES / "standup.mp3"], wait=True)  # its standup.mp3.consent.json travels with it
        assert standup.state == "searchable", standup.why
        app = create_app(grace.settings, grace, port=PORT, warm=False)
        yield Served(home, grace, app, load_or_create_token(home))
