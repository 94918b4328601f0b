"""The data-quality checks by name: the asset each guards, its severity, its thresholds, and why.

This module is what the Dagster side reads to declare the check specs, so it imports neither
Dagster nor pandas nor great-expectations: declaring the checks costs nothing at start-up. The
expectations themselves are in `suites.py`, the numbers they look at in `frames.py`.

Severity says what a failure means for the person searching:
- ERROR: the data is wrong in a way that breaks a promise (a citation points at the wrong
  moment, a chunk is unfindable, a vector ranks nonsense). Someone should look, and the source
  is worth re-running.
- WARN: the data is plausible but unusual (a very fast speaker, music, a language the model
  half-recognised). Search still works; the warning is a hint about the recording.
Every check name starts with `quality_`: playbooks and the `dev` layer count failures by that
prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PREFIX = "quality_"
ERROR = "ERROR"
WARN = "WARN"
ASSETS = ("transcript", "chunks", "embeddings")

# ---- thresholds -----------------------------------------------------------------------------
END_SLACK_S = 0.5  # a segment may end this far past the decoded duration (decoder rounding)
WORD_TIMINGS_MOSTLY = 0.9  # share of segments that must carry word timings
WPM_MIN, WPM_MAX = 40.0, 300.0  # plausible speech rate over the time spent speaking
LANGUAGE_PROBABILITY_MIN = 0.5  # below this the model was guessing the language
NO_SPEECH_PROB = 0.6  # a segment above this is probably not speech
NO_SPEECH_SHARE_MAX = 0.5  # at most this share of segments may be probably-not-speech
CHUNK_MAX_FACTOR = 2  # a chunk may be at most this many times chunk_chars
NORM_TOLERANCE = 1e-3  # |1 - ||v||| for a unit vector


@dataclass(frozen=True)
class QualityCheck:
    """One check: `name` (starts with `quality_`), the asset it guards, its severity, what it says."""

    name: str
    asset: str
    severity: str
    description: str
    kinds: tuple[str, ...] = ("audio", "video", "document")  # the source kinds it applies to


SPEECH = ("audio", "video")

CHECKS: tuple[QualityCheck, ...] = (
    # ---- transcript -------------------------------------------------------------------------
    # ERROR: an empty transcript makes a searchable source with nothing in it.
    QualityCheck("quality_transcript_not_empty", "transcript", ERROR, "The transcript or document text is not empty."),
    # ERROR: citations and playback seek by segment times (or offsets): out of order, they
    # point at the wrong moment or the wrong page.
    QualityCheck(
        "quality_transcript_ordered",
        "transcript",
        ERROR,
        "Segments (or a document's sections) are in order: start never goes back, end >= start, "
        "sections inside the text and pages non-decreasing.",
    ),
    # ERROR: a segment outside the recording cites a moment that does not exist.
    QualityCheck(
        "quality_transcript_within_duration",
        "transcript",
        ERROR,
        f"Every segment lies inside the recording: start >= 0 and end <= duration + {END_SLACK_S} s.",
        SPEECH,
    ),
    # WARN: without word timings chunks fall back to segment times: coarser citations, still correct.
    QualityCheck(
        "quality_transcript_word_timings",
        "transcript",
        WARN,
        f"At least {WORD_TIMINGS_MOSTLY:.0%} of segments carry word timings.",
        SPEECH,
    ),
    # WARN: an odd rate hints at music, a hallucinating model or sped-up audio, but real people
    # do talk that fast or slow; the transcript may still be right.
    QualityCheck(
        "quality_transcript_speech_rate",
        "transcript",
        WARN,
        f"Words per minute over the speech are plausible ({WPM_MIN:.0f} to {WPM_MAX:.0f}).",
        SPEECH,
    ),
    # WARN: a low language probability means the model was unsure, not that it was wrong.
    QualityCheck(
        "quality_transcript_language_probability",
        "transcript",
        WARN,
        f"The detected language's probability is at least {LANGUAGE_PROBABILITY_MIN}.",
        SPEECH,
    ),
    # WARN: many probably-silent segments suggest noise or music; the words found may be fine.
    QualityCheck(
        "quality_transcript_no_speech_ratio",
        "transcript",
        WARN,
        f"At most {NO_SPEECH_SHARE_MAX:.0%} of segments have no_speech_prob > {NO_SPEECH_PROB}.",
        SPEECH,
    ),
    # ---- chunks -----------------------------------------------------------------------------
    # ERROR: an empty chunk embeds to a meaningless vector that matches every query a little.
    QualityCheck(
        "quality_chunks_not_empty", "chunks", ERROR, "The source has chunks and none is empty or only whitespace."
    ),
    # ERROR: a chunk without seconds or lines cannot be cited: the answer has no source to point to.
    QualityCheck(
        "quality_chunks_located",
        "chunks",
        ERROR,
        "Every chunk has its seconds (start_s <= end_s) or its lines/page (line_start <= line_end).",
    ),
    # WARN: an oversized chunk is still searchable, but the embedder truncates it, so its tail
    # is findable only by keyword; a wrong size is a chunking drift, not lost data.
    QualityCheck(
        "quality_chunks_size",
        "chunks",
        WARN,
        f"Chunk sizes are in bounds: 1 to {CHUNK_MAX_FACTOR} x chunk_chars characters.",
    ),
    # ---- embeddings -------------------------------------------------------------------------
    # All ERROR: a bad vector is silently wrong in every ranking it takes part in.
    QualityCheck(
        "quality_embeddings_dimension",
        "embeddings",
        ERROR,
        "Every vector has the embedder's dimension.",
    ),
    QualityCheck(
        "quality_embeddings_unit_norm",
        "embeddings",
        ERROR,
        f"Every vector is unit length (|1 - norm| < {NORM_TOLERANCE:g}): cosine ranking assumes it.",
    ),
    QualityCheck("quality_embeddings_no_nan", "embeddings", ERROR, "No vector holds NaN or infinity."),
    QualityCheck(
        "quality_embeddings_one_per_chunk",
        "embeddings",
        ERROR,
        "Exactly one vector per chunk: as many rows as chunks, chunk ids 0..n-1, none twice.",
    ),
)
BY_NAME = {c.name: c for c in CHECKS}
assert all(c.name.startswith(PREFIX) for c in CHECKS)


def checks_for(asset: str) -> list[QualityCheck]:
    return [c for c in CHECKS if c.asset == asset]


@dataclass(frozen=True)
class Outcome:
    """The result of one check on one source: numbers only (counts, min/max), never content."""

    check: QualityCheck
    key: str  # the source key (a partition of `sources`)
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.check.name

    @property
    def severity(self) -> str:
        return self.check.severity
