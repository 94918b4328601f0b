"""The great-expectations suites on data shaped exactly as the ingest stages store it (the
fixture's spoken sentences with word timings, chunked by the real chunker, embedded by the real
MiniLM), then corrupted one way at a time: each corruption fails exactly the check meant to
catch it, with that check's severity; metadata holds numbers only."""

from __future__ import annotations

import ast
import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grace_pipelines.engines.minilm import MiniLMClient
from grace_pipelines.quality.checks import CHECKS, ERROR, PREFIX, WARN
from grace_pipelines.quality.frames import (
    SourceFrames,
    chunk_frame,
    load_frames,
    transcript_frames,
    vector_frame,
)
from grace_pipelines.quality.suites import evaluate
from grace_pipelines.stores.blobs import SealedBlobStore
from grace_pipelines.text.chunking import chunk_sections, chunk_transcript

from ..conftest import FIXTURES

KEY = "0123456789abcdef"
CHUNK_CHARS = 120  # small, so the 17 s recording makes several chunks


def _speech_payload() -> dict[str, Any]:
    """standup.mp3's sentences as faster-whisper segments (words timed evenly in each)."""
    entry = next(e for e in json.loads((FIXTURES / "manifest.json").read_text())["files"] if e["file"] == "standup.mp3")
    segments = []
    for s in entry["sentences"]:
        tokens = s["text"].split()
        step = (s["end_s"] - s["start_s"]) / len(tokens)
        words = [
            {"start": round(s["start_s"] + i * step, 3), "end": round(s["start_s"] + (i + 1) * step, 3), "word": w}
            for i, w in enumerate(tokens)
        ]
        segments.append(
            {
                "start": s["start_s"],
                "end": s["end_s"],
                "text": s["text"],
                "avg_logprob": -0.2,
                "no_speech_prob": 0.02,
                "words": words,
            }
        )
    return {
        "kind": "audio",
        "segments": segments,
        "language": "en",
        "language_probability": 1.0,
        "duration_s": entry["duration_s"],
        "engine": "faster-whisper",
        "model": "tiny.en",
        "notes": [],
    }


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    payload = _speech_payload()
    pieces = [c.to_dict() for c in chunk_transcript(payload["segments"], CHUNK_CHARS, 30)]
    vectors = MiniLMClient().embed([p["text"] for p in pieces])
    return {"payload": payload, "pieces": pieces, "ids": np.arange(len(pieces)), "vectors": np.asarray(vectors)}


def _frames(
    payload: dict[str, Any], pieces: list[dict[str, Any]], ids: np.ndarray, vectors: np.ndarray
) -> SourceFrames:
    kind, frames, params = transcript_frames(payload)
    chunks, chunk_params = chunk_frame(pieces, CHUNK_CHARS)
    return SourceFrames(
        KEY,
        kind,
        {**frames, "chunks": chunks, "vectors": vector_frame(ids, vectors)},
        {**params, **chunk_params, "dim": 384.0},
    )


def _failing(frames: SourceFrames) -> dict[str, str]:
    return {o.name: o.severity for o in evaluate(frames) if not o.passed}


def test_the_stored_shapes_pass_every_check(source) -> None:
    assert len(source["pieces"]) >= 3
    outcomes = evaluate(_frames(**source))
    assert [o.name for o in outcomes] == [c.name for c in CHECKS]
    assert [o.name for o in outcomes if not o.passed] == []
    assert all(o.metadata["applicable"] for o in outcomes), "every check applies to a recording"
    by_name = {o.name: o.metadata for o in outcomes}
    assert by_name["quality_transcript_ordered"]["rows_evaluated"] == 4
    assert 100 < by_name["quality_transcript_speech_rate"]["observed_min"] < 250  # words per minute
    assert by_name["quality_embeddings_one_per_chunk"]["chunks"] == len(source["pieces"])
    assert abs(by_name["quality_embeddings_unit_norm"]["observed_max"] - 1) < 1e-3
    for o in outcomes:  # counts and bounds only
        assert all(isinstance(v, (int, float, bool)) for v in o.metadata.values()), o.metadata


def _reverse_segments(s):
    s["payload"]["segments"].reverse()


def _past_the_end(s):
    s["payload"]["segments"][-1]["end"] = s["payload"]["duration_s"] + 3.0


def _no_word_timings(s):
    for seg in s["payload"]["segments"][:2]:
        seg["words"] = []


def _slow_speech(s):  # the same 47 words stretched over ten minutes
    s["payload"]["duration_s"] = 700.0
    for i, seg in enumerate(s["payload"]["segments"]):
        seg["start"], seg["end"] = i * 170.0, i * 170.0 + 160.0
        for w in seg["words"]:
            w["start"], w["end"] = seg["start"], seg["start"] + 1


def _unsure_language(s):
    s["payload"]["language_probability"] = 0.31


def _mostly_silence(s):
    for seg in s["payload"]["segments"][:3]:
        seg["no_speech_prob"] = 0.75


def _empty_chunk(s):
    s["pieces"][1]["text"] = "   "


def _unlocated_chunk(s):
    s["pieces"][0]["start_s"] = s["pieces"][0]["end_s"] = None


def _oversized_chunk(s):
    s["pieces"][0]["text"] = "word " * (CHUNK_CHARS // 2)  # 2.5 x chunk_chars


def _nan_vector(s):
    s["vectors"][1, 7] = np.nan


def _missing_vector(s):
    s["ids"], s["vectors"] = s["ids"][:-1], s["vectors"][:-1]


def _duplicate_vector(s):
    s["ids"] = np.array([0, *range(len(s["ids"]) - 1)])


def _wrong_dimension(s):
    cut = s["vectors"][:, :256]
    s["vectors"] = cut / np.linalg.norm(cut, axis=1, keepdims=True)


def _not_unit(s):
    s["vectors"][0] *= 2.0


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (_reverse_segments, {"quality_transcript_ordered": ERROR}),
        (_past_the_end, {"quality_transcript_within_duration": ERROR}),
        (_no_word_timings, {"quality_transcript_word_timings": WARN}),
        (_slow_speech, {"quality_transcript_speech_rate": WARN}),
        (_unsure_language, {"quality_transcript_language_probability": WARN}),
        (_mostly_silence, {"quality_transcript_no_speech_ratio": WARN}),
        (_empty_chunk, {"quality_chunks_not_empty": ERROR}),
        (_unlocated_chunk, {"quality_chunks_located": ERROR}),
        (_oversized_chunk, {"quality_chunks_size": WARN}),
        # a NaN makes the norm NaN too: both say so, no_nan names the cause
        (_nan_vector, {"quality_embeddings_no_nan": ERROR, "quality_embeddings_unit_norm": ERROR}),
        (_missing_vector, {"quality_embeddings_one_per_chunk": ERROR}),
        (_duplicate_vector, {"quality_embeddings_one_per_chunk": ERROR}),
        (_wrong_dimension, {"quality_embeddings_dimension": ERROR}),
        (_not_unit, {"quality_embeddings_unit_norm": ERROR}),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_each_corruption_fails_its_check_with_its_severity(source, corrupt, expected) -> None:
    broken = copy.deepcopy(source)
    corrupt(broken)
    assert _failing(_frames(**broken)) == expected


def test_failed_check_reports_counts_and_observed_bounds(source) -> None:
    broken = copy.deepcopy(source)
    _past_the_end(broken)
    (outcome,) = [o for o in evaluate(_frames(**broken)) if o.name == "quality_transcript_within_duration"]
    md = outcome.metadata
    assert md["unexpected_count"] == 1 and md["failed_expectations"] == 1 and md["rows_evaluated"] == 4
    assert md["observed_max"] == pytest.approx(broken["payload"]["duration_s"] + 3.0)
    assert md["max_end_s"] == pytest.approx(broken["payload"]["duration_s"] + 0.5)
    assert "1 of 2 expectations failed" in outcome.description


def _document() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    text = "Kettle guide\nFill to the line.\n\nWarranty\nThe warranty lasts 36 months.\n"
    sections = [
        {"char_start": 0, "char_end": 31, "page": 1, "heading": None},
        {"char_start": 32, "char_end": len(text), "page": 2, "heading": None},
    ]
    payload = {"kind": "document", "format": "pdf", "text": text, "sections": sections}
    return payload, [c.to_dict() for c in chunk_sections(text, sections, CHUNK_CHARS, 30)]


def test_documents_get_the_checks_that_apply() -> None:
    payload, pieces = _document()
    vectors = MiniLMClient().embed([p["text"] for p in pieces])
    frames = _frames(payload, pieces, np.arange(len(pieces)), np.asarray(vectors))
    outcomes = {o.name: o for o in evaluate(frames)}
    assert all(o.passed for o in outcomes.values())
    speech_only = {n for n, o in outcomes.items() if not o.metadata["applicable"]}
    assert speech_only == {c.name for c in CHECKS if "document" not in c.kinds}
    assert outcomes["quality_transcript_speech_rate"].description == "does not apply to a document source"
    assert outcomes["quality_chunks_located"].metadata["applicable"]

    swapped = copy.deepcopy(payload)
    swapped["sections"].reverse()  # page 2 before page 1
    blank = {**payload, "text": " \n "}
    assert _failing(_frames(swapped, pieces, np.arange(len(pieces)), np.asarray(vectors))) == {
        "quality_transcript_ordered": ERROR
    }
    assert "quality_transcript_not_empty" in _failing(
        _frames(blank, pieces, np.arange(len(pieces)), np.asarray(vectors))
    )


def test_an_engine_without_probabilities_is_not_measured_not_failed(source) -> None:
    payload = copy.deepcopy(source["payload"])
    payload["language_probability"] = None  # the OpenAI and WhisperX engines report none
    for seg in payload["segments"]:
        seg.pop("no_speech_prob")
    outcomes = {o.name: o for o in evaluate(_frames(payload, source["pieces"], source["ids"], source["vectors"]))}
    for name in ("quality_transcript_language_probability", "quality_transcript_no_speech_ratio"):
        assert outcomes[name].passed and not outcomes[name].metadata["applicable"]
        assert outcomes[name].description == "not measured by the engine"


def test_unreadable_blobs_fail_their_checks_naming_the_blob(tmp_path: Path) -> None:
    store = SealedBlobStore(root=str(tmp_path / "store"), keys_dir=str(tmp_path / "keys"))
    store.put_json(KEY, "transcript.json", _speech_payload())  # transcript present, chunks missing

    class NoIndex:
        def count(self, key: str) -> int:
            raise AssertionError("the index must not be read without a chunk count")

    frames = load_frames(KEY, store, NoIndex(), dim=384, chunk_chars=CHUNK_CHARS)
    outcomes = evaluate(frames)
    failed = {o.name for o in outcomes if not o.passed}
    assert failed == {c.name for c in CHECKS if c.asset in ("chunks", "embeddings")}
    for o in outcomes:
        if not o.passed:
            assert f"{KEY}/chunks.json" in o.description and o.metadata == {"readable": False}


def test_frames_hold_numbers_only(source) -> None:
    frames = _frames(**source)
    for name, frame in frames.frames.items():
        assert all(str(t) == "float64" for t in frame.dtypes), name
    assert all(isinstance(v, float) and math.isfinite(v) for v in frames.params.values())


def test_check_names_and_the_quality_package_keep_their_contracts() -> None:
    assert all(c.name.startswith(PREFIX) and c.severity in (ERROR, WARN) for c in CHECKS)
    assert len({c.name for c in CHECKS}) == len(CHECKS)
    package = Path(__file__).resolve().parents[2] / "grace_pipelines" / "quality"
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            name.split(".")[0]
            for node in ast.walk(tree)
            for name in (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
        }
        assert "dagster" not in imported, f"{path.name} imports dagster"
