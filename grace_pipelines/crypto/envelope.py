"""AES-256-GCM envelope encryption for blobs at rest (pure functions, no I/O, no Dagster).

Every blob gets its own fresh random 256-bit *data key*. The data is encrypted with that key
(AES-256-GCM); the data key itself is *wrapped* (encrypted) by the keyring's active
key-encryption key (KEK) and stored in the blob's header. Key rotation therefore only
re-wraps a 48-byte header field (:func:`rewrap`); the ciphertext is never touched.

API (all keyword arguments after ``*`` are required where shown)::

    seal(plaintext: bytes, keyring, *, aad: bytes, segment_size: int = SEGMENT_SIZE) -> bytes
    open_blob(blob: bytes, keyring, *, aad: bytes, name: str) -> bytes
    seal_stream(reader, writer, keyring, *, aad: bytes, length: int, segment_size=SEGMENT_SIZE) -> int
    open_stream(reader, writer, keyring, *, aad: bytes, name: str) -> int
    rewrap(blob: bytes, keyring, *, aad: bytes, name: str = "blob") -> bytes
    kek_id_of(blob: bytes, *, name: str = "blob") -> str      # needs only the first HEADER_MAX bytes
    inspect(blob: bytes, *, name: str = "blob") -> EnvelopeInfo
    is_envelope(data: bytes) -> bool
    store_aad(source_key: str, blob_name: str) -> bytes        # b"source_key/blob_name"
    class CryptoError(RuntimeError)  # .name (the blob/file), .reason (a short code)

``keyring`` is a :class:`grace_pipelines.crypto.keyring.Keyring` (duck typed: ``.active`` and
``.get(kek_id)`` returning objects with ``.id``, ``.wrap(key, aad)`` and
``.unwrap(nonce, wrapped, aad)``).

``aad`` (associated data) is authenticated but not stored: the blob store passes
``store_aad(source_key, name)`` (``b"source_key/blob_name"``), so a blob copied or renamed to
another place fails to open. The same ``aad`` must be given to ``seal``, ``open_blob`` and
``rewrap``.

Errors: every failure is a :class:`CryptoError` whose message names the blob and the reason,
never plaintext or key material. ``reason`` is one of ``not_envelope``, ``unsupported_version``,
``truncated``, ``malformed``, ``unknown_key``, ``retired_key``, ``auth_failed`` (wrong key,
wrong name/aad, or tampered bytes: AES-GCM cannot tell these apart, by design).

Binary format, version 1 (integers big-endian)::

    offset  size  field
    0       4     magic  b"GRCE"
    4       1     version (1)
    5       1     L = length of the KEK id (1..64)
    6       L     KEK id, ASCII [A-Za-z0-9._-]
    6+L     12    wrap nonce (random)
    18+L    48    wrapped data key: AES-GCM(KEK, wrap nonce, data key, wrap aad) = 32 + 16-byte tag
    66+L    4     segment size S (plaintext bytes per segment)
    70+L    8     plaintext length N
    78+L    12    data nonce (random 96 bits)
    90+L    ...   body: ceil(N/S) segments (one when N == 0), each AES-GCM ciphertext + 16-byte tag

* Data segments: segment *i* is encrypted under the data key with nonce
  ``data_nonce XOR (0^7 || i as u32 || last_flag)`` (the STREAM construction, as in Tink's
  streaming AEAD), so segments cannot be reordered, dropped or the blob cut at a segment
  boundary without detection. Their associated data is
  ``magic || version || S || N || data_nonce || aad``: the immutable part of the header plus
  the caller's aad. The KEK id and wrapped key are deliberately *not* in it, so rewrap does not
  change the body.
* Wrapping: AES-256-GCM under the KEK with its own random 96-bit nonce and associated data
  ``b"GRCE\\x01wrap" || L || kek_id || data_nonce || aad``. Chosen over RFC 3394 AES key wrap
  because (1) it binds context: the wrapped key only opens for this KEK id, this blob's data
  nonce and this blob name (RFC 3394 has no associated data); (2) one primitive, one failure
  mode and one error path; (3) random 96-bit nonces are safe for far more than 2^32 wraps
  per KEK (the NIST bound), and a KEK wraps one key per blob write and per rotation.
* Header overhead is 90 + len(kek id) bytes (~110) plus 16 bytes per 1 MiB segment.

Size limits: inputs are processed in segments of ``SEGMENT_SIZE`` (1 MiB) with one AES-GCM
call each, so there is no per-call GCM limit (2^32 segments of up to 2^30 bytes each). The
bytes API (``seal``/``open_blob``) holds input and output in memory at once (about 2x the
blob; a 100 MB blob seals in ~0.1 s); ``seal_stream``/``open_stream`` work file object to file
object with about one segment of memory, for large media. Both produce the same format.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"GRCE"
VERSION = 1
SEGMENT_SIZE = 1 << 20
MAX_SEGMENT_SIZE = 1 << 30
TAG_SIZE = 16
NONCE_SIZE = 12
KEY_SIZE = 32
WRAPPED_SIZE = KEY_SIZE + TAG_SIZE
MAX_KEK_ID = 64
_PREFIX = struct.Struct(">4sBB")  # magic, version, kek id length
_TAIL = struct.Struct(">12s48sIQ12s")  # wrap nonce, wrapped key, segment size, length, data nonce
HEADER_MIN = _PREFIX.size + 1 + _TAIL.size
HEADER_MAX = _PREFIX.size + MAX_KEK_ID + _TAIL.size  # enough bytes for kek_id_of / inspect
KEK_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class CryptoError(RuntimeError):
    """A blob, key file or keyring cannot be sealed or opened.

    The message names the object and the reason; it never carries plaintext or key material.
    ``name`` is the blob or file concerned (or None), ``reason`` a short machine code.
    """

    def __init__(self, message: str, *, name: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class EnvelopeInfo:
    """Public header fields of an envelope (no key material)."""

    version: int
    kek_id: str
    segment_size: int
    plaintext_length: int
    header_length: int

    @property
    def ciphertext_length(self) -> int:
        """Expected body length: plaintext plus one tag per segment."""
        return self.plaintext_length + TAG_SIZE * _segment_count(self.plaintext_length, self.segment_size)


@dataclass(frozen=True)
class _Header:
    info: EnvelopeInfo
    wrap_nonce: bytes
    wrapped: bytes
    data_nonce: bytes


def store_aad(source_key: str, blob_name: str) -> bytes:
    """The associated data the blob store binds each blob to: ``b"source_key/blob_name"``."""
    return f"{source_key}/{blob_name}".encode()


def is_envelope(data: bytes) -> bool:
    """True when ``data`` starts with this module's magic and a known version."""
    return len(data) >= 5 and bytes(data[:4]) == MAGIC and data[4] == VERSION


def _segment_count(length: int, segment_size: int) -> int:
    return max(1, -(-length // segment_size))


def _segment_nonce(base: bytes, index: int, last: bool) -> bytes:
    suffix = index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")
    tail = bytes(a ^ b for a, b in zip(base[7:], suffix))
    return base[:7] + tail


def _data_aad(segment_size: int, length: int, data_nonce: bytes, aad: bytes) -> bytes:
    return MAGIC + bytes([VERSION]) + struct.pack(">IQ", segment_size, length) + data_nonce + bytes(aad)


def _wrap_aad(kek_id: str, data_nonce: bytes, aad: bytes) -> bytes:
    kid = kek_id.encode("ascii")
    return MAGIC + bytes([VERSION]) + b"wrap" + bytes([len(kid)]) + kid + data_nonce + bytes(aad)


def _fail(name: str, reason: str, detail: str) -> CryptoError:
    return CryptoError(f"blob {name} cannot be opened: {detail}", name=name, reason=reason)


def _check_aad(aad: Any) -> bytes:
    if not isinstance(aad, (bytes, bytearray, memoryview)):
        raise TypeError("aad must be bytes (e.g. store_aad(source_key, blob_name))")
    return bytes(aad)


def _parse_header(blob: bytes, name: str) -> _Header:
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError("blob must be bytes")
    if len(blob) < 4 or bytes(blob[:4]) != MAGIC:
        raise _fail(name, "not_envelope", "not an envelope (missing GRCE header; plaintext or foreign file?)")
    if len(blob) < _PREFIX.size:
        raise _fail(name, "truncated", f"truncated ({len(blob)} bytes, shorter than the header)")
    _, version, kid_len = _PREFIX.unpack_from(blob, 0)
    if version != VERSION:
        raise _fail(name, "unsupported_version", f"unsupported envelope version {version} (this code reads {VERSION})")
    if not 1 <= kid_len <= MAX_KEK_ID:
        raise _fail(name, "malformed", f"malformed header (key id length {kid_len})")
    end = _PREFIX.size + kid_len + _TAIL.size
    if len(blob) < end:
        raise _fail(name, "truncated", f"truncated ({len(blob)} bytes, shorter than the {end}-byte header)")
    raw_id = bytes(blob[_PREFIX.size : _PREFIX.size + kid_len])
    try:
        kek_id = raw_id.decode("ascii")
    except UnicodeDecodeError:
        kek_id = ""
    if not KEK_ID_RE.match(kek_id):
        raise _fail(name, "malformed", "malformed header (key id is not a valid id)")
    wrap_nonce, wrapped, segment_size, length, data_nonce = _TAIL.unpack_from(blob, _PREFIX.size + kid_len)
    if not 1 <= segment_size <= MAX_SEGMENT_SIZE:
        raise _fail(name, "malformed", f"malformed header (segment size {segment_size})")
    info = EnvelopeInfo(
        version=version, kek_id=kek_id, segment_size=segment_size, plaintext_length=length, header_length=end
    )
    return _Header(info=info, wrap_nonce=wrap_nonce, wrapped=wrapped, data_nonce=data_nonce)


def _encode_header(
    kek_id: str, wrap_nonce: bytes, wrapped: bytes, segment_size: int, length: int, data_nonce: bytes
) -> bytes:
    kid = kek_id.encode("ascii")
    return (
        _PREFIX.pack(MAGIC, VERSION, len(kid)) + kid + _TAIL.pack(wrap_nonce, wrapped, segment_size, length, data_nonce)
    )


def _unwrap(header: _Header, keyring: Any, aad: bytes, name: str) -> bytes:
    kek_id = header.info.kek_id
    try:
        kek = keyring.get(kek_id)
    except CryptoError as exc:
        raise _fail(name, exc.reason or "unknown_key", f"unknown key id {kek_id!r} (not in this keyring)") from None
    if not getattr(kek, "can_decrypt", True):
        raise _fail(name, "retired_key", f"key {kek_id} is retired and its material was destroyed")
    try:
        return kek.unwrap(header.wrap_nonce, header.wrapped, _wrap_aad(kek_id, header.data_nonce, aad))
    except InvalidTag:
        raise _fail(
            name,
            "auth_failed",
            "authentication failed: wrong key, blob moved or renamed (aad), "
            "or tampered header (data key does not unwrap)",
        ) from None


def _begin(keyring: Any, aad: bytes, segment_size: int, length: int) -> tuple[bytes, AESGCM, bytes, bytes]:
    """Fresh data key and nonce, wrapped under the active KEK: (header, data cipher, nonce, data aad)."""
    if not 1 <= segment_size <= MAX_SEGMENT_SIZE:
        raise ValueError(f"segment_size must be in 1..{MAX_SEGMENT_SIZE}")
    if length < 0:
        raise ValueError("length must be >= 0")
    kek = keyring.active
    data_key = AESGCM.generate_key(bit_length=256)
    data_nonce = os.urandom(NONCE_SIZE)
    wrap_nonce, wrapped = kek.wrap(data_key, _wrap_aad(kek.id, data_nonce, aad))
    header = _encode_header(kek.id, wrap_nonce, wrapped, segment_size, length, data_nonce)
    return header, AESGCM(data_key), data_nonce, _data_aad(segment_size, length, data_nonce, aad)


def seal(plaintext: bytes, keyring: Any, *, aad: bytes, segment_size: int = SEGMENT_SIZE) -> bytes:
    """Encrypt ``plaintext`` under a fresh data key wrapped by the keyring's active KEK.

    ``aad`` binds the blob to its place (``store_aad(source_key, name)``). Returns the
    self-describing envelope (header + segments). Never reuses a data key or nonce.
    """
    if not isinstance(plaintext, (bytes, bytearray, memoryview)):
        raise TypeError("plaintext must be bytes")
    aad = _check_aad(aad)
    view = memoryview(plaintext).cast("B")
    length = len(view)
    header, aead, data_nonce, data_aad = _begin(keyring, aad, segment_size, length)
    count = _segment_count(length, segment_size)
    parts: list[bytes] = [header]
    for i in range(count):
        chunk = view[i * segment_size : (i + 1) * segment_size]
        parts.append(aead.encrypt(_segment_nonce(data_nonce, i, i == count - 1), chunk, data_aad))
    return b"".join(parts)


def _read_exactly(reader: BinaryIO, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = reader.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def seal_stream(
    reader: BinaryIO, writer: BinaryIO, keyring: Any, *, aad: bytes, length: int, segment_size: int = SEGMENT_SIZE
) -> int:
    """Streaming :func:`seal`: read exactly ``length`` bytes from ``reader``, write the envelope.

    Memory stays at about one segment whatever the size (use it to copy a large inbox file into
    the store: ``length = os.fstat(src.fileno()).st_size``). The output is byte-for-byte what
    ``seal`` would produce with the same keys. Returns the bytes written. Raises ValueError when
    the reader yields fewer or more than ``length`` bytes (the file changed while being read);
    the caller then discards the partial output (e.g. its temp file).
    """
    aad = _check_aad(aad)
    header, aead, data_nonce, data_aad = _begin(keyring, aad, segment_size, length)
    writer.write(header)
    written = len(header)
    count = _segment_count(length, segment_size)
    for i in range(count):
        want = min(segment_size, length - i * segment_size)
        chunk = _read_exactly(reader, want)
        if len(chunk) != want:
            raise ValueError(f"source ended after {i * segment_size + len(chunk)} of {length} bytes")
        sealed = aead.encrypt(_segment_nonce(data_nonce, i, i == count - 1), chunk, data_aad)
        writer.write(sealed)
        written += len(sealed)
    if reader.read(1):
        raise ValueError(f"source is longer than the {length} bytes announced")
    return written


def open_stream(reader: BinaryIO, writer: BinaryIO, keyring: Any, *, aad: bytes, name: str) -> int:
    """Streaming :func:`open_blob`: decrypt an envelope from ``reader`` into ``writer``.

    Each segment is authenticated before its plaintext is written, but an error in a later
    segment (tampering, truncation) is only found when it is reached: on CryptoError the caller
    must discard what was written. Write to memory or a pipe, never to a plaintext temp file.
    Returns the plaintext bytes written.
    """
    aad = _check_aad(aad)
    head = _read_exactly(reader, _PREFIX.size)
    if len(head) == _PREFIX.size and head[:4] == MAGIC and head[4] == VERSION:
        head += _read_exactly(reader, head[5] + _TAIL.size)
    header = _parse_header(head, name)
    info = header.info
    data_key = _unwrap(header, keyring, aad, name)
    aead = AESGCM(data_key)
    data_aad = _data_aad(info.segment_size, info.plaintext_length, header.data_nonce, aad)
    count = _segment_count(info.plaintext_length, info.segment_size)
    written = 0
    for i in range(count):
        want = min(info.segment_size, info.plaintext_length - i * info.segment_size) + TAG_SIZE
        chunk = _read_exactly(reader, want)
        if len(chunk) != want:
            raise _fail(name, "truncated", f"truncated (segment {i + 1} of {count} is {len(chunk)} of {want} bytes)")
        try:
            plain = aead.decrypt(_segment_nonce(header.data_nonce, i, i == count - 1), chunk, data_aad)
        except InvalidTag:
            raise _fail(
                name,
                "auth_failed",
                f"authentication failed: tampered ciphertext (segment {i + 1} of {count} does not authenticate)",
            ) from None
        writer.write(plain)
        written += len(plain)
    if reader.read(1):
        raise _fail(name, "malformed", "tampered or malformed (unexpected trailing bytes)")
    return written


def open_blob(blob: bytes, keyring: Any, *, aad: bytes, name: str) -> bytes:
    """Authenticate and decrypt an envelope; returns the plaintext or raises CryptoError.

    ``name`` is only used in error messages (e.g. ``"0123abcd4567ef89/transcript.json"``).
    Nothing is returned unless every segment authenticates, so the caller never sees garbage.
    """
    aad = _check_aad(aad)
    header = _parse_header(blob, name)
    info = header.info
    body = memoryview(blob)[info.header_length :]
    expected = info.ciphertext_length
    if len(body) < expected:
        raise _fail(name, "truncated", f"truncated (body is {len(body)} bytes, header says {expected})")
    if len(body) > expected:
        raise _fail(name, "malformed", f"tampered or malformed ({len(body) - expected} unexpected trailing bytes)")
    data_key = _unwrap(header, keyring, aad, name)
    aead = AESGCM(data_key)
    data_aad = _data_aad(info.segment_size, info.plaintext_length, header.data_nonce, aad)
    count = _segment_count(info.plaintext_length, info.segment_size)
    step = info.segment_size + TAG_SIZE
    parts: list[bytes] = []
    for i in range(count):
        chunk = body[i * step : (i + 1) * step]
        try:
            parts.append(aead.decrypt(_segment_nonce(header.data_nonce, i, i == count - 1), chunk, data_aad))
        except InvalidTag:
            where = f"segment {i + 1} of {count}" if count > 1 else "data"
            raise _fail(
                name, "auth_failed", f"authentication failed: tampered ciphertext ({where} does not authenticate)"
            ) from None
    return parts[0] if count == 1 else b"".join(parts)


def rewrap(blob: bytes, keyring: Any, *, aad: bytes, name: str = "blob") -> bytes:
    """Re-wrap the blob's data key under the keyring's active KEK; the body is unchanged.

    Unwraps with the KEK named in the header (which must still hold material, i.e. be active
    or retiring). Returns the blob unchanged when it is already wrapped by the active KEK.
    Only the wrapped key is authenticated here; :func:`open_blob` verifies the data.
    """
    aad = _check_aad(aad)
    header = _parse_header(blob, name)
    data_key = _unwrap(header, keyring, aad, name)
    active = keyring.active
    if active.id == header.info.kek_id:
        return bytes(blob)
    wrap_nonce, wrapped = active.wrap(data_key, _wrap_aad(active.id, header.data_nonce, aad))
    info = header.info
    new_header = _encode_header(
        active.id, wrap_nonce, wrapped, info.segment_size, info.plaintext_length, header.data_nonce
    )
    return b"".join((new_header, memoryview(blob)[info.header_length :]))


def inspect(blob: bytes, *, name: str = "blob") -> EnvelopeInfo:
    """Header fields of an envelope (needs only its first HEADER_MAX bytes)."""
    return _parse_header(blob, name).info


def kek_id_of(blob: bytes, *, name: str = "blob") -> str:
    """The id of the KEK that wraps this blob's data key (needs only the first HEADER_MAX bytes)."""
    return _parse_header(blob, name).info.kek_id
