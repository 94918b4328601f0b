"""What kind of file is this, and can we read it?

Classifies a dropped file by extension, probes audio/video with PyAV (no system ffmpeg
needed) for an audio stream and its duration, and checks text documents decode. Every refusal
is a `MediaError` whose message names the file and the reason, so the inbox can quarantine
it with a readable `.reason.txt`.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

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


def is_ignorable(name: str) -> bool:
    """Hidden files, editor swap files and downloads in progress are never picked up."""
    lower = name.lower()
    return name.startswith((".", "~")) or lower.endswith(PARTIAL_SUFFIXES)


def safe_name(name: str, limit: int = 120) -> str:
    """A printable, filesystem-safe version of a hostile file name (for titles and quarantine)."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch if ch.isprintable() else "_" for ch in name)
    name = re.sub(r"[/\\:\x00]", "_", name).strip().lstrip("-.") or "unnamed"
    if len(name) > limit:
        stem, dot, ext = name.rpartition(".")
        keep = ext if dot and len(ext) <= 10 else ""
        name = name[: limit - len(keep) - 2] + "~" + ("." + keep if keep else "")
    return name


def probe_audio(data: bytes | Path, name: str) -> float:
    """Duration in seconds of the first audio stream; raises MediaError if there is none."""
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
            return duration
    except MediaError:
        raise
    except Exception as exc:  # PyAV raises many error types for garbage input
        detail = str(exc).replace(repr(str(source)), "file").replace(str(source), "file")
        raise MediaError(f"{name}: not decodable audio ({type(exc).__name__}: {detail})") from None


def decode_text(data: bytes, name: str) -> str:
    for encoding in ("utf-8-sig", "utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig",):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise MediaError(f"{name}: not UTF-8 text")
    if "\x00" in text:
        raise MediaError(f"{name}: looks binary, not a text document")
    if not text.strip():
        raise MediaError(f"{name}: document has no text")
    return text


def probe(path: Path, name: str | None = None, max_bytes: int | None = None) -> Probe:
    """Classify and validate one file. Raises MediaError with the reason to quarantine."""
    name = name or path.name
    kind = kind_of(name)
    if kind is None:
        ext = extension(name) or "(none)"
        raise MediaError(
            f"{name}: unsupported file type .{ext}; supported: {', '.join(sorted(SUPPORTED_EXTS))}"
        )
    size = path.stat().st_size
    if size == 0:
        raise MediaError(f"{name}: file is empty (0 bytes)")
    if max_bytes is not None and size > max_bytes:
        raise MediaError(f"{name}: file is {size} bytes, above the limit of {max_bytes} bytes")
    if kind == "document":
        ext = extension(name)
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
    return Probe(kind, extension(name), probe_audio(path, name))
