"""Shared by the playbook tests: a GRACE_HOME with sources registered through the real inbox
scan (optionally dropped in the past), a webhook receiver on 127.0.0.1, and user overrides of
the shipped playbooks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from grace_pipelines.db.state import StateDB
from grace_pipelines.ingest.inbox import scan_inbox
from grace_pipelines.playbooks.loading import seed_dir, validate_path

from ..conftest import drop_file
from ..resources.local_http import local_server, send_json


@contextmanager
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A Slack-style webhook: yields (url, the JSON bodies posted to it)."""
    posts: list[dict[str, Any]] = []

    def on_post(handler: Any) -> None:
        posts.append(json.loads(handler.rfile.read(int(handler.headers["Content-Length"]))))
        send_json(handler, 200, {"ok": True})

    with local_server(on_post) as url:
        yield f"{url}/hooks/T000/B000/secret-token-123", posts


def register(settings: Any, db: StateDB, name: str, *, dropped_at: datetime | None = None, **drop: Any) -> Any:
    """Drop a small markdown document (the fastest real source; its text differs per name, so
    its key does) and register it with the inbox scan."""
    text = f"# {name}\n\nThe notes of {name}: the release moves to Thursday and the budget is agreed.\n"
    path = drop_file(settings.inbox, name=name, data=text, **drop)
    scan = scan_inbox(settings, db, only={path}, settle_seconds=0, dropped_at=dropped_at)
    (item,) = scan.new
    return db.get_source(item.key)


def override(home: Path, playbook: str, replace: dict[str, str]) -> Path:
    """$GRACE_HOME/playbooks/<playbook>.yaml: the shipped file with some text replaced."""
    seed = seed_dir()
    assert seed is not None
    text = (seed / f"{playbook}.yaml").read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    target = home / "playbooks" / f"{playbook}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    _, errors = validate_path(target)
    assert errors == [], [str(e) for e in errors]
    return target
