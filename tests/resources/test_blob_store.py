"""BlobStore against a real folder: encrypted roundtrips, atomic writes, key/name validation, deletes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grace_pipelines.resources.blob_store import BlobError, BlobStore

KEY = "0123456789abcdef"
OTHER = "fedcba9876543210"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(root=str(tmp_path / "store"), keys_dir=str(tmp_path / "keys"))


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_bytes_roundtrip_with_real_media(store: BlobStore, tmp_path: Path) -> None:
    audio = (FIXTURES / "standup.mp3").read_bytes()
    assert store.put_bytes(KEY, "original.mp3", audio) == len(audio)
    assert store.exists(KEY, "original.mp3")
    assert store.get_bytes(KEY, "original.mp3") == audio
    # stored sealed under root/key/name: no plaintext, not even the first 4 KiB
    sealed = (tmp_path / "store" / KEY / "original.mp3").read_bytes()
    assert sealed != audio and audio[:4096] not in sealed and audio[2048:2112] not in sealed
    assert len(sealed) > len(audio)


def test_overwrite_replaces_content(store: BlobStore) -> None:
    store.put_bytes(KEY, "chunks.json", b"a much longer first version of the blob")
    store.put_bytes(KEY, "chunks.json", b"short")
    assert store.get_bytes(KEY, "chunks.json") == b"short"


def test_empty_blob_roundtrip(store: BlobStore) -> None:
    assert store.put_bytes(KEY, "empty.bin", b"") == 0
    assert store.exists(KEY, "empty.bin")
    assert store.get_bytes(KEY, "empty.bin") == b""


def test_json_roundtrip_keeps_unicode(store: BlobStore, tmp_path: Path) -> None:
    value = {"segments": [{"start": 0.3, "end": 3.38, "text": "Grüße, naïve café ☕"}], "n": 1}
    size = store.put_json(KEY, "transcript.json", value)
    raw = (tmp_path / "store" / KEY / "transcript.json").read_bytes()
    assert size == len(store.get_bytes(KEY, "transcript.json"))
    assert "Grüße".encode() in store.get_bytes(KEY, "transcript.json")  # UTF-8, not \\u escapes
    assert "Grüße".encode() not in raw and b"segments" not in raw  # sealed at rest
    assert store.get_json(KEY, "transcript.json") == value


def test_invalid_json_names_the_blob(store: BlobStore) -> None:
    store.put_bytes(KEY, "broken.json", b"{not json")
    with pytest.raises(BlobError) as info:
        store.get_json(KEY, "broken.json")
    assert f"{KEY}/broken.json" in str(info.value)


def test_atomic_write_leaves_no_temp_files(store: BlobStore, tmp_path: Path) -> None:
    for i in range(5):
        store.put_bytes(KEY, f"blob-{i}.bin", os.urandom(1000 + i))
    store.put_json(KEY, "meta.json", {"ok": True})
    names = sorted(p.name for p in _all_files(tmp_path / "store"))
    assert names == sorted([f"blob-{i}.bin" for i in range(5)] + ["meta.json"])
    assert not [n for n in os.listdir(tmp_path / "store" / KEY) if n.startswith(".tmp-")]
    assert store.list(KEY) == names


def test_failed_write_cleans_up_temp_and_keeps_old_blob(store: BlobStore, tmp_path: Path) -> None:
    store.put_bytes(KEY, "transcript.json", b"old")

    # A non-bytes payload makes the write fail after the temp file was created.
    with pytest.raises(TypeError):
        store.put_bytes(KEY, "transcript.json", "not bytes")  # type: ignore[arg-type]
    assert store.get_bytes(KEY, "transcript.json") == b"old"
    assert [p.name for p in _all_files(tmp_path / "store")] == ["transcript.json"]


@pytest.mark.parametrize(
    "name",
    ["../x", "a/b", "..", ".", ".hidden", "", "a\\b", "x" * 65, "name with space", "/etc/passwd"],
)
def test_invalid_names_rejected(store: BlobStore, tmp_path: Path, name: str) -> None:
    with pytest.raises(BlobError) as info:
        store.put_bytes(KEY, name, b"data")
    assert "invalid blob name" in str(info.value)
    with pytest.raises(BlobError):
        store.get_bytes(KEY, name)
    with pytest.raises(BlobError):
        store.exists(KEY, name)
    with pytest.raises(BlobError):
        store.delete(KEY, name)
    assert _all_files(tmp_path / "store") == [] if (tmp_path / "store").exists() else True


@pytest.mark.parametrize(
    "key",
    [
        "../x",
        "a/b",
        "..",
        "",
        "0123456789abcde",
        "0123456789abcdef0",
        "0123456789abcdeg",
        "../../../../tmp",
        "0123456789abcdef/../x",
    ],
)
def test_invalid_keys_rejected(store: BlobStore, tmp_path: Path, key: str) -> None:
    with pytest.raises(BlobError) as info:
        store.put_bytes(key, "ok.bin", b"data")
    assert "invalid source key" in str(info.value)
    with pytest.raises(BlobError):
        store.get_bytes(key, "ok.bin")
    with pytest.raises(BlobError):
        store.list(key)
    with pytest.raises(BlobError):
        store.delete_source(key)
    assert _all_files(tmp_path / "store") == [] if (tmp_path / "store").exists() else True


def test_missing_blob_error_names_key_and_name(store: BlobStore) -> None:
    with pytest.raises(BlobError) as info:
        store.get_bytes(KEY, "transcript.json")
    message = str(info.value)
    assert KEY in message and "transcript.json" in message
    assert not store.exists(KEY, "transcript.json")
    with pytest.raises(BlobError, match="transcript.json"):
        store.get_json(KEY, "transcript.json")


def test_list_and_delete(store: BlobStore, tmp_path: Path) -> None:
    assert store.list(KEY) == []
    store.put_bytes(KEY, "b.bin", b"12345")
    store.put_bytes(KEY, "a.bin", b"12")
    assert store.list(KEY) == ["a.bin", "b.bin"]
    on_disk = (tmp_path / "store" / KEY / "b.bin").stat().st_size
    assert store.delete(KEY, "b.bin") == on_disk > 5  # bytes freed on disk (sealed size)
    assert store.delete(KEY, "b.bin") == 0  # already gone: no error
    assert store.list(KEY) == ["a.bin"]


def test_delete_source_removes_only_that_source(store: BlobStore, tmp_path: Path) -> None:
    store.put_bytes(KEY, "original.mp3", b"x" * 100)
    store.put_json(KEY, "chunks.json", [1, 2, 3])
    store.put_bytes(OTHER, "original.mp3", b"y" * 7)
    expected = sum(p.stat().st_size for p in (tmp_path / "store" / KEY).iterdir())
    assert expected > 100 + len(b"[1, 2, 3]")
    assert store.delete_source(KEY) == expected
    assert not (tmp_path / "store" / KEY).exists()
    assert store.list(KEY) == []
    with pytest.raises(BlobError):
        store.get_bytes(KEY, "original.mp3")
    assert store.get_bytes(OTHER, "original.mp3") == b"y" * 7
    assert store.delete_source(KEY) == 0  # idempotent
