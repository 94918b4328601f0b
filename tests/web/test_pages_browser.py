"""The pages in a real browser: Debian's headless Chromium driven by Playwright for Python
against `grace serve`'s uvicorn on a free loopback port. Search shows the right citation, Play
loads a WAV of the cited window (+1 s context), a pending consent granted on the decisions page
makes the source searchable, an upload goes through the form, a wrong token gets 401 and a
cross-site form post is refused. With WEB_SCREENSHOTS=1 it also writes
docs/screenshots/web_*.png."""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from grace_pipelines.search.citations import parse_citation

from ..conftest import serving
from .conftest import Served

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
HELD = "# Puffin survey\n\nThe puffin survey counts nesting pairs on the northern cliffs every June.\n"
UPLOADED = "# Gannet notes\n\nThe gannet colony doubled since the last census of the sea stacks.\n"


@pytest.fixture(scope="module")
def live(served: Served) -> Iterator[str]:
    with serving(served.grace) as state:
        yield state["bound"].url.rstrip("/")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, live: str, served: Served) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    opened = page.goto(f"{live}/?token={served.token}")  # the URL `grace serve` prints
    assert opened.ok and page.url == f"{live}/"
    yield page
    context.close()


def _shot(page: Any, name: str) -> None:
    if os.environ.get("WEB_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"web_{name}.png"), full_page=True)


def _api(live: str, served: Served) -> httpx.Client:
    return httpx.Client(base_url=live, headers={"Authorization": f"Bearer {served.token}"}, timeout=60)


def test_search_and_play_the_cited_moment(page: Any, live: str, served: Served) -> None:
    _shot(page, "home")
    page.fill('input[name="q"]', "when is the quarterly report due")
    page.click('button[type="submit"]')
    page.wait_for_selector("li.result")
    with _api(live, served) as api:
        top = api.get("/api/v1/search", params={"q": "when is the quarterly report due", "k": 1}).json()["results"][0]
    first = page.locator("li.result").first
    assert first.locator(".citation").inner_text() == top["citation"]
    assert first.locator("mark").count() == 1
    _shot(page, "search")
    first.locator("button.play").click()
    page.wait_for_selector('li.result audio[data-ready="1"]', state="attached", timeout=20_000)
    duration = first.locator("audio").evaluate("a => a.duration")
    cited = parse_citation(top["citation"])
    expected = (cited.end_s + 1.0) - max(0.0, cited.start_s - 1.0)
    assert abs(duration - expected) < 0.3, (duration, expected, top["citation"])


def test_ask_page_in_the_browser(page: Any, live: str) -> None:
    page.goto(f"{live}/ask?q=When+is+the+quarterly+report+due%3F")
    assert page.locator(".label").inner_text() == "extractive"
    page.locator("a.ref").first.click()
    assert page.url.endswith("#c1") and page.locator("#c1 .citation").inner_text().startswith("standup.mp3 @")
    _shot(page, "ask")


def test_grant_on_the_decisions_page_makes_the_source_searchable(page: Any, live: str, served: Served) -> None:
    consent = {"participants": ["me", "tao"], "grants": [{"party": "me", "scopes": ["all"]}]}
    with _api(live, served) as api:
        files = {"file": ("puffin.md", HELD.encode()), "consent": ("c.json", json.dumps(consent).encode())}
        held = api.post("/api/v1/ingest", files=files, data={"wait": "true"})
        assert held.json()["sources"][0]["state"] == "awaiting_consent"
        page.goto(f"{live}/decisions")
        row = page.locator('tr.consent[data-party="tao"][data-title="puffin.md"]')
        assert row.count() == 1
        _shot(page, "decisions")
        row.locator('input[name="ttl"]').fill("30d")
        row.locator("button.grant").click()
        deadline = time.monotonic() + 90
        while api.get("/api/v1/sources/puffin.md").json()["state"] != "searchable":
            assert time.monotonic() < deadline, api.get("/api/v1/sources/puffin.md").json()
            time.sleep(0.5)
    page.goto(f"{live}/search?q=puffin+nesting+pairs+cliffs")
    assert page.locator("li.result .citation").first.inner_text().startswith("puffin.md")
    assert any(e["actor"] == "web" and "tao" in json.dumps(e) for e in served.grace.audit_tail(20))


def test_upload_through_the_form(page: Any, live: str, served: Served, tmp_path: Path) -> None:
    note = tmp_path / "gannet.md"
    note.write_text(UPLOADED)
    page.goto(f"{live}/library")
    _shot(page, "library")
    page.set_input_files('#upload input[name="file"]', str(note))
    page.fill('#upload input[name="participants"]', "me")
    page.click('#upload button[type="submit"]')
    sync_api.expect(page.locator("#upload output")).to_contain_text("gannet.md: searchable", timeout=60_000)
    assert "error" not in (page.locator("#upload output").get_attribute("class") or "")
    with _api(live, served) as api:
        source = api.get("/api/v1/sources/gannet.md")
    assert page.locator("#upload output").inner_text().startswith("gannet.md: searchable")
    assert source.status_code == 200 and source.json()["origin"] == "manual" and source.json()["state"] == "searchable"
    page.goto(f"{live}/library/{served.grace.resolve('standup.mp3').key}")
    assert page.locator("li.segment").count() >= 2
    _shot(page, "source")


def test_wrong_token_and_cross_site_posts_are_refused(browser: Any, page: Any, live: str, served: Served) -> None:
    stranger = browser.new_context()
    refused = stranger.new_page().goto(f"{live}/?token=not-the-token-{'x' * 30}")
    assert refused.status == 401
    assert stranger.new_page().goto(f"{live}/search?q=report").status == 401
    stranger.close()

    evil = page.context.request.post(
        f"{live}/api/v1/consent/grant",
        headers={"Origin": "http://evil.example", "Content-Type": "application/json"},
        data=json.dumps({"source": "standup.mp3", "party": "me", "scope": "all"}),
    )
    assert evil.status == 403 and "cross-site" in evil.text()

    form = (
        f'<form id="f" method="post" action="{live}/api/v1/consent/revoke">'
        '<input name="source" value="standup.mp3"><input name="party" value="me"><input name="scope" value="index">'
        "</form>"
    ).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(form)

        def log_message(self, *args: Any) -> None:
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{other.server_address[1]}/")
        with page.expect_navigation() as posted:
            page.evaluate("document.getElementById('f').submit()")
        assert posted.value.status in (401, 403), posted.value.status
    finally:
        other.shutdown()
    with _api(live, served) as api:
        assert api.get("/api/v1/sources/standup.mp3").json()["state"] == "searchable"


def test_name_a_speaker_on_the_source_page(page: Any, live: str, served: Served) -> None:
    key = served.grace.resolve("standup.mp3").key
    page.goto(f"{live}/library/{key}")
    row = page.locator('table.speakers tr[data-label="S1"]')
    row.locator('input[name="name"]').fill("me")
    row.locator("button.name").click()
    sync_api.expect(page.locator('table.speakers tr[data-label="S1"] td').nth(1)).to_have_text("me", timeout=30_000)
    _shot(page, "speakers")
    names = page.locator("strong.speaker").all_inner_texts()
    assert names and set(names) == {"me"}  # every turn now says who spoke
    assert [p["name"] for p in served.grace.db.profiles()] == ["me"]  # the voice is kept for every recording
