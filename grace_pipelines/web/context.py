"""What every route shares: the one long-lived `Grace`, the token, and the locks that keep one
change (an ingest, a grant with wait) and one search at a time on that facade."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from grace_pipelines.api import Grace
from grace_pipelines.web.security import web_dir

ACTOR = "web"  # who the audit log and the consent ledger name for decisions made here


@dataclass
class WebContext:
    grace: Grace
    token: str
    upload_max_bytes: int
    work_lock: threading.Lock = field(default_factory=threading.Lock)
    search_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def uploads(self) -> Path:
        return web_dir(self.grace.settings.home) / "uploads"

    def warm(self) -> None:
        """Load the models and open the index now, not on the first search."""
        self.grace.clients.embedder  # noqa: B018 - cached_property: built once
        self.grace.status()


def context(request: Request) -> WebContext:
    """FastAPI dependency: the app's WebContext."""
    return request.app.state.ctx
