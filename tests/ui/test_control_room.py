"""The control room verified in a real browser (issue 11, item 6): `grace dev` on a temporary
GRACE_HOME, a held file (no consent sidecar: the owner must grant) and a good file dropped into
the inbox and run by the daemon, then headless Chromium (Debian's package, driven by Playwright
for Python) asserts what an operator sees: the four layer groups with their assets, the held
source pending and never a red run, the playbook assets with their checks. Screenshots of each
layer and of the runs page go to $GRACE_SCREENSHOTS (`make ui-check`: docs/screenshots/).

Skipped only when /usr/bin/chromium or playwright is missing (.ci/run installs both)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..conftest import drop_file
from .harness import DevServer, start_dev_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = os.environ.get("GRACE_SCREENSHOTS")  # read at import: the autouse fixture clears GRACE_*
HAS_PLAYWRIGHT = importlib.util.find_spec("playwright") is not None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install -y chromium)"),
    pytest.mark.skipif(not HAS_PLAYWRIGHT, reason="playwright is not installed (pip install -e '.[dev]')"),
]

# what each layer must show at least (the code may add more: those are asserted too)
LAYERS: dict[str, set[str]] = {
    "ops": {"ops_health", "quarantine"},
    "orchestration": {"htm_metrics", "sla_tiers"},
    "intent": {"intents", "search_quality"},
    "dev": {
        "data_quality",
        "versions",
        "playbooks",
        "playbook_htm_timing_and_sizing",
        "playbook_secrets_capture_and_consent",
        "playbook_recording_to_learning",
        "playbook_crypto_key_persistence",
        "playbook_retention",
    },
}
PLAYBOOK_SHOT = "playbook_htm_timing_and_sizing"
HELD, GOOD = "project_notes.md", "kettle_care.md"
GOOD_TEXT = "# Kettle care\n\nDescale the kettle every month with white vinegar, then rinse it twice.\n"
UI_TIMEOUT_MS = 30_000


@dataclass
class Room:
    """A running control room with the two sources through, and what the code defines."""

    server: DevServer
    location: str
    held_key: str
    good_key: str
    shots: Path
    evidence: Path
    groups: dict[str, list[str]] = field(default_factory=dict)  # layer group -> asset names
    checks: dict[str, list[str]] = field(default_factory=dict)  # dev asset -> its check names


def _defined(home: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The layer groups' assets and the dev group's checks, from the definitions the code
    location loads (the UI must show every one of them)."""
    from grace_pipelines.definitions import build_definitions
    from grace_pipelines.settings import load_settings

    graph = build_definitions(load_settings(home=home)).resolve_asset_graph()
    groups: dict[str, list[str]] = {name: [] for name in LAYERS}
    checks: dict[str, list[str]] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.group_name in groups:
            groups[node.group_name].append(key.to_user_string())
        if node.group_name == "dev":
            checks[key.to_user_string()] = sorted(c.name for c in node.check_keys)
    return {g: sorted(a) for g, a in groups.items()}, checks


def _stage_of(server: DevServer, filename: str) -> tuple[str, str] | None:
    from grace_pipelines.db.state import StateDB
    from grace_pipelines.settings import load_settings

    for row in StateDB(load_settings(home=server.home).state_url).list_sources():
        if row.filename == filename:
            return row.key, row.stage
    return None


def _source_in(server: DevServer, filename: str, stage: str, timeout: float) -> str:
    def probe() -> str | None:
        seen = _stage_of(server, filename)
        if seen and seen[1] == "failed":
            raise RuntimeError(f"{filename} failed under grace dev; log {server.log}:\n{server.log_tail()}")
        return seen[0] if seen and seen[1] == stage else None

    return server.wait(f"{filename} to be {stage} (state database of {server.home})", probe, timeout=timeout)


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    base = tmp_path_factory.mktemp("control_room")
    home = base / "grace"
    server = start_dev_server(home, base / "grace-dev.log")
    try:
        server.graphql("mutation { setNuxSeen }")  # the first-visit modal would cover the screenshots
        inbox = home / "inbox"
        # the held file first, alone: its own run (tagged grace/hold), not a tiny batch with the good one
        drop_file(inbox, HELD)
        held_key = _source_in(server, HELD, "awaiting_consent", timeout=90)
        server.wait("the hold run to succeed", lambda: _hold_run(server, held_key), timeout=90)
        drop_file(inbox, name=GOOD, data=GOOD_TEXT, grants={"me": ["all"]})
        good_key = _source_in(server, GOOD, "searchable", timeout=120)
        shots = Path(SCREENSHOTS).resolve() if SCREENSHOTS else base / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        room = Room(server, server.location, held_key, good_key, shots, base / "evidence")
        room.groups, room.checks = _defined(home)
        yield room
    finally:
        server.stop()
    assert not (home / "web" / "server.json").exists(), "the web app stopped with the control room"


def test_grace_dev_serves_the_web_app_beside_the_control_room(room: Room) -> None:
    """`grace dev` also starts `grace serve` (here on a free port): the person's search answers
    with the source the control room just made searchable."""
    import json
    import urllib.request

    home = room.server.home

    def api() -> dict[str, Any] | None:
        info = json.loads((home / "web" / "server.json").read_text())
        token = (home / "web" / "token").read_text().strip()
        url = f"http://127.0.0.1:{info['port']}/api/v1/search?" + urllib.parse.urlencode({"q": "descale the kettle"})
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    found = room.server.wait("the web app's search (grace serve under grace dev)", api, timeout=90)
    assert found["results"][0]["title"] == GOOD, found


def _hold_run(server: DevServer, key: str) -> dict[str, Any] | None:
    for run in server.runs():
        if run["tags"].get("grace/source") == key and run["tags"].get("grace/hold"):
            assert run["status"] not in ("FAILURE", "CANCELED"), f"the hold run of {key} is {run['status']}"
            return run if run["status"] == "SUCCESS" else None
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    yield tab
    context.close()


@contextlib.contextmanager
def evidence(page: Page, room: Room, name: str) -> Iterator[None]:
    """On a failed assertion, keep a screenshot and the page's HTML and print where."""
    try:
        yield
    except BaseException:
        room.evidence.mkdir(parents=True, exist_ok=True)
        png, html = room.evidence / f"{name}.png", room.evidence / f"{name}.html"
        with contextlib.suppress(Exception):
            page.screenshot(path=str(png), full_page=True)
            html.write_text(page.content(), encoding="utf-8")
        print(f"control room failure evidence: {png} and {html} (page {page.url}); grace dev log {room.server.log}")
        raise


def _open(page: Page, room: Room, route: str) -> None:
    page.goto(room.server.url + route, wait_until="domcontentloaded")


def _settle(page: Page) -> None:
    """Let the UI's GraphQL queries land before a screenshot (status cells load after names)."""
    with contextlib.suppress(Exception):
        page.wait_for_load_state("networkidle", timeout=15_000)
    page.wait_for_timeout(800)


def _asset_link(page: Page, name: str):  # noqa: ANN202 - a playwright Locator
    return page.locator(f'a[href$="/assets/{name}"]').first


def _named(page: Page, name: str):  # noqa: ANN202 - a playwright Locator
    """`name` as the UI shows it: whole, or middle-truncated ("valid_secrets_…re_and_consent")
    inside an element titled with the whole name."""
    return page.get_by_title(name, exact=True).or_(page.get_by_text(name, exact=True)).first


def test_the_four_layer_groups_show_their_assets(room: Room, page: Page) -> None:
    from playwright.sync_api import expect

    for group, required in LAYERS.items():
        defined = room.groups[group]
        assert required <= set(defined), f"group {group!r} in the code lacks {sorted(required - set(defined))}"
        with evidence(page, room, f"layer_{group}"):
            _open(page, room, f"/locations/{urllib.parse.quote(room.location)}/asset-groups/{group}/list")
            expect(page.get_by_text(group, exact=True).first).to_be_visible()
            for name in defined:
                expect(_asset_link(page, name)).to_be_visible()
            _materialized(page, group)  # refreshed (playbooks dry-run) at start: never "never materialized"
            _settle(page)
            page.screenshot(path=str(room.shots / f"{group}.png"))


def _materialized(page: Page, group: str, timeout: float = 90) -> None:
    """No asset of `group` says "Never materialized" (the start-up refresh may still be running:
    reload until it has landed)."""
    deadline = time.monotonic() + timeout
    while True:
        _settle(page)
        never = page.get_by_text("Never materialized", exact=True).count()
        if never == 0 and page.get_by_text("Materialized", exact=True).count() > 0:
            return
        assert time.monotonic() < deadline, f"{never} asset(s) of {group} never materialized after {timeout:.0f} s"
        page.reload(wait_until="domcontentloaded")


def test_the_held_source_is_pending_not_failed(room: Room, page: Page) -> None:
    from playwright.sync_api import expect

    failed = [(r["jobName"], r["runId"][:8]) for r in room.server.runs() if r["status"] == "FAILURE"]
    assert not failed, f"red runs on a demo where nothing broke: {failed}"

    with evidence(page, room, "runs_hold"):  # the hold run: green, titled, tagged
        _open(page, room, "/runs?" + urllib.parse.urlencode({"q[0]": "tag:grace/hold=consent"}))
        expect(page.get_by_text(f"grace/title: {HELD}", exact=True).first).to_be_visible()
        expect(page.get_by_text("Success", exact=True).first).to_be_visible()
        expect(page.get_by_text("Failure", exact=True)).to_have_count(0)

    with evidence(page, room, "runs_failed"):  # the runs page's own failure filter finds nothing
        _open(page, room, "/runs?" + urllib.parse.urlencode({"q[0]": "status:FAILURE"}))
        expect(page.get_by_text("No matching runs").first).to_be_visible()

    with evidence(page, room, "source_partition"):  # the held partition: materialized, awaiting the owner
        _open(
            page, room, "/assets/source?" + urllib.parse.urlencode({"view": "partitions", "partition": room.held_key})
        )
        expect(page.get_by_text("Failed (0)", exact=True).first).to_be_visible()
        expect(page.get_by_text("awaiting_parties", exact=True).first).to_be_visible()
        expect(page.get_by_text(HELD, exact=True).first).to_be_visible()
        _settle(page)
        page.screenshot(path=str(room.shots / "held.png"))

    with evidence(page, room, "runs"):
        _open(page, room, "/runs")
        expect(page.get_by_text(f"grace/title: {HELD}", exact=True).first).to_be_visible()
        expect(page.get_by_text("Failure", exact=True)).to_have_count(0)
        _settle(page)
        page.screenshot(path=str(room.shots / "runs.png"))


def test_the_playbook_assets_and_their_checks_render(room: Room, page: Page) -> None:
    from playwright.sync_api import expect

    with_checks = {a: c for a, c in room.checks.items() if a.startswith("playbook") and c}
    assert {a for a in LAYERS["dev"] if a.startswith("playbook")} <= set(with_checks), (
        f"playbook assets without checks in the code: {sorted(set(room.checks) - set(with_checks))}"
    )
    for asset, checks in sorted(with_checks.items()):
        with evidence(page, room, f"checks_{asset}"):
            _open(page, room, f"/assets/{asset}?view=checks")
            expect(page.get_by_text(f"Checks ({len(checks)})", exact=True).first).to_be_visible()
            for check in checks:
                expect(_named(page, check)).to_be_visible()
            if asset == PLAYBOOK_SHOT:
                _settle(page)
                page.screenshot(path=str(room.shots / "playbook.png"))
