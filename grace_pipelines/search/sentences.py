"""Sentence vectors: each chunk's sentences embedded once, at index time, and kept sealed in
the chunk's row.

Why: the sentence re-rank (search/fusion.py) and the extractive answer score every candidate's
sentences against the query. Embedding them per query took 254 of the 282 ms of a warm API
search (bench/web_latency.py, 160 chunks, 2026-12-03); read from the row, it is a few dot
products. A chunk's pieces are its timed moments (a recording's segments, so a citation can
narrow to the second) or else its sentences; the same function decides them at index and at
query time, so the stored vectors line up with the pieces shown.

Stored as float16 (cosine error under 1e-3 on unit vectors; 768 bytes per 384-d sentence) and
sealed (AES-GCM) under the source's text key: a sentence's vector says more about that sentence
than a chunk's blended vector says about its chunk (short texts are the easier ones to invert),
so only chunk vectors rest in the clear, for the ANN index, and a purge that destroys the text
key destroys these too. Rows written before this column existed have none: search embeds their
sentences at query time, as before, until a re-embed fills them. No Dagster, no LanceDB.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from grace_pipelines.text.chunking import sentence_spans

Piece = tuple[int, int, float | None, float | None]  # [from, to) in the chunk text, seconds or None


def pieces_of(text: str, moments: Any) -> list[Piece]:
    """The pieces of one chunk that are scored on their own: its moments (JSON text or a list of
    [from, to, start_s, end_s]) when it has them, else its sentences."""
    if isinstance(moments, str):
        moments = json.loads(moments or "[]")
    if moments:
        return [(int(m[0]), int(m[1]), float(m[2]), float(m[3])) for m in moments]
    return [(a, b, None, None) for a, b in sentence_spans(text)]


def pack(vectors: np.ndarray) -> bytes:
    """Row-major float16, little-endian: n x dim."""
    return np.ascontiguousarray(vectors, dtype="<f2").tobytes()


def unpack(data: bytes, dim: int) -> np.ndarray:
    """The n x dim float32 matrix `pack` wrote; ValueError when the bytes do not fit `dim`."""
    flat = np.frombuffer(data, dtype="<f2")
    if dim <= 0 or flat.size % dim:
        raise ValueError(f"{len(data)} bytes are not a whole number of {dim}-d float16 vectors")
    return flat.reshape(-1, dim).astype(np.float32)


def aad_for(source_key: str, chunk_index: int) -> str:
    """What the sealed vectors are bound to, so a row's vectors cannot be moved to another row."""
    return f"{source_key}:{chunk_index}:sentences"


def speakers_of(moments: Any) -> list[str | None]:
    """The speaker label of each moment (None where the transcript had no speaker turns)."""
    if isinstance(moments, str):
        moments = json.loads(moments or "[]")
    return [str(m[4]) if len(m) > 4 and m[4] else None for m in moments or []]
