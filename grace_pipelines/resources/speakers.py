"""The speaker port: who spoke when in a recording, behind one abstract resource.

- `OfflineSpeakers` (default, `speakers = "offline"`): CAM++ speaker embeddings on onnxruntime
  with spectral clustering (engines/speakers.py, audio/diarize.py); no torch, no network. When
  the transcription engine already labelled speakers (WhisperX's diarization on a GPU machine,
  an OpenAI-compatible server that returns speakers), its turns are kept and only the voice
  embeddings of those turns are computed here, for the voice profiles.
- `NoSpeakers` (`speakers = "off"`): transcripts without speaker turns.

A clip too short or too noisy for turns, or any failure of the speaker engine, gives one
unnamed speaker and a note: speaker turns never fail a source.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from typing import Any

import dagster as dg
import numpy as np

from grace_pipelines.audio import diarize as policy
from grace_pipelines.engines.transcription import Transcription


class Speakers(dg.ConfigurableResource, ABC):
    """Speaker turns (and one voice embedding per speaker) for a transcribed recording."""

    @abstractmethod
    def diarize(self, audio: bytes, name: str, transcription: Transcription) -> policy.Diarization | None:
        """The turns, or None when this engine does not label speakers."""

    @abstractmethod
    def engine_id(self) -> str: ...


def _engine_turns(segments: list[dict[str, Any]]) -> list[policy.Turn]:
    labels: dict[str, str] = {}
    turns = []
    for seg in segments:
        if seg.get("speaker"):
            label = labels.setdefault(str(seg["speaker"]), f"S{len(labels) + 1}")
            turns.append(policy.Turn(float(seg["start"]), float(seg["end"]), label))
    return turns


class OfflineSpeakers(Speakers):
    """CAM++ embeddings + spectral clustering on this machine (the default)."""

    threads: int = 2
    merge_cosine: float = policy.MERGE_COSINE

    def engine_id(self) -> str:
        from grace_pipelines.engines.speakers import MODEL_ID

        return MODEL_ID

    def diarize(self, audio: bytes, name: str, transcription: Transcription) -> policy.Diarization | None:
        from faster_whisper import decode_audio

        from grace_pipelines.engines import speakers as engine

        duration = transcription.duration_s
        try:
            samples = transcription.samples  # decoded once, by the local transcriber
            if samples is None:
                samples = decode_audio(io.BytesIO(audio), sampling_rate=16000)
            given = _engine_turns(transcription.segments)
            if given:  # the transcription engine's own turns; voices embedded for the profiles
                return _with_voices(engine, samples, given, transcription.engine)
            return engine.diarize_samples(samples, threads=self.threads, merge_cosine=self.merge_cosine)
        except Exception as exc:  # noqa: BLE001 - speaker turns are a bonus, never a failed source
            return policy.one_speaker(duration, f"speaker turns unavailable ({type(exc).__name__}): one speaker")


def _with_voices(engine: Any, samples: np.ndarray, turns: list[policy.Turn], source: str) -> policy.Diarization:
    spans, owners = [], []
    for t in turns:
        for s, e in policy.windows([(t.start, t.end)]):
            spans.append((s, e))
            owners.append(t.speaker)
    vectors = engine.CamPlusPlus().embed(samples, spans)
    centroids = {}
    for label in dict.fromkeys(owners):
        mine = vectors[[i for i, o in enumerate(owners) if o == label]]
        if len(mine):
            mean = mine.mean(axis=0)
            centroids[label] = (mean / max(np.linalg.norm(mean), 1e-9)).astype(np.float32)
    seconds: dict[str, float] = {}
    for t in turns:
        seconds[t.speaker] = seconds.get(t.speaker, 0.0) + t.end - t.start
    return policy.Diarization(turns=turns, centroids=centroids, seconds=seconds, engine=f"{source}+voices")


class NoSpeakers(Speakers):
    """No speaker turns (`speakers = "off"`)."""

    def engine_id(self) -> str:
        return "off"

    def diarize(self, audio: bytes, name: str, transcription: Transcription) -> policy.Diarization | None:
        return None


SPEAKERS: dict[str, type[Speakers]] = {"offline": OfflineSpeakers, "off": NoSpeakers}


def speakers_for(settings: Any) -> Speakers:
    engine = SPEAKERS.get(getattr(settings, "speakers", "offline"), OfflineSpeakers)
    return engine()
