"""Key rotation over a blob-store folder: rewrap, verify, retire, resume, and kill -9 safety."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grace_pipelines.crypto import (
    MASTER_KEY_ENV,
    FolderBlobs,
    Keyring,
    MasterKey,
    RotationError,
    encrypt_plaintext_blobs,
    inspect,
    kek_id_of,
    open_blob,
    rewrap,
    rotate,
    seal,
    status,
    verify,
)

ROOT = Path(__file__).resolve().parents[2]
PHRASE = b"we agreed the migration freezes on Friday at noon"


def _fill(keyring: Keyring, root: Path, sources: int, per_source: int, size: int = 300) -> dict[str, bytes]:
    """Sealed blobs at root/{source_key}/{name}; returns name -> plaintext."""
    rng = random.Random(7)
    expected: dict[str, bytes] = {}
    for _ in range(sources):
        key = f"{rng.getrandbits(64):016x}"
        (root / key).mkdir(parents=True, exist_ok=True)
        for b in range(per_source):
            name = f"{key}/blob-{b}.bin"
            data = PHRASE + b" " + rng.randbytes(size)
            (root / name).write_bytes(seal(data, keyring, aad=name.encode()))
            expected[name] = data
    return expected


def _assert_all_readable(keyring: Keyring, root: Path, expected: dict[str, bytes]) -> None:
    blobs = FolderBlobs(root)
    assert blobs.names() == sorted(expected)
    for name, data in expected.items():
        assert open_blob(blobs.read(name), keyring, aad=name.encode(), name=name) == data


def _assert_rotated(keyring: Keyring, root: Path) -> None:
    active = keyring.active.id
    report = verify(keyring, FolderBlobs(root))
    assert report.ok and report.by_key == {active: report.total}
    for kid in keyring.ids:
        key = keyring.get(kid)
        if kid != active:
            assert key.state == "retired" and not key.can_decrypt
    assert keyring.retiring_ids == []


@pytest.fixture
def master() -> MasterKey:
    return MasterKey.generate()


@pytest.fixture
def keyring(tmp_path: Path, master: MasterKey) -> Keyring:
    return Keyring.create(tmp_path / "keys" / "keyring.bin", master)


def test_rotate_rewraps_verifies_and_retires(tmp_path: Path, keyring: Keyring, master: MasterKey) -> None:
    root = tmp_path / "store"
    expected = _fill(keyring, root, sources=5, per_source=6)
    old = keyring.active.id
    bodies = {n: (root / n).read_bytes()[inspect((root / n).read_bytes()).header_length :] for n in expected}
    seen: list[tuple[str, int, int]] = []
    report = rotate(keyring, FolderBlobs(root), progress=lambda *a: seen.append(a))
    assert report.completed and not report.resumed
    assert report.old_key_ids == [old] and report.retired == [old] and report.new_key_id != old
    assert (report.blobs, report.rewrapped, report.already_current, report.verified) == (30, 30, 0, 30)
    assert report.seconds >= report.rewrap_seconds + report.verify_seconds > 0
    assert ("rewrap", 30, 30) in seen and ("verify", 30, 30) in seen
    json.dumps(report.to_dict())
    reloaded = Keyring.load(keyring.path, master)
    _assert_rotated(reloaded, root)
    _assert_all_readable(reloaded, root, expected)
    for name, body in bodies.items():  # rotation never re-encrypted the data
        blob = (root / name).read_bytes()
        assert blob[inspect(blob).header_length :] == body
    again = rotate(reloaded, FolderBlobs(root))
    assert again.rewrapped == 30 and again.old_key_ids == [report.new_key_id]


def test_rotation_resumes_instead_of_starting_over(tmp_path: Path, keyring: Keyring, master: MasterKey) -> None:
    root = tmp_path / "store"
    expected = _fill(keyring, root, sources=4, per_source=5)
    old = keyring.active.id
    new = keyring.begin_rotation()  # as if a rotation died half way
    blobs = FolderBlobs(root)
    for name in blobs.names()[:8]:
        blobs.write(name, rewrap(blobs.read(name), keyring, aad=name.encode(), name=name))
    report = rotate(Keyring.load(keyring.path, master), blobs)
    assert report.resumed and report.new_key_id == new and report.old_key_ids == [old]
    assert (report.rewrapped, report.already_current) == (12, 8)
    reloaded = Keyring.load(keyring.path, master)
    assert len(reloaded.ids) == 2
    _assert_rotated(reloaded, root)
    _assert_all_readable(reloaded, root, expected)


def test_bad_blob_blocks_retirement_until_fixed(tmp_path: Path, keyring: Keyring, master: MasterKey) -> None:
    root = tmp_path / "store"
    expected = _fill(keyring, root, sources=3, per_source=4)
    names = sorted(expected)
    tampered = bytearray((root / names[0]).read_bytes())
    tampered[-3] ^= 0x01
    (root / names[0]).write_bytes(bytes(tampered))
    moved = names[1].split("/")[0] + "/copied-here.bin"  # a blob copied under another name
    (root / moved).write_bytes((root / names[2]).read_bytes())
    old = keyring.active.id
    with pytest.raises(RotationError) as info:
        rotate(keyring, FolderBlobs(root))
    message = str(info.value)
    assert names[0] in message and moved in message and "incomplete" in message
    assert PHRASE.decode()[:20] not in message
    report = info.value.report
    assert not report.completed and report.retired == []
    assert {f.name: f.reason for f in report.failures} == {names[0]: "auth_failed", moved: "auth_failed"}
    reloaded = Keyring.load(keyring.path, master)
    assert reloaded.get(old).state == "retiring" and reloaded.get(old).can_decrypt
    del expected[names[0]]
    for name in expected:  # every good blob still readable
        assert open_blob((root / name).read_bytes(), reloaded, aad=name.encode(), name=name) == expected[name]
    (root / names[0]).unlink()  # quarantined / purged
    (root / moved).unlink()
    report = rotate(reloaded, FolderBlobs(root))
    assert report.completed and report.resumed and report.retired == [old] and report.already_current == 11
    _assert_rotated(Keyring.load(keyring.path, master), root)


def test_verify_and_status(tmp_path: Path, keyring: Keyring) -> None:
    root = tmp_path / "store"
    _fill(keyring, root, sources=2, per_source=3)
    first = keyring.active.id
    second = keyring.begin_rotation()
    blobs = FolderBlobs(root)
    name = blobs.names()[0]
    blobs.write(name, rewrap(blobs.read(name), keyring, aad=name.encode(), name=name))
    (root / name.split("/")[0] / "legacy.txt").write_bytes(PHRASE)
    report = verify(keyring, blobs)
    assert report.total == 7 and report.verified == 6 and report.by_key == {first: 5, second: 1}
    assert [(f.name.endswith("legacy.txt"), f.reason) for f in report.failures] == [(True, "not_envelope")]
    st = status(keyring, blobs)
    by_id = {k.id: k for k in st.keys}
    assert by_id[first].blobs == 5 and by_id[first].state == "retiring"
    assert by_id[second].blobs == 1 and by_id[second].state == "active"
    assert all(k.age_seconds >= 0 and k.created_at.tzinfo is not None for k in st.keys)
    assert st.total_blobs == 7 and len(st.unreadable) == 1
    text = json.dumps(st.to_dict()) + json.dumps(report.to_dict())
    assert "migration" not in text


def test_encrypt_plaintext_blobs_migrates_a_store(tmp_path: Path, keyring: Keyring) -> None:
    root = tmp_path / "store"
    (root / "00000000000000aa").mkdir(parents=True)
    (root / "00000000000000aa" / "transcript.json").write_bytes(PHRASE)
    (root / "00000000000000aa" / "source.wav").write_bytes(b"RIFF" + os.urandom(5000))
    _fill(keyring, root, sources=1, per_source=2)
    blobs = FolderBlobs(root)
    assert encrypt_plaintext_blobs(keyring, blobs) == 2
    assert encrypt_plaintext_blobs(keyring, blobs) == 0
    assert verify(keyring, blobs).ok
    for path in root.rglob("*"):
        if path.is_file():
            assert PHRASE not in path.read_bytes()


def test_folder_blobs_layout(tmp_path: Path) -> None:
    root = tmp_path / "store"
    blobs = FolderBlobs(root)
    assert blobs.names() == []
    (root / "abc").mkdir(parents=True)
    (root / ".trash").mkdir()
    (root / ".trash" / "x").write_bytes(b"1")
    (root / "abc" / ".tmp-123").write_bytes(b"1")
    (root / "abc" / "sub").mkdir()
    (root / "abc" / "blob").write_bytes(b"old")
    (root / "top-level-file").write_bytes(b"1")
    os.symlink(root / "abc" / "blob", root / "abc" / "link")
    assert blobs.names() == ["abc/blob"]
    blobs.write("abc/blob", b"new")
    blobs.sync()
    assert blobs.read("abc/blob") == b"new" and blobs.read_head("abc/blob", 2) == b"ne"
    assert sorted(p.name for p in (root / "abc").iterdir()) == [".tmp-123", "blob", "link", "sub"]
    for bad in ("abc", "abc/../x", "../abc/blob", "abc/.hidden", "a/b/c", "/abc"):
        with pytest.raises(ValueError):
            blobs.path(bad)


# The child loads the crypto package without running grace_pipelines/__init__.py (which pulls in
# Dagster for the API): it starts in ~0.1 s, and it proves the policy code needs no Dagster.
CHILD = """
import sys, types
package = types.ModuleType("grace_pipelines")
package.__path__ = [sys.argv[3]]
sys.modules["grace_pipelines"] = package
from grace_pipelines.crypto import FolderBlobs, Keyring, load_master_key, rotate
assert "dagster" not in sys.modules
keyring = Keyring.load(sys.argv[1], load_master_key())
blobs = FolderBlobs(sys.argv[2])
print("ready", flush=True)
rotate(keyring, blobs)
print("done", flush=True)
"""


def _child(keyring_path: Path, root: Path, master: MasterKey, *, wait_ready: bool = True) -> subprocess.Popen[bytes]:
    env = {**os.environ, MASTER_KEY_ENV: master.to_base64()}
    args = [sys.executable, "-c", CHILD, str(keyring_path), str(root), str(ROOT / "grace_pipelines")]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    if wait_ready:
        line = proc.stdout.readline()
        if line != b"ready\n":
            proc.kill()
            raise AssertionError(f"child did not start: {line!r} {proc.stderr.read()!r}")  # type: ignore[union-attr]
    return proc


def _phase(keyring: Keyring, root: Path, keys_before: int) -> str:
    """Where the kill landed, read from disk."""
    counts: dict[str, int] = {}
    for name in FolderBlobs(root).names():
        kid = kek_id_of((root / name).read_bytes(), name=name)
        counts[kid] = counts.get(kid, 0) + 1
    if len(keyring.ids) == keys_before:
        return "before"
    if not keyring.retiring_ids:
        return "completed"
    on_new = counts.get(keyring.active.id, 0)
    if on_new == 0:
        return "begun"
    return "rewrapped" if on_new == sum(counts.values()) else "during"


@pytest.mark.slow  # kill -9 at random points, many rounds
def test_kill_9_at_random_points_never_loses_a_blob(tmp_path: Path, keyring: Keyring, master: MasterKey) -> None:
    """30 rotations over 200 blobs, each killed with SIGKILL at a random moment, then resumed."""
    started = time.monotonic()
    root = tmp_path / "store"
    expected = _fill(keyring, root, sources=20, per_source=10, size=200)  # 200 small blobs
    # calibrate: how long one uninterrupted rotation takes once the child is ready (the first
    # run also flushes the freshly written blobs to disk, so keep the fastest of three)
    spans, startups = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        proc = _child(keyring.path, root, master)
        ready = time.perf_counter()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()  # type: ignore[union-attr]
        spans.append(time.perf_counter() - ready)
        startups.append(ready - t0)
    span, startup = min(spans), min(startups)
    rng = random.Random(1234)
    late = 25
    # (wait for "ready"?, delay): 5 kills during start-up (before any key change), then delays
    # spread evenly over 1.25x the rotation span: during the rewrap, during verify/retire, after.
    plan = [(False, rng.uniform(0, startup)) for _ in range(5)]
    plan += [(True, (i + rng.random()) / late * span * 1.25) for i in range(late)]
    rng.shuffle(plan)
    phases: list[str] = []
    for wait_ready, delay in plan:
        keys_before = len(Keyring.load(keyring.path, master).ids)
        proc = _child(keyring.path, root, master, wait_ready=wait_ready)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        reloaded = Keyring.load(keyring.path, master)
        phases.append(_phase(reloaded, root, keys_before))
        _assert_all_readable(reloaded, root, expected)  # nothing lost, whatever the moment
        report = rotate(reloaded, FolderBlobs(root))
        assert report.completed and report.resumed == (phases[-1] in ("begun", "during", "rewrapped"))
        final = Keyring.load(keyring.path, master)
        _assert_rotated(final, root)
        _assert_all_readable(final, root, expected)
    # one key per rotation started: the child's (unless killed before it began) and the
    # in-process one (unless it resumed the child's); never a second key for one rotation
    created = sum((p != "before") + (p in ("before", "completed")) for p in phases)
    assert len(Keyring.load(keyring.path, master).ids) == 4 + created
    elapsed = time.monotonic() - started
    print(
        f"kill -9 trials: {len(phases)} in {elapsed:.1f}s, start-up {startup * 1000:.0f} ms, rotation span "
        f"{span * 1000:.0f} ms, phases {sorted((p, phases.count(p)) for p in set(phases))}"
    )
    assert "before" in phases and "during" in phases  # kills landed before and mid-rewrap
    assert len(set(phases)) >= 3
