"""Fault injection with real processes: `grace` killed with SIGKILL at each stage of ingest and
purge, then run again. After every kill: nothing wedged (no pool slot of a dead run left, the
re-run finishes within a bound), the source ends searchable exactly once (one row per chunk),
a purge leaves no byte of the source in any LanceDB version, and the audit chain verifies.
`grace doctor` reports what a kill left and `--repair` fixes it; the daemon's recovery_sensor
resumes what a killed process left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from grace_pipelines.api import Grace
from grace_pipelines.db.state import StateDB
from grace_pipelines.definitions import build_definitions

from ..conftest import Driver, drop_file, write_sidecar

ROOT = Path(__file__).resolve().parents[2]
GRACE = [sys.executable, "-c", "import sys; sys.argv[0] = 'grace'; from grace_pipelines.cli import main; main()"]
RERUN_LIMIT_S = 240  # a wedged GRACE_HOME waited for ever before; this bounds "no wedge"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRACE_") and k != "DAGSTER_HOME"}
    return {**env, "GRACE_HOME": str(home)}


OWNER_GRANTS_ALL = {"participants": ["me"], "grants": {"me": ["transcribe", "index"]}}


def consented(path: Path) -> Path:
    """A `NAME.consent.json` beside `path`: the owner is the only participant and grants all."""
    write_sidecar(path, **OWNER_GRANTS_ALL)
    return path


def _grace(home: Path, *args: str, timeout: float = RERUN_LIMIT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GRACE, *args], cwd=ROOT, env=_env(home), capture_output=True, text=True, timeout=timeout, check=False
    )


def _stage(db: StateDB, title: str) -> str | None:
    for row in db.list_sources():
        if row.title == title:
            return row.stage
    return None


def _slot_claimed(home: Path) -> bool:
    """Whether some run holds a pool slot now (read straight from the instance's SQLite index)."""
    import sqlite3

    index = home / "dagster" / "history" / "runs" / "index.db"
    if not index.exists():
        return False
    try:
        with sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM concurrency_slots WHERE run_id IS NOT NULL").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def _kill_at(
    home: Path, args: list[str], title: str, stages: set[str], delay_s: float = 0.0, slot_held: bool = False
) -> str | None:
    """Start `grace ARGS`, SIGKILL it once the source reaches one of `stages` (plus `delay_s`;
    with `slot_held`, once its step also holds a pool slot); returns the stage it was killed in
    (None: it finished first)."""
    proc = subprocess.Popen(
        [*GRACE, *args], cwd=ROOT, env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    db = StateDB(f"sqlite:///{home / 'grace.db'}") if (home / "grace.db").exists() else None
    try:
        deadline = time.time() + 180
        while proc.poll() is None and time.time() < deadline:
            if db is None and (home / "grace.db").exists():
                db = StateDB(f"sqlite:///{home / 'grace.db'}")
            stage = _stage(db, title) if db is not None else None
            if stage in stages and (not slot_held or _slot_claimed(home)):
                time.sleep(delay_s)
                if proc.poll() is not None:
                    return None
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return _stage(db, title)
            time.sleep(0.01)
        return None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _slots_held(home: Path) -> set[str]:
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    try:
        return set(instance.event_log_storage.get_concurrency_run_ids())
    finally:
        instance.dispose()


def _lance_files_containing(home: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for path in (home / "lancedb").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(n in data for n in needles):
                hits.append(str(path.relative_to(home)))
    return hits


def _one_row_per_chunk(grace: Grace, key: str) -> None:
    store = grace.defs.resources["vector_store"]
    table = store.table()
    rows = table.search().where(f"source_key = '{key}'").select(["id", "chunk_index"]).limit(10_000).to_list()
    ids = [r["id"] for r in rows]
    assert ids and len(ids) == len(set(ids)), "a chunk was indexed twice"
    assert sorted(int(r["chunk_index"]) for r in rows) == list(range(len(rows)))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stages", "slot_held"),
    [({"stored"}, True), ({"transcribed"}, False), ({"chunked"}, True)],
    ids=["transcribing-holding-its-pool-slot", "chunking", "embedding-holding-its-pool-slot"],
)
def test_kill_9_during_ingest_then_rerun_finishes_once(tmp_path: Path, stages: set[str], slot_held: bool) -> None:
    home = tmp_path / "grace"
    media = drop_file(tmp_path, "standup.mp3", age_s=None)
    drop_file(tmp_path, "standup.mp3.consent.json", age_s=None)
    assert _grace(home, "init").returncode == 0
    killed = _kill_at(home, ["ingest", str(media), "--wait"], "standup.mp3", stages, slot_held=slot_held)
    if killed is None:
        pytest.skip("the run finished before the kill landed (machine too fast for this stage)")
    assert killed in stages | {"stored", "transcribed", "chunked"}
    assert _slots_held(home) if slot_held else True  # the dead run's slot: what wedged every later run

    started = time.time()
    again = _grace(home, "ingest", str(media), "--wait", "--json")
    recovery_s = time.time() - started
    assert again.returncode == 0, again.stderr
    outcome = json.loads(again.stdout)
    states = {s["title"]: s["state"] for s in outcome["sources"]}
    assert states.get("standup.mp3") == "searchable", outcome
    assert recovery_s < RERUN_LIMIT_S
    assert _slots_held(home) == set()  # the dead run's slot was freed, nothing else holds one

    grace = Grace(home)
    row = grace.db.find_source("standup.mp3")
    assert row is not None and row.stage == "searchable"
    _one_row_per_chunk(grace, row.key)
    hits = grace.search("when is the report due", k=3)
    assert hits and hits[0].source_key == row.key
    assert grace.audit_verify()["ok"]
    with grace.instance() as instance:  # the killed run is marked failed, with why
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"grace/source": row.key}))
        failed = [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
        assert failed, "the killed run was left STARTED"
        assert not [r for r in runs if r.status == dg.DagsterRunStatus.STARTED]
    print(f"kill in {killed}: re-run to searchable in {recovery_s:.1f}s")


@pytest.mark.slow
def test_kill_9_during_purge_leaves_no_byte_in_any_lancedb_version(tmp_path: Path) -> None:
    """Purges killed at several moments (before and after LanceDB's delete commit), each
    finished by re-running `grace purge`: no file under lancedb/ holds the source's title or
    blind tokens, status says purged, the receipt counts what the killed attempt removed."""
    home = tmp_path / "grace"
    assert _grace(home, "init").returncode == 0
    names = []
    animals = ("zebra", "walrus", "heron")  # a word only that victim says: its blind token is its own
    for i, delay in enumerate((0.0, 0.4, 1.0)):
        name = f"purge-victim-{i}-notes.md"
        (tmp_path / name).write_text(
            f"# Victim {i}\n\nThe {animals[i]} quartet rehearses on Thursday. Budget sign-off waits for Priya.\n"
            "We moved the offsite to the lake house because the hotel cancelled.\n",
            encoding="utf-8",
        )
        consented(tmp_path / name)
        names.append((name, delay))
    keep = tmp_path / "kept-notes.md"
    keep.write_text("# Kept\n\nThe kept document talks about the garden and the tomatoes.\n", encoding="utf-8")
    consented(keep)
    assert _grace(home, "ingest", *[str(tmp_path / n) for n, _ in names], str(keep), "--wait").returncode == 0
    grace = Grace(home)
    index_key = grace.defs.resources["blob_store"].index_key()
    from grace_pipelines.text.keywords import blind_tokens

    landed = []
    for (name, delay), animal in zip(names, animals):
        row = grace.db.find_source(name)
        assert row is not None and row.stage == "searchable"
        needles = [name.encode()] + [t.encode() for t in blind_tokens(index_key, animal).split()]
        assert _lance_files_containing(home, needles)  # the scan can see them before the purge
        landed.append(_kill_at(home, ["purge", row.key, "--original"], name, {"purging"}, delay_s=delay))
        assert Grace(home).status_of(row.key).state in ("purging", "purged")  # never "searchable" after a kill
        again = _grace(home, "purge", row.key, "--original", "--json")
        assert again.returncode == 0, again.stderr
        receipt = json.loads(again.stdout)["receipt"]
        assert receipt["source_key"] == row.key and receipt["original_removed"]
        assert _lance_files_containing(home, needles) == [], f"purged bytes of {name} still on disk"
        assert Grace(home).status_of(row.key).state == "purged"
        assert not list((home / "store" / row.key).glob("*")) if (home / "store" / row.key).exists() else True
    print(f"purge kills landed in: {landed}")
    grace = Grace(home)
    assert grace.search("garden tomatoes", k=1)[0].title == "kept-notes.md"
    assert grace.audit_verify()["ok"]
    assert _slots_held(home) == set()


@pytest.mark.slow
def test_doctor_reports_then_repairs_and_recovery_sensor_resumes(tmp_path: Path) -> None:
    home = tmp_path / "grace"
    media = drop_file(tmp_path, "migration.wav", **OWNER_GRANTS_ALL, age_s=None)
    assert _grace(home, "init").returncode == 0
    killed = _kill_at(home, ["ingest", str(media), "--wait"], "migration.wav", {"stored"}, slot_held=True)
    if killed is None:
        pytest.skip("the run finished before the kill landed")
    (home / "grace.db").chmod(0o644)  # as an older version under umask 022 left it

    report = _grace(home, "doctor", "--json")
    assert report.returncode == 1  # problems found, nothing changed
    found = json.loads(report.stdout)
    assert found["dead_runs"] and found["dead_runs"][0]["why"].startswith("its process")
    assert any(p["path"].endswith("grace.db") for p in found["permissions"])
    assert _slots_held(home)  # report only: the slot is still held

    # the daemon's side: recovery_sensor marks the run failed, frees the slot, resumes the source
    grace = Grace(home)
    defs = build_definitions(grace.settings)
    with grace.instance() as instance:
        driver = Driver(defs, instance)
        result = driver.tick("recovery_sensor")
        assert not _slots_held(home)
        requests = list(result.run_requests or [])
        assert [r.partition_key for r in requests] == [grace.db.find_source("migration.wav").key]
        assert requests[0].asset_selection == [dg.AssetKey(a) for a in ("transcript", "chunks", "embeddings")]
        assert all(r.success for r in driver.execute(result))
    assert grace.db.find_source("migration.wav").stage == "searchable"

    repaired = _grace(home, "doctor", "--repair", "--json")
    assert repaired.returncode == 0, repaired.stdout
    assert json.loads(repaired.stdout)["permissions_fixed"] >= 1
    assert oct((home / "grace.db").stat().st_mode & 0o777) == "0o600"
    final = _grace(home, "doctor", "--json")
    assert final.returncode == 0 and json.loads(final.stdout)["healthy"]


@pytest.mark.slow  # `grace ingest` in a subprocess
def test_grace_home_is_private_whatever_the_umask(tmp_path: Path) -> None:
    home = tmp_path / "grace"
    doc = tmp_path / "note.md"
    consented(doc).write_text("# Note\n\nA private thought about the quarterly numbers.\n", encoding="utf-8")
    env = _env(home)
    result = subprocess.run(
        ["bash", "-c", 'umask 022 && "$@"', "_", *GRACE, "ingest", str(doc), "--wait"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loose = []
    for path in [home, *home.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            loose.append((str(path.relative_to(tmp_path)), oct(mode)))
    assert loose == []


@pytest.mark.slow
def test_kill_9_during_a_persons_turn_purge_then_rerun_removes_exactly_their_words(tmp_path: Path) -> None:
    """`grace consent revoke --wait` by a named voice, SIGKILLed while purging their turns (just
    after the journal entry, and later), then run again: their words are gone from the sealed
    transcript and every LanceDB version, the others' stay searchable with one row per chunk."""
    from grace_pipelines.stores.blobs import TRANSCRIPT
    from grace_pipelines.text.keywords import blind_tokens

    landed = []
    for delay in (0.0, 1.5):
        home = tmp_path / f"grace-{delay}"
        call = drop_file(
            tmp_path / f"drop-{delay}",
            "speakers/two_voices.ogg",
            name="review.ogg",
            participants=["alex", "priya"],
            grants={"alex": ["all"], "priya": ["all"]},
            age_s=None,
        )
        assert _grace(home, "ingest", str(call), "--wait").returncode == 0
        assert _grace(home, "speakers", "name", "review.ogg", "S2", "priya").returncode == 0
        grace = Grace(home)
        key = grace.resolve("review.ogg").key
        index_key = grace.defs.resources["blob_store"].index_key()
        hers = [t.encode() for t in blind_tokens(index_key, "Friday booking").split()]
        his = blind_tokens(index_key, "hotel").split()[0].encode()
        assert _lance_files_containing(home, hers)
        revoke = ["consent", "revoke", "review.ogg", "--party", "priya", "--scope", "all", "--wait"]
        landed.append(_kill_at(home, revoke, "review.ogg", {"purging"}, delay_s=delay))
        again = _grace(home, "doctor", "--repair", "--json")  # any entry point finishes a journaled purge
        assert again.returncode in (0, 1), again.stderr
        grace = Grace(home)
        assert grace.status_of(key).state == "searchable"
        text = " ".join(s["text"] for s in grace.defs.resources["blob_store"].get_json(key, TRANSCRIPT)["segments"])
        assert "Friday" not in text and "booking" not in text and "hotel" in text, (text, again.stdout)
        assert _lance_files_containing(home, hers) == [] and _lance_files_containing(home, [his])
        _one_row_per_chunk(grace, key)
        assert grace.search("keep the hotel under budget", k=1)[0].source_key == key
        assert grace.audit_verify()["ok"] and _slots_held(home) == set()
    print(f"turn-purge kills landed in: {landed}")
