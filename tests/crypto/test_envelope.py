"""Envelope encryption: roundtrips, tamper detection at every byte, aad binding, rewrap."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from grace_pipelines.crypto import (
    HEADER_MAX,
    CryptoError,
    Keyring,
    MasterKey,
    inspect,
    is_envelope,
    kek_id_of,
    open_blob,
    open_stream,
    rewrap,
    seal,
    seal_stream,
    store_aad,
)

PHRASE = b"the quarterly deadline moves to the ninth of March"
AAD = store_aad("0123456789abcdef", "transcript.json")
NAME = "0123456789abcdef/transcript.json"


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring.create(tmp_path / "keys" / "keyring.bin", MasterKey.generate())


def _open(blob: bytes, keyring: Keyring, aad: bytes = AAD, name: str = NAME) -> bytes:
    return open_blob(blob, keyring, aad=aad, name=name)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 1000, 4096])
def test_roundtrip_sizes(keyring: Keyring, size: int) -> None:
    data = os.urandom(size)
    blob = seal(data, keyring, aad=AAD)
    assert is_envelope(blob)
    assert _open(blob, keyring) == data
    info = inspect(blob)
    assert info.plaintext_length == size and info.kek_id == keyring.active.id
    assert len(blob) == info.header_length + info.ciphertext_length


@pytest.mark.parametrize("size", [0, 63, 64, 65, 64 * 5, 64 * 5 + 1])
def test_roundtrip_multi_segment(keyring: Keyring, size: int) -> None:
    data = os.urandom(size)
    blob = seal(data, keyring, aad=AAD, segment_size=64)
    assert _open(blob, keyring) == data
    assert inspect(blob).segment_size == 64


def test_roundtrip_accepts_bytearray_and_memoryview(keyring: Keyring) -> None:
    data = bytearray(os.urandom(3000))
    assert _open(seal(data, keyring, aad=AAD), keyring) == bytes(data)
    assert _open(seal(memoryview(data)[10:], keyring, aad=AAD), keyring) == bytes(data[10:])


def test_hundred_megabytes(keyring: Keyring) -> None:
    data = os.urandom(100 * 1024 * 1024)
    blob = seal(data, keyring, aad=AAD)
    assert len(blob) - len(data) < 200 + 16 * 100
    assert _open(blob, keyring) == data


def test_fresh_data_key_and_nonce_per_blob(keyring: Keyring) -> None:
    a = seal(PHRASE, keyring, aad=AAD)
    b = seal(PHRASE, keyring, aad=AAD)
    assert a != b
    ha, hb = inspect(a).header_length, inspect(b).header_length
    assert a[ha:] != b[hb:]


def test_no_plaintext_in_sealed_bytes(keyring: Keyring) -> None:
    data = b"intro " + PHRASE * 50 + b" outro"
    for segment_size in (16, 1 << 20):
        blob = seal(data, keyring, aad=AAD, segment_size=segment_size)
        for needle in (PHRASE, PHRASE[:16], b"deadline", b"quarterly"):
            assert needle not in blob


def _assert_fails(blob: bytes, keyring: Keyring, *, aad: bytes = AAD, name: str = NAME) -> CryptoError:
    with pytest.raises(CryptoError) as info:
        _open(blob, keyring, aad=aad, name=name)
    err = info.value
    message = str(err)
    assert name in message and err.name == name
    assert err.reason in {
        "not_envelope",
        "unsupported_version",
        "truncated",
        "malformed",
        "unknown_key",
        "retired_key",
        "auth_failed",
    }
    assert PHRASE[:12] not in message.encode() and "deadline" not in message
    return err


@pytest.mark.parametrize("segment_size", [1 << 20, 32])
def test_flip_any_byte_is_a_clear_error(keyring: Keyring, segment_size: int) -> None:
    """Every byte of header, key id, wrap nonce, wrapped key, sizes, nonce, ciphertext and tag."""
    blob = seal(PHRASE + b" and more words", keyring, aad=AAD, segment_size=segment_size)
    reasons: dict[str, int] = {}
    for pos in range(len(blob)):
        for mask in (0x01, 0x80):
            bad = bytearray(blob)
            bad[pos] ^= mask
            err = _assert_fails(bytes(bad), keyring)
            reasons[err.reason] = reasons.get(err.reason, 0) + 1
    assert {"not_envelope", "unsupported_version", "auth_failed"} <= set(reasons)


def test_region_specific_reasons(keyring: Keyring) -> None:
    blob = seal(PHRASE, keyring, aad=AAD)
    info = inspect(blob)
    kid_len = len(info.kek_id)
    regions = {
        "magic": (0, "not_envelope"),
        "version": (4, "unsupported_version"),
        "wrap nonce": (6 + kid_len + 3, "auth_failed"),
        "wrapped key": (6 + kid_len + 12 + 5, "auth_failed"),
        "data nonce": (6 + kid_len + 12 + 48 + 12 + 2, "auth_failed"),
        "ciphertext": (info.header_length + 3, "auth_failed"),
        "tag": (len(blob) - 1, "auth_failed"),
    }
    for region, (pos, reason) in regions.items():
        bad = bytearray(blob)
        bad[pos] ^= 0x04
        assert _assert_fails(bytes(bad), keyring).reason == reason, region
    bad = bytearray(blob)
    bad[6] = ord("Z") if bad[6] != ord("Z") else ord("Y")  # a different, valid-looking key id
    err = _assert_fails(bytes(bad), keyring)
    assert err.reason == "unknown_key" and "unknown key id" in str(err)


def test_truncation_anywhere_is_detected(keyring: Keyring) -> None:
    blob = seal(PHRASE * 3, keyring, aad=AAD, segment_size=40)
    for cut in range(len(blob)):
        err = _assert_fails(blob[:cut], keyring)
        if cut >= inspect(blob).header_length:
            assert err.reason == "truncated"
    assert _assert_fails(blob + b"\x00", keyring).reason == "malformed"


def test_segments_cannot_be_reordered_or_dropped(keyring: Keyring) -> None:
    blob = seal(bytes(range(256)) * 2, keyring, aad=AAD, segment_size=128)
    h = inspect(blob).header_length
    step = 128 + 16
    segs = [blob[h + i * step : h + (i + 1) * step] for i in range(4)]
    swapped = blob[:h] + segs[1] + segs[0] + segs[2] + segs[3]
    assert _assert_fails(swapped, keyring).reason == "auth_failed"
    duplicated = blob[:h] + segs[0] + segs[0] + segs[2] + segs[3]
    assert _assert_fails(duplicated, keyring).reason == "auth_failed"


def test_wrong_aad_renamed_blob_fails(keyring: Keyring) -> None:
    blob = seal(PHRASE, keyring, aad=AAD)
    other = "fedcba9876543210/transcript.json"
    err = _assert_fails(blob, keyring, aad=other.encode(), name=other)
    assert err.reason == "auth_failed" and "renamed" in str(err)


def test_header_swapped_between_blobs_fails(keyring: Keyring) -> None:
    a = seal(PHRASE, keyring, aad=AAD)
    b = seal(b"x" * len(PHRASE), keyring, aad=AAD)
    h = inspect(a).header_length
    assert _assert_fails(a[:h] + b[h:], keyring).reason == "auth_failed"


def test_not_an_envelope(keyring: Keyring) -> None:
    for junk in (b"", b"RIFF....WAVEfmt ", PHRASE):
        err = _assert_fails(junk, keyring)
        assert err.reason == "not_envelope" and "not an envelope" in str(err)
        assert not is_envelope(junk)


def test_other_keyring_is_unknown_key(keyring: Keyring, tmp_path: Path) -> None:
    other = Keyring.create(tmp_path / "other" / "keyring.bin", MasterKey.generate())
    err = _assert_fails(seal(PHRASE, other, aad=AAD), keyring)
    assert err.reason == "unknown_key" and other.active.id in str(err)


def test_rewrap_changes_only_the_wrapped_key(keyring: Keyring) -> None:
    data = os.urandom(5000)
    blob = seal(data, keyring, aad=AAD, segment_size=1024)
    old_id = keyring.active.id
    h_old = inspect(blob).header_length
    new_id = keyring.begin_rotation()
    assert new_id != old_id
    again = rewrap(blob, keyring, aad=AAD, name=NAME)
    assert kek_id_of(again) == new_id
    h_new = inspect(again).header_length
    assert again[h_new:] == blob[h_old:]  # ciphertext and tags byte-identical
    assert again[h_new - 12 : h_new] == blob[h_old - 12 : h_old]  # same data nonce
    assert _open(again, keyring) == data
    assert rewrap(again, keyring, aad=AAD, name=NAME) == again  # already on the active key
    keyring.retire(old_id)
    assert _open(again, keyring) == data
    err = _assert_fails(blob, keyring)  # the old copy died with the old key
    assert err.reason == "retired_key" and old_id in str(err)


def test_rewrap_checks_aad_and_names_blob(keyring: Keyring) -> None:
    blob = seal(PHRASE, keyring, aad=AAD)
    keyring.begin_rotation()
    with pytest.raises(CryptoError, match="moved/renamed|renamed") as info:
        rewrap(blob, keyring, aad=b"elsewhere/x", name="elsewhere/x")
    assert "elsewhere/x" in str(info.value)


def test_kek_id_of_needs_only_the_header(keyring: Keyring) -> None:
    blob = seal(os.urandom(10000), keyring, aad=AAD)
    assert kek_id_of(blob[:HEADER_MAX]) == keyring.active.id
    with pytest.raises(CryptoError, match="not an envelope"):
        kek_id_of(b"plain text", name="a/b")


def test_type_errors(keyring: Keyring) -> None:
    with pytest.raises(TypeError):
        seal("text", keyring, aad=AAD)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        seal(b"x", keyring, aad="a/b")  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 1, 64, 200, 1000])
def test_streaming_matches_the_bytes_api(keyring: Keyring, size: int) -> None:
    data = os.urandom(size)
    out = io.BytesIO()
    written = seal_stream(io.BytesIO(data), out, keyring, aad=AAD, length=size, segment_size=64)
    blob = out.getvalue()
    assert written == len(blob) and inspect(blob).segment_size == 64
    assert _open(blob, keyring) == data
    plain = io.BytesIO()
    assert (
        open_stream(io.BytesIO(seal(data, keyring, aad=AAD, segment_size=64)), plain, keyring, aad=AAD, name=NAME)
        == size
    )
    assert plain.getvalue() == data


def test_streaming_large_file(keyring: Keyring, tmp_path: Path) -> None:
    src = tmp_path / "meeting.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    dst = tmp_path / "sealed.bin"
    with open(src, "rb") as reader, open(dst, "wb") as writer:
        seal_stream(reader, writer, keyring, aad=AAD, length=os.fstat(reader.fileno()).st_size)
    assert _open(dst.read_bytes(), keyring) == src.read_bytes()


def test_seal_stream_rejects_a_changing_source(keyring: Keyring) -> None:
    with pytest.raises(ValueError, match="ended after 10 of 20"):
        seal_stream(io.BytesIO(b"x" * 10), io.BytesIO(), keyring, aad=AAD, length=20)
    with pytest.raises(ValueError, match="longer"):
        seal_stream(io.BytesIO(b"x" * 30), io.BytesIO(), keyring, aad=AAD, length=20)


def test_open_stream_detects_tampering_and_truncation(keyring: Keyring) -> None:
    blob = seal(PHRASE * 4, keyring, aad=AAD, segment_size=64)
    for pos in range(0, len(blob), 7):
        bad = bytearray(blob)
        bad[pos] ^= 0x02
        with pytest.raises(CryptoError) as info:
            open_stream(io.BytesIO(bytes(bad)), io.BytesIO(), keyring, aad=AAD, name=NAME)
        assert NAME in str(info.value)
    for cut in (0, 3, 40, len(blob) - 1):
        with pytest.raises(CryptoError, match=NAME):
            open_stream(io.BytesIO(blob[:cut]), io.BytesIO(), keyring, aad=AAD, name=NAME)
    with pytest.raises(CryptoError, match="trailing"):
        open_stream(io.BytesIO(blob + b"!"), io.BytesIO(), keyring, aad=AAD, name=NAME)
