"""Size class of a source from its bytes, audio seconds and text size: tiny, normal or heavy.

Tiny work is batched, heavy work waits for off-peak hours; the thresholds are settings.
"""

from __future__ import annotations

from dataclasses import dataclass

SIZE_CLASSES = ("tiny", "normal", "heavy")


@dataclass(frozen=True)
class SizeThresholds:
    tiny_audio_s: float = 30.0  # a voice note under half a minute
    tiny_text_bytes: int = 20_000  # a note or a short page
    heavy_audio_s: float = 20 * 60.0  # a long meeting
    heavy_bytes: int = 200 * 1024**2  # any file this big, whatever it is


def size_class(kind: str, size_bytes: int, duration_s: float | None, t: SizeThresholds = SizeThresholds()) -> str:
    """`kind` is audio, video or document; `duration_s` the audio length (None if unknown)."""
    if size_bytes > t.heavy_bytes:
        return "heavy"
    if kind in ("audio", "video"):
        if duration_s is None:
            return "normal"  # unknown length: neither batched nor deferred
        if duration_s > t.heavy_audio_s:
            return "heavy"
        return "tiny" if duration_s < t.tiny_audio_s else "normal"
    return "tiny" if size_bytes < t.tiny_text_bytes else "normal"
