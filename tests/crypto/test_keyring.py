"""Master key sources, the sealed keyring file, key states and repr safety."""

from __future__ import annotations

import base64
import os
import pickle
import stat
from datetime import timezone
from pathlib import Path

import pytest

from grace_pipelines.crypto import (
    MASTER_KEY_ENV,
    CryptoError,
    Keyring,
    MasterKey,
    create_master_key_file,
    load_master_key,
    open_blob,
    open_keyring,
    seal,
)
from grace_pipelines.crypto.master_key import KEY_BYTES

PHRASE = b"remind me to call the dentist about the crown"


def _materials(keyring: Keyring) -> list[bytes]:
    """Test-only peek at key material, to scan for it."""
    return [k._material for k in keyring._keys.values() if k._material is not None]


def _forms(secret: bytes) -> list[bytes]:
    return [
        secret,
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret),
        secret.hex().encode(),
        repr(secret).encode(),
    ]


def test_create_and_load(tmp_path: Path) -> None:
    master = MasterKey.generate()
    path = tmp_path / "keys" / "keyring.bin"
    kr = Keyring.create(path, master)
    assert len(kr.ids) == 1 and kr.active.state == "active"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Keyring.load(path, master)
    assert again.ids == kr.ids
    info = again.keys()[0]
    assert info.created_at.tzinfo is not None and info.created_at.utcoffset() == timezone.utc.utcoffset(None)
    blob = seal(PHRASE, kr, aad=b"a/b")
    assert open_blob(blob, again, aad=b"a/b", name="a/b") == PHRASE
    with pytest.raises(CryptoError, match="already exists"):
        Keyring.create(path, master)
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".tmp")] == []


def test_wrong_master_key_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keyring.bin"
    Keyring.create(path, MasterKey.generate())
    with pytest.raises(CryptoError) as info:
        Keyring.load(path, MasterKey.generate())
    assert f"keyring {path} cannot be opened: wrong master key or tampered file" in str(info.value)


def test_tampered_or_truncated_keyring(tmp_path: Path) -> None:
    master = MasterKey.generate()
    path = tmp_path / "keyring.bin"
    Keyring.create(path, master)
    good = path.read_bytes()
    for pos in (5, 20, 40, len(good) // 2, len(good) - 1):
        bad = bytearray(good)
        bad[pos] ^= 0x10
        path.write_bytes(bytes(bad))
        with pytest.raises(CryptoError, match="wrong master key or tampered file"):
            Keyring.load(path, master)
    path.write_bytes(good[:30])
    with pytest.raises(CryptoError, match="truncated"):
        Keyring.load(path, master)
    path.write_bytes(b"not a keyring at all")
    with pytest.raises(CryptoError, match="not a Grace keyring"):
        Keyring.load(path, master)
    with pytest.raises(CryptoError, match="does not exist"):
        Keyring.load(tmp_path / "nope.bin", master)


def test_keyring_file_holds_no_plaintext_material_or_json(tmp_path: Path) -> None:
    path = tmp_path / "keyring.bin"
    kr = Keyring.create(path, MasterKey.generate())
    kr.begin_rotation()
    raw = path.read_bytes()
    for secret in _materials(kr):
        for form in _forms(secret):
            assert form not in raw
    for word in (b"material", b"active", b"created_at", kr.active.id.encode()):
        assert word not in raw


def test_master_key_from_env(tmp_path: Path) -> None:
    key = os.urandom(KEY_BYTES)
    text = base64.b64encode(key).decode()
    assert load_master_key(env={MASTER_KEY_ENV: text}) == MasterKey(key)
    assert load_master_key(env={MASTER_KEY_ENV: base64.urlsafe_b64encode(key).decode() + "\n"}) == MasterKey(key)
    assert MasterKey.from_env({}) is None
    bad_values = ["not base64 at all!!", base64.b64encode(os.urandom(16)).decode(), "c2VjcmV0LXZhbHVl"]
    for bad in bad_values:
        with pytest.raises(CryptoError, match=f"master key from env {MASTER_KEY_ENV} is malformed") as info:
            load_master_key(env={MASTER_KEY_ENV: bad})
        assert bad not in str(info.value)
    with pytest.raises(CryptoError, match="no master key"):
        load_master_key(env={})


def test_env_wins_over_key_file(tmp_path: Path) -> None:
    file_key = create_master_key_file(tmp_path / "master.key")
    env_key = MasterKey.generate()
    got = load_master_key(env={MASTER_KEY_ENV: env_key.to_base64()}, key_file=tmp_path / "master.key")
    assert got == env_key and got != file_key
    assert load_master_key(env={}, key_file=tmp_path / "master.key") == file_key


def test_key_file_permissions(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.key"
    key = create_master_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert MasterKey.from_file(path) == key
    with pytest.raises(CryptoError, match="already exists; refusing to overwrite"):
        create_master_key_file(path)
    assert MasterKey.from_file(path) == key  # untouched
    for mode in (0o644, 0o640, 0o604, 0o660):
        os.chmod(path, mode)
        with pytest.raises(CryptoError) as info:
            MasterKey.from_file(path)
        assert "accessible by group or others" in str(info.value) and f"chmod 600 {path}" in str(info.value)
    os.chmod(path, 0o400)
    assert MasterKey.from_file(path) == key


def test_key_file_malformed_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"short\n")
    os.close(fd)
    with pytest.raises(CryptoError, match=f"master key from key file {path} is malformed"):
        MasterKey.from_file(path)
    with pytest.raises(CryptoError, match="does not exist"):
        MasterKey.from_file(tmp_path / "missing.key")


def test_open_keyring_for_init_is_idempotent(tmp_path: Path) -> None:
    keys = tmp_path / "home" / "keys"
    kr = open_keyring(keys, env={}, create=True)
    assert (keys / "master.key").exists() and (keys / "keyring.bin").exists()
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    again = open_keyring(keys, env={}, create=True)
    assert again.ids == kr.ids
    assert open_keyring(keys, env={}).active.id == kr.active.id
    env_keys = tmp_path / "env" / "keys"
    env = {MASTER_KEY_ENV: MasterKey.generate().to_base64()}
    open_keyring(env_keys, env=env, create=True)
    assert not (env_keys / "master.key").exists()  # the env var is the master key
    with pytest.raises(CryptoError, match="wrong master key"):
        open_keyring(env_keys, env={MASTER_KEY_ENV: MasterKey.generate().to_base64()})


def test_rotation_states_persist(tmp_path: Path) -> None:
    master = MasterKey.generate()
    path = tmp_path / "keyring.bin"
    kr = Keyring.create(path, master)
    first = kr.active.id
    blob = seal(PHRASE, kr, aad=b"s/x")
    second = kr.begin_rotation()
    reloaded = Keyring.load(path, master)
    assert reloaded.active.id == second
    assert reloaded.get(first).state == "retiring" and reloaded.retiring_ids == [first]
    assert open_blob(blob, reloaded, aad=b"s/x", name="s/x") == PHRASE  # retiring still decrypts
    with pytest.raises(CryptoError, match="active key"):
        kr.retire(second)
    kr.retire(first)
    reloaded = Keyring.load(path, master)
    old = reloaded.get(first)
    assert old.state == "retired" and not old.can_decrypt and old.retired_at is not None
    assert len(_materials(reloaded)) == 1
    with pytest.raises(CryptoError, match="retired") as info:
        open_blob(blob, reloaded, aad=b"s/x", name="s/x")
    assert info.value.reason == "retired_key"
    with pytest.raises(CryptoError, match="unknown key id"):
        reloaded.get("kek-nope")


def test_stale_instance_follows_a_rotation_elsewhere(tmp_path: Path) -> None:
    master = MasterKey.generate()
    path = tmp_path / "keyring.bin"
    stale = Keyring.create(path, master)
    other = Keyring.load(path, master)
    old = other.active.id
    new = other.begin_rotation()
    other.retire(old)
    assert stale.active.id == new  # re-checks the file: never seals with a retired key
    blob = seal(PHRASE, other, aad=b"s/y")
    fresh_id = Keyring.load(path, master).begin_rotation()
    assert open_blob(seal(PHRASE, stale, aad=b"s/z"), Keyring.load(path, master), aad=b"s/z", name="s/z") == PHRASE
    assert stale.get(fresh_id).state == "active"
    assert open_blob(blob, stale, aad=b"s/y", name="s/y") == PHRASE


def test_repr_and_pickle_never_leak_material(tmp_path: Path) -> None:
    master = MasterKey.generate()
    kr = Keyring.create(tmp_path / "keyring.bin", master)
    kr.begin_rotation()
    secrets_ = _materials(kr) + [master._key]
    objects = [kr, master, kr.active, *[kr.get(i) for i in kr.ids], *kr.keys(), kr.keys()[0].to_dict()]
    text = " ".join(repr(o) + " " + str(o) for o in objects) + repr(vars(kr.keys()[0]))
    for secret in secrets_:
        for form in _forms(secret):
            assert form.decode("latin-1") not in text
    assert "material" not in text
    for obj in (kr, master, kr.active):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(obj)


def test_locks_are_reentrant_across_instances_for_readers(tmp_path: Path) -> None:
    master = MasterKey.generate()
    kr = Keyring.create(tmp_path / "keyring.bin", master)
    other = Keyring.load(tmp_path / "keyring.bin", master)
    with kr.writer_lock(), other.writer_lock():  # shared locks coexist
        pass
    with kr.rotation_lock():
        pass
    assert (tmp_path / "keyring.bin.lock").exists()


def test_derived_subkeys_are_stable_and_purpose_bound(tmp_path: Path) -> None:
    master = MasterKey.generate()
    kr = Keyring.create(tmp_path / "keyring.bin", master)
    a = kr.derive_key(b"grace-pipelines/keyword-index/v1")
    kr.begin_rotation()  # KEK rotation does not change master-derived subkeys
    assert Keyring.load(kr.path, master).derive_key(b"grace-pipelines/keyword-index/v1") == a
    assert len(a) == 32 and a != kr.derive_key(b"grace-pipelines/other/v1")
    assert a != kr.derive_key(b"grace-pipelines/keyword-index/v1", salt=b"x")
    assert a != MasterKey.generate().derive(b"grace-pipelines/keyword-index/v1")
    with pytest.raises(ValueError):
        kr.derive_key(b"grace-pipelines/keyring/v1")
    with pytest.raises(ValueError):
        master.derive(b"")


def test_a_missing_master_key_beside_an_existing_keyring_is_refused_not_recreated(tmp_path) -> None:
    import pytest as _pytest

    from grace_pipelines.crypto.envelope import CryptoError
    from grace_pipelines.crypto.keyring import open_keyring

    keys = tmp_path / "keys"
    open_keyring(keys, env={}, create=True)
    (keys / "master.key").unlink()  # lost, or not restored with the rest of a backup
    for create in (True, False):
        with _pytest.raises(
            CryptoError, match="master key file .* is missing but the keyring .* exists: restore"
        ) as info:
            open_keyring(keys, env={}, create=create)
        assert info.value.reason == "missing"
    assert not (keys / "master.key").exists()  # nothing silently made in its place
