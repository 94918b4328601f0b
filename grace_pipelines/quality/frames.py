"""The numbers the quality suites look at, as pandas DataFrames built from one source's stored data.

Read from the sealed transcript and chunks blobs (`SealedBlobStore.get_json`) and the source's
rows in the LanceDB chunk index (chunk ids and vectors only: the sealed text column is never
read). Every frame holds numbers only (seconds, counts, characters, probabilities, norms), so
nothing a suite sees or reports can carry a word of the content.

Frames, by name (a source has those that apply to its kind):
- `segments` (audio, video): one row per segment: start, end, words, timed_words, no_speech
- `speech` (audio, video): one row: chars, words, speech_s, duration_s, wpm, language_probability
- `sections` (document): one row per section: start, end (character offsets), page
- `text` (document): one row: chars, content_chars
- `chunks`: one row per chunk: index, chars, content_chars, start_s, end_s, line_start,
  line_end, page, located
- `vectors`: one row per LanceDB row of the source: chunk_index, width, norm, nonfinite
`params` holds the per-source numbers the expectations compare against (duration + slack,
chunk bounds, the embedder's dimension, the chunk count).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from grace_pipelines.quality.checks import CHUNK_MAX_FACTOR, END_SLACK_S, NO_SPEECH_PROB
from grace_pipelines.stores.blobs import CHUNKS, TRANSCRIPT

SEGMENT_COLUMNS = ("start", "end", "words", "timed_words", "no_speech")
SPEECH_COLUMNS = ("chars", "words", "speech_s", "duration_s", "wpm", "language_probability", "segments")
SECTION_COLUMNS = ("start", "end", "page")
TEXT_COLUMNS = ("chars", "content_chars")
CHUNK_COLUMNS = (
    "index",
    "chars",
    "content_chars",
    "start_s",
    "end_s",
    "line_start",
    "line_end",
    "page",
    "located",
)
VECTOR_COLUMNS = ("chunk_index", "width", "norm", "nonfinite")


@dataclass
class SourceFrames:
    """The frames of one source, the parameters its expectations use, and what could not be read."""

    key: str
    kind: str | None = None  # audio | video | document (None: the transcript could not be read)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # asset -> why its data could not be read


def _num(value: Any) -> float:
    """A number, or NaN for anything missing or not a number."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _frame(rows: list[dict[str, float]], columns: Iterable[str]) -> pd.DataFrame:
    columns = list(columns)
    return (
        pd.DataFrame(rows, columns=columns, dtype="float64")
        if rows
        else pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    )


# ---- transcript -------------------------------------------------------------------------------
def _word_count(segment: dict[str, Any]) -> int:
    words = segment.get("words") or []
    return len(words) if words else len((segment.get("text") or "").split())


def _timed(word: dict[str, Any]) -> bool:
    return not (math.isnan(_num(word.get("start"))) or math.isnan(_num(word.get("end"))))


def speech_frames(payload: dict[str, Any]) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """`segments` and `speech` of an audio or video transcript (`Transcription.to_dict()`)."""
    segments = payload.get("segments") or []
    rows = []
    for s in segments:
        prob = _num(s.get("no_speech_prob"))
        rows.append(
            {
                "start": _num(s.get("start")),
                "end": _num(s.get("end")),
                "words": float(_word_count(s)),
                "timed_words": float(sum(_timed(w) for w in s.get("words") or [])),
                "no_speech": math.nan if math.isnan(prob) else float(prob > NO_SPEECH_PROB),
            }
        )
    frame = _frame(rows, SEGMENT_COLUMNS)
    duration = _num(payload.get("duration_s"))
    spans = (frame["end"] - frame["start"]).clip(lower=0)
    speech_s = float(spans.sum()) if len(frame) else 0.0
    words = float(frame["words"].sum()) if len(frame) else 0.0
    summary = {
        "chars": float(sum(len((s.get("text") or "").strip()) for s in segments)),
        "words": words,
        "speech_s": speech_s,
        "duration_s": duration,
        # words per minute while speaking; no time spent speaking at all reads as 0 (implausible)
        "wpm": words / speech_s * 60.0 if speech_s > 0 else 0.0,
        "language_probability": _num(payload.get("language_probability")),
        "segments": float(len(segments)),
    }
    params = {"max_end": (duration if not math.isnan(duration) else 0.0) + END_SLACK_S}
    return {"segments": frame, "speech": _frame([summary], SPEECH_COLUMNS)}, params


def document_frames(payload: dict[str, Any]) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """`sections` and `text` of a document's extracted text."""
    text = payload.get("text") or ""
    rows = [
        {"start": _num(s.get("char_start")), "end": _num(s.get("char_end")), "page": _num(s.get("page"))}
        for s in payload.get("sections") or []
    ]
    summary = {"chars": float(len(text)), "content_chars": float(len(text.strip()))}
    return {"sections": _frame(rows, SECTION_COLUMNS), "text": _frame([summary], TEXT_COLUMNS)}, {
        "text_chars": float(len(text))
    }


def transcript_frames(payload: dict[str, Any]) -> tuple[str, dict[str, pd.DataFrame], dict[str, float]]:
    """The kind and frames of a transcript blob's payload (see ingest/stages.make_transcript)."""
    kind = str(payload.get("kind") or "audio")
    frames, params = document_frames(payload) if kind == "document" else speech_frames(payload)
    return kind, frames, params


# ---- chunks -----------------------------------------------------------------------------------
def _located(p: dict[str, Any]) -> bool:
    seconds = not (math.isnan(_num(p.get("start_s"))) or math.isnan(_num(p.get("end_s"))))
    lines = not (math.isnan(_num(p.get("line_start"))) or math.isnan(_num(p.get("line_end"))))
    return seconds or lines or not math.isnan(_num(p.get("page")))


def chunk_frame(pieces: list[dict[str, Any]], chunk_chars: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """One row per chunk of the chunks blob (`Chunk.to_dict()`); the text is only measured."""
    rows = [
        {
            "index": _num(p.get("index")),
            "chars": float(len(p.get("text") or "")),
            "content_chars": float(len((p.get("text") or "").strip())),
            "start_s": _num(p.get("start_s")),
            "end_s": _num(p.get("end_s")),
            "line_start": _num(p.get("line_start")),
            "line_end": _num(p.get("line_end")),
            "page": _num(p.get("page")),
            "located": float(_located(p)),
        }
        for p in pieces
    ]
    params = {
        "chunk_chars": float(chunk_chars),
        "max_chars": float(CHUNK_MAX_FACTOR * chunk_chars),
        "n_chunks": float(len(pieces)),
        "last_index": float(len(pieces) - 1),
    }
    return _frame(rows, CHUNK_COLUMNS), params


# ---- embeddings -------------------------------------------------------------------------------
def read_vectors(index: Any, key: str) -> tuple[np.ndarray, np.ndarray]:
    """The chunk ids and vectors (float32, rows x width) of one source in the current model's
    table of a `ChunkIndex` (or the `VectorStore` resource); the sealed text is not read."""
    n = index.count(key)  # validates the key (16 hex) before it goes into a filter
    table = index.table()
    width = table.schema.field("vector").type.list_size if table is not None else 0
    if table is None or n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, width), dtype=np.float32)
    data = table.search().where(f"source_key = '{key}'").select(["chunk_index", "vector"]).limit(n).to_arrow()
    ids = data["chunk_index"].to_numpy().astype(np.int64)
    flat = data["vector"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return ids, np.asarray(flat, dtype=np.float32).reshape(len(ids), width)


def vector_frame(ids: np.ndarray, vectors: np.ndarray) -> pd.DataFrame:
    """One row per vector: its chunk id, width, norm (NaN when it holds NaN) and non-finite count."""
    values = np.asarray(vectors, dtype=np.float64)
    if values.ndim != 2:
        values = values.reshape(len(ids), -1)
    return pd.DataFrame(
        {
            "chunk_index": np.asarray(ids, dtype=np.float64),
            "width": np.full(len(ids), float(values.shape[1]) if len(ids) else 0.0),
            "norm": np.linalg.norm(values, axis=1) if len(ids) else np.zeros(0),
            "nonfinite": (~np.isfinite(values)).sum(axis=1).astype(np.float64) if len(ids) else np.zeros(0),
        },
        columns=list(VECTOR_COLUMNS),
    )


# ---- one source -------------------------------------------------------------------------------
def load_frames(
    key: str,
    blob_store: Any,
    chunk_index: Any,
    *,
    dim: int,
    chunk_chars: int,
    assets: Iterable[str] = ("transcript", "chunks", "embeddings"),
    kind: str | None = None,
) -> SourceFrames:
    """The frames of `key` for the assets asked for. A blob that cannot be read (missing,
    tampered) is recorded in `errors` under its asset, naming the blob, and its frames are absent."""
    wanted = set(assets)
    out = SourceFrames(key, kind=kind)
    if "transcript" in wanted:
        try:
            out.kind, frames, params = transcript_frames(blob_store.get_json(key, TRANSCRIPT))
            out.frames.update(frames)
            out.params.update(params)
        except Exception as exc:  # noqa: BLE001 - a BlobError or a malformed payload: the checks fail, naming it
            out.errors["transcript"] = _reason(exc, f"{key}/{TRANSCRIPT}")
    if wanted & {"chunks", "embeddings"}:
        try:
            frame, params = chunk_frame(blob_store.get_json(key, CHUNKS), chunk_chars)
            out.frames["chunks"] = frame
            out.params.update(params)
        except Exception as exc:  # noqa: BLE001 - as above
            why = _reason(exc, f"{key}/{CHUNKS}")
            out.errors["chunks"] = why
            if "embeddings" in wanted:
                out.errors["embeddings"] = f"the chunk count is unknown: {why}"
    if "embeddings" in wanted and "embeddings" not in out.errors:
        try:
            ids, vectors = read_vectors(chunk_index, key)
            out.frames["vectors"] = vector_frame(ids, vectors)
            out.params["dim"] = float(dim)
        except Exception as exc:  # noqa: BLE001 - LanceDB errors have many types
            out.errors["embeddings"] = _reason(exc, f"LanceDB rows of {key}")
    return out


def _reason(exc: Exception, what: str) -> str:
    """Why `what` could not be read, naming it (a BlobError already names its blob)."""
    message = str(exc)
    return message if what in message else f"{what}: {type(exc).__name__}: {message}"
