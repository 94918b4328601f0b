"""What kind of file is this, and can we read it?

Classifies a dropped file by extension, probes audio/video with PyAV (no system ffmpeg
needed) for an audio stream and its duration, and checks text documents decode. Every refusal
is a `MediaError` whose message names the file and the reason, so the inbox can quarantine
it with a readable `.reason.txt`.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

AUDIO_EXTS = frozenset({"wav", "mp3", "m4a", "ogg", "opus", "oga", "flac", "webm", "aac"})
VIDEO_EXTS = frozenset({"mp4", "mkv", "mov"})
DOCUMENT_EXTS = frozenset({"txt", "md", "markdown", "pdf", "html", "htm", "docx"})
SUPPORTED_EXTS = AUDIO_EXTS | VIDEO_EXTS | DOCUMENT_EXTS
SIDECAR_SUFFIX = ".consent.json"
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", ".swp")


class MediaError(ValueError):
    """A file cannot be ingested; the message names the file and why."""


@dataclass(frozen=True)
class Probe:
    kind: str  # audio | video | document
    ext: str
    duration_s: float | None
    chars: int | None = None
    recorded_at: datetime | None = None  # the container's creation-time tag (UTC), when it has one


def extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def kind_of(name: str) -> str | None:
    ext = extension(name)
    if ext in AUDIO_EXTS:
        return "audio"
    if ext in VIDEO_EXTS:
        return "video"
    if ext in DOCUMENT_EXTS:
        return "document"
    return None


def ignore_reason(name: str) -> str | None:
    """Why a name is never picked up from the inbox (hidden, editor temporary, download in
    progress), or None when it is an ordinary name."""
    lower = name.lower()
    if name.startswith("."):
        return "hidden file (the name starts with '.')"
    if name.startswith("~"):
        return "editor temporary or lock file (the name starts with '~')"
    if lower.endswith(PARTIAL_SUFFIXES):
        return f"unfinished download or temporary file (.{extension(name)})"
    return None


def is_ignorable(name: str) -> bool:
    """Hidden files, editor swap files and downloads in progress are never picked up."""
    return ignore_reason(name) is not None


NAME_MAX_BYTES = 255  # the longest file name (in bytes) Linux and macOS file systems accept
MAX_REASON_CHARS = 600  # a refusal reason as stored and shown (quarantine log, outcomes)
_SAFE_NAME_BYTES = 200  # room for a quarantine stamp and the sidecar / .reason.txt suffixes


def _printable(text: str) -> str:
    """Control, format (bidi overrides, zero-width), surrogate-escaped and other unprintable
    characters become `_`, so text is safe in a terminal, a log line or a file name."""
    return "".join(ch if ch.isprintable() else "_" for ch in unicodedata.normalize("NFC", text))


def safe_name(name: str, limit: int = 120) -> str:
    """A printable, filesystem-safe version of a hostile file name (for titles and quarantine):
    at most `limit` characters and 200 UTF-8 bytes, the extension kept when it is short."""
    name = _printable(name)
    name = re.sub(r"[/\\:\x00]", "_", name).strip().lstrip("-.").strip() or "unnamed"
    if len(name) > limit or len(name.encode("utf-8")) > _SAFE_NAME_BYTES:
        _stem, dot, ext = name.rpartition(".")
        keep = "." + ext if dot and len(ext.encode("utf-8")) <= 10 else ""
        room_chars = limit - len(keep) - 1
        room_bytes = _SAFE_NAME_BYTES - len(keep.encode("utf-8")) - len("~")
        head = name[:room_chars]
        while len(head.encode("utf-8")) > room_bytes:
            head = head[:-1]
        name = head + "~" + keep
    return name


def safe_text(text: str, limit: int = 600) -> str:
    """A reason or message made printable and at most `limit` characters (a hostile name or a
    huge sidecar must not make a megabyte `why`)."""
    text = _printable(str(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def name_problem(name: str) -> str | None:
    """What is wrong with a media file's name itself, or None: every refusal names the real
    problem (`...md` has no name before its extension; it is not "an unsupported type md")."""
    if not name.strip():
        return "the file name is empty"
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX_BYTES:
        return f"the file name is longer than {NAME_MAX_BYTES} bytes"
    stem, dot, ext = name.rpartition(".")
    if dot and ext and not stem.strip(" ."):
        return f"no file name before the extension .{ext.lower()}"
    if dot and not ext:
        return "the file name ends with '.': no extension"
    return None


CREATION_TAGS = ("creation_time", "com.apple.quicktime.creationdate", "date")
_EARLIEST_RECORDING = datetime(1980, 1, 1, tzinfo=timezone.utc)  # QuickTime's 1904 and Unix's 1970 zero dates


def parse_creation_time(text: str | None) -> datetime | None:
    """A creation-time tag as UTC (`2026-11-30T09:15:00.000000Z`, `...+0100`; naive is UTC, as
    FFmpeg writes it), or None when absent, unreadable, a zero date or in the future."""
    if not text or not str(text).strip():
        return None
    raw = str(text).strip()
    raw = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    value = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    if value < _EARLIEST_RECORDING or value > datetime.now(timezone.utc):
        return None
    return value


def creation_time(container: Any) -> datetime | None:
    """When a recording was made, from its PyAV container's (else its first tagged stream's) metadata."""
    for holder in (container, *container.streams):
        metadata = holder.metadata or {}
        for tag in CREATION_TAGS:
            found = parse_creation_time(metadata.get(tag))
            if found is not None:
                return found
    return None


def probe_audio(data: bytes | Path, name: str) -> float:
    """Duration in seconds of the first audio stream; raises MediaError if there is none."""
    return probe_media(data, name)[0]


def probe_media(data: bytes | Path, name: str) -> tuple[float, datetime | None]:
    """Duration in seconds of the first audio stream and the recording's creation time (None
    without a tag); raises MediaError if there is no audio stream."""
    import av  # PyAV ships its own FFmpeg libraries

    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    try:
        with av.open(source, mode="r") as container:
            streams = container.streams.audio
            if not streams:
                raise MediaError(f"{name}: no audio track found")
            stream = streams[0]
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            if not duration or duration <= 0:
                # Some containers (raw ADTS, some webm) only know by decoding; count samples.
                samples = 0
                rate = stream.rate or 16000
                for frame in container.decode(stream):
                    samples += frame.samples
                duration = samples / rate
            if duration <= 0:
                raise MediaError(f"{name}: audio track is empty")
            return duration, creation_time(container)
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - PyAV raises many error types for garbage input
        detail = str(exc).replace(repr(str(source)), "file").replace(str(source), "file")
        raise MediaError(f"{name}: not decodable audio ({type(exc).__name__}: {safe_text(detail, 200)})") from None


def decode_text(data: bytes, name: str) -> str:
    """A text document's characters: UTF-8 (a BOM allowed) or UTF-16 with a BOM, else the legacy
    encoding charset-normalizer reads best (cp1252 or latin-1 notes, Shift-JIS). Refuses NUL
    bytes and bytes no encoding reads as text ("looks binary") and empty text, naming the file.

    charset-normalizer alone picks cp1250 for the French and German notes in
    tests/text/test_decode.py (cp1252 ties with it; cp1250 reads "à", "è" as "ŕ", "č") and cp1006
    for a short "Café at 9."; where cp1252 decodes as cleanly and as coherently as its pick, cp1252
    is taken.
    """
    text = None
    for encoding in ("utf-8-sig", "utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig",):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        if b"\x00" in data:
            raise MediaError(f"{name}: looks binary, not a text document")
        from charset_normalizer import from_bytes

        matches = from_bytes(data)
        best = matches.best()
        if best is None:
            raise MediaError(f"{name}: looks binary, not a text document (not UTF-8, and no text encoding fits)")
        text = str(best)
        if best.encoding != "cp1252" and any(
            "cp1252" in match.could_be_from_charset
            and match.percent_chaos <= best.percent_chaos
            and match.percent_coherence >= best.percent_coherence
            for match in matches
        ):
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:  # 0x81, 0x8d, 0x8f, 0x90, 0x9d have no cp1252 character
                pass
    if "\x00" in text:
        raise MediaError(f"{name}: looks binary, not a text document")
    if not text.strip():
        raise MediaError(f"{name}: document has no text")
    return text


def check_file(path: Path, name: str | None = None) -> os.stat_result:
    """The path itself, never following a link: it exists and is a regular file. Raises
    MediaError naming it and the reason; returns its lstat."""
    name = name or safe_name(path.name)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise MediaError(f"{name}: no such file") from None
    except NotADirectoryError:
        raise MediaError(f"{name}: no such file (a folder in its path is a file)") from None
    except PermissionError:
        raise MediaError(f"{name}: permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise MediaError(f"{name}: the file name or path is too long for this file system") from None
        raise MediaError(f"{name}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    if stat.S_ISLNK(st.st_mode):
        raise MediaError(f"{name}: is a symbolic link; links are never followed (give the file itself)")
    if stat.S_ISDIR(st.st_mode):
        raise MediaError(f"{name}: is a directory, not a file (give the files inside it)")
    if not stat.S_ISREG(st.st_mode):
        raise MediaError(f"{name}: not a regular file (a pipe, socket or device)")
    return st


def check_media(filename: str, size: int, name: str, max_bytes: int | None = None) -> str:
    """Name, type and size of a media file, judged without reading it; returns its kind."""
    problem = name_problem(filename)
    if problem:
        raise MediaError(f"{name}: {problem}")
    kind = kind_of(filename)
    if kind is None:
        ext = extension(filename) or "(none)"
        raise MediaError(
            f"{name}: unsupported file type .{safe_name(ext, 20)}; supported: {', '.join(sorted(SUPPORTED_EXTS))}"
        )
    if size == 0:
        raise MediaError(f"{name}: file is empty (0 bytes)")
    if max_bytes is not None and size > max_bytes:
        raise MediaError(f"{name}: file is {size} bytes, above the limit of {max_bytes} bytes")
    return kind


def judge(path: Path, name: str | None = None, max_bytes: int | None = None) -> os.stat_result:
    """The checks that need no reading: never following a link, a regular file, a name with a
    stem, a supported type, not empty and not above `max_bytes`. Raises MediaError naming the
    file and the reason (so a refused file is never copied anywhere); returns its lstat."""
    name = name or safe_name(path.name)
    st = check_file(path, name)
    check_media(path.name, st.st_size, name, max_bytes)
    return st


def probe(path: Path, name: str | None = None, max_bytes: int | None = None) -> Probe:
    """Classify and validate one file. Raises MediaError with the reason to quarantine."""
    name = name or path.name
    judge(path, name, max_bytes)  # a link is refused before anything reads through it
    kind = kind_of(path.name)
    assert kind is not None
    if kind == "document":
        ext = extension(path.name)
        if ext == "pdf":
            with path.open("rb") as handle:
                if not handle.read(1024).lstrip().startswith(b"%PDF"):
                    raise MediaError(f"{name}: not a PDF file (no %PDF header)")
            return Probe(kind, ext, None)
        if ext == "docx":
            with path.open("rb") as handle:
                if handle.read(4) != b"PK\x03\x04":
                    raise MediaError(f"{name}: not a DOCX file (not a zip container)")
            return Probe(kind, ext, None)
        text = decode_text(path.read_bytes(), name)  # txt, md, html: text that must decode
        return Probe(kind, ext, None, chars=len(text))
    duration, recorded_at = probe_media(path, name)
    return Probe(kind, extension(path.name), duration, recorded_at=recorded_at)
