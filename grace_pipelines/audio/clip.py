"""Playback of a cited moment: parse a citation, cut that window out of a recording, play it.

Everything here works on bytes in memory (the decrypted recording from the blob store); no
temporary files are written while decoding. The decoding is done with PyAV (its bundled FFmpeg
libraries, no system ffmpeg needed) and only the window asked for is decoded: the demuxer seeks
to a little before ``start - context`` and decoding stops once ``end + context`` is reached.

Time origin: second 0 is the first decoded sample of the first audio stream, the same origin a
transcriber gets when it decodes the file from the start (for MP3 the encoder delay skipped by
the decoder and for AAC/MP4 the edit list are already applied; the stream's start pts is
subtracted).

Output format (``clip_wav``): a RIFF/WAVE file, PCM signed 16-bit little endian, **mono**
(channels are averaged), at the **source's own sample rate** (no resampling, so sample
positions stay exact: 16 kHz for the fixtures, 48 kHz for Opus, 44.1 kHz for a typical MP3).
Every common player (ffplay, aplay, paplay, afplay) accepts any of these rates.
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import wave
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Window",
    "clip_wav",
    "decode_window",
    "find_player",
    "play_wav",
]

# Decode this much more before the wanted start: after a seek, MP3 needs the previous frame's
# bit reservoir and Opus/Vorbis/AAC need pre-roll, so the first frames out of the decoder
# are not trustworthy. They are decoded and thrown away.
PREROLL_S = 0.5


@dataclass(frozen=True)
class Window:
    """Decoded audio: mono int16 ``samples`` at ``rate`` Hz, first sample at ``start_s``."""

    samples: np.ndarray
    rate: int
    start_s: float

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


def _frame_to_mono(frame) -> np.ndarray:
    """One decoded audio frame as mono float64 samples in [-1, 1] (int16 sources stay exact)."""
    data = frame.to_ndarray()
    channels = max(1, len(frame.layout.channels))
    if frame.format.is_planar:
        data = data.reshape(-1, frame.samples)[:, : frame.samples]
    else:
        data = data.reshape(-1)[: frame.samples * channels].reshape(frame.samples, channels).T
    kind = data.dtype
    if kind == np.uint8:
        out = (data.astype(np.float64) - 128.0) / 128.0
    elif kind == np.int16:
        out = data.astype(np.float64) / 32768.0
    elif kind == np.int32:
        out = data.astype(np.float64) / 2147483648.0
    elif kind == np.int64:
        out = data.astype(np.float64) / 9223372036854775808.0
    else:
        out = data.astype(np.float64)
    return out.mean(axis=0) if out.shape[0] > 1 else out[0]


def _to_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")


def _duration_hint(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _check_window(start_s: float, end_s: float, context_s: float, name: str) -> None:
    for label, value in (("start", start_s), ("end", end_s), ("context", context_s)):
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name}: {label} time {value!r} is not a number of seconds")
    if start_s < 0:
        raise ValueError(f"{name}: window starts before the recording ({start_s:.3f} s < 0)")
    if end_s <= start_s:
        raise ValueError(f"{name}: window end {end_s:.3f} s is not after its start {start_s:.3f} s")
    if context_s < 0:
        raise ValueError(f"{name}: context must not be negative ({context_s} s)")


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return f"{type(exc).__name__}: {text}"


def _open_audio(audio: bytes, name: str):
    """Open the bytes as a PyAV container, or say they are not decodable audio."""
    import av  # PyAV ships its own FFmpeg libraries

    try:
        return av.open(io.BytesIO(audio), mode="r")
    except Exception as exc:  # noqa: BLE001 -- garbage bytes raise several PyAV error types
        raise ValueError(f"{name}: not decodable audio ({_reason(exc)})") from None


def _audio_stream(container, name: str):
    """The first audio stream and its sample rate, or say why there is none usable."""
    if not container.streams.audio:
        raise ValueError(f"{name}: no audio track found")
    stream = container.streams.audio[0]
    rate = stream.codec_context.sample_rate or stream.rate
    if not rate:
        raise ValueError(f"{name}: audio track has no sample rate")
    return stream, rate


def _seek_before(container, stream, at_s: float, tb) -> int | None:
    """Seek to just before ``at_s``; returns the origin pts it measured from (None: no frame, no seek)."""
    origin = None
    for frame in container.decode(stream):
        if frame.samples and frame.pts is not None:
            origin = frame.pts
            break
    if origin is not None:
        container.seek(int(origin + at_s / tb), stream=stream, backward=True)
    return origin


def _frame_pos(frame, origin, tb, rate: int) -> int | None:
    """The sample index of the first decoded frame, from its pts (None when it has no pts to place it by)."""
    if frame.pts is None or tb is None:
        return None
    if origin is None:
        origin = frame.pts
    return max(0, round(float((frame.pts - origin) * tb) * rate))


def _wanted_part(frame, pos: int, lo: int, hi: int) -> np.ndarray | None:
    """The part of a frame starting at sample ``pos`` that falls in [lo, hi), as mono (None: none of it)."""
    n = frame.samples
    if pos + n > lo:
        mono = _frame_to_mono(frame)
        a = max(0, lo - pos)
        b = min(n, hi - pos)
        if b > a:
            return mono[a:b]
    return None


def _decode(audio: bytes, lo_s: float, hi_s: float, name: str, *, seek: bool):
    """Decode [lo_s, hi_s) (seconds from the first sample).

    Returns ``(samples, rate, start, first, end_pos, hint)``: ``start`` is the sample index of
    ``samples[0]``; ``first`` that of the first frame decoded (later than ``lo_s`` when a seek
    overshot: the caller then retries without seeking); ``end_pos`` the sample index where
    decoding stopped (None when nothing decoded); ``hint`` the container's duration, if known.
    """
    import av  # PyAV ships its own FFmpeg libraries

    container = _open_audio(audio, name)
    with container:
        stream, rate = _audio_stream(container, name)
        hint = _duration_hint(container, stream)
        tb = stream.time_base
        # Origin: the pts of the first decoded frame, i.e. where a full decode from the top
        # starts counting (MP3 reports its encoder delay, WebM/Opus its pre-skip, differently).
        origin = None
        if seek and lo_s - PREROLL_S > 0 and tb is not None:
            try:
                origin = _seek_before(container, stream, lo_s - PREROLL_S, tb)
            except Exception:  # noqa: BLE001 -- any failed seek: decode from the top
                return _decode(audio, lo_s, hi_s, name, seek=False)
        seeked = origin is not None
        lo = round(lo_s * rate)
        hi = round(hi_s * rate)
        pieces: list[np.ndarray] = []
        pos: int | None = None  # sample index of the next decoded sample
        first: int | None = None
        try:
            for frame in container.decode(stream):
                if frame.samples == 0:
                    continue
                if pos is None:
                    pos = _frame_pos(frame, origin, tb, rate)
                    if pos is None:
                        if seeked:  # cannot place a frame after a seek
                            return _decode(audio, lo_s, hi_s, name, seek=False)
                        pos = 0
                    first = pos
                part = _wanted_part(frame, pos, lo, hi)
                if part is not None:
                    pieces.append(part)
                pos += frame.samples
                if pos >= hi:
                    break
        except av.error.FFmpegError as exc:
            if not pieces and first is None:
                raise ValueError(f"{name}: not decodable audio ({_reason(exc)})") from None
            # a damaged tail: keep what decoded cleanly
        if first is None:
            first = lo
        start = max(first, lo)
        samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float64)
        return samples, rate, start, first, pos, hint


def decode_window(audio: bytes, start_s: float, end_s: float, *, context_s: float = 1.0, name: str = "audio") -> Window:
    """Decode ``[start_s - context_s, end_s + context_s]`` (clamped to the recording) to mono int16.

    Raises ``ValueError`` naming ``name`` when the bytes are not decodable audio, the window is
    empty or reversed, or it starts at/after the end of the recording. An end past the end of
    the recording is clamped (citations round the end up to a whole second).
    """
    _check_window(start_s, end_s, context_s, name)
    lo_s = max(0.0, start_s - context_s)
    hi_s = end_s + context_s
    samples, rate, start, first, end_pos, hint = _decode(audio, lo_s, hi_s, name, seek=True)
    seek_overshot = first > round(lo_s * rate) + 1
    # Nothing after the seek: past the end, unless the container's duration says otherwise
    # (then the seek misbehaved). Either way, decode from the top when in doubt.
    nothing = end_pos is None and start_s > 0 and (hint is None or start_s < hint)
    if seek_overshot or nothing:
        samples, rate, start, first, end_pos, hint = _decode(audio, lo_s, hi_s, name, seek=False)
    if end_pos is None and lo_s <= 0:
        raise ValueError(f"{name}: audio track is empty")
    if end_pos is None or round(start_s * rate) >= end_pos:
        if end_pos is not None and end_pos < round(hi_s * rate):
            duration: float | None = end_pos / rate  # decoding reached the end of the stream
        else:
            duration = hint
        length = f"{duration:.3f} s long" if duration is not None else "shorter"
        raise ValueError(f"{name}: window {start_s:.3f}-{end_s:.3f} s is outside the recording ({length})")
    return Window(samples=_to_int16(samples), rate=int(rate), start_s=start / rate)


def clip_wav(audio: bytes, start_s: float, end_s: float, *, context_s: float = 1.0, name: str = "audio") -> bytes:
    """A WAV file (mono, 16-bit PCM, source sample rate) of ``start_s..end_s`` plus context.

    ``audio`` is the whole recording in any container Grace ingests (wav, mp3, ogg/opus, flac,
    m4a/aac, webm, or a video whose first audio track is used). Only the window is decoded.
    """
    window = decode_window(audio, start_s, end_s, context_s=context_s, name=name)
    return wav_bytes(window.samples, window.rate)


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(rate))
        out.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return buffer.getvalue()


# Command lines that play a WAV file from standard input, in order of preference.
_PLAYERS: tuple[tuple[str, ...], ...] = (
    ("ffplay", "-nodisp", "-autoexit", "-loglevel", "quiet", "-"),
    ("aplay", "-q", "-"),
    ("paplay",),
    ("afplay",),  # macOS; cannot read stdin, play_wav hands it a temporary file
)


def find_player() -> list[str] | None:
    """The first available player command (program resolved to its full path), or None."""
    for command in _PLAYERS:
        path = shutil.which(command[0])
        if path:
            return [path, *command[1:]]
    return None


def play_wav(wav: bytes, player: list[str] | None = None) -> bool:
    """Play a WAV file with ``find_player()`` (blocking). False when no player is installed.

    Raises ``RuntimeError`` when the player exits with an error.
    """
    command = player if player is not None else find_player()
    if not command:
        return False
    program = command[0].rsplit("/", 1)[-1]
    if program == "afplay":
        import tempfile  # afplay only plays files

        with tempfile.NamedTemporaryFile(suffix=".wav") as handle:
            handle.write(wav)
            handle.flush()
            result = subprocess.run(
                [*command, handle.name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
            )
    else:
        result = subprocess.run(command, input=wav, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip()[-300:]
        raise RuntimeError(f"{program} exited with status {result.returncode}" + (f": {detail}" if detail else ""))
    return True
