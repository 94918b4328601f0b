"""Diarization error rate with a forgiveness collar and the optimal speaker mapping, the way
NIST md-eval and pyannote.metrics score it: on a 10 ms grid, reference frames within `collar`
seconds of a reference boundary are not scored; each scored frame counts its reference
speakers; missed speech, false alarm and confusion are summed over frames (overlap counted
per speaker) and divided by the reference speech. The hypothesis speakers are mapped to the
reference ones by the assignment that maximises matched time (Hungarian, scipy).

Here rather than pyannote.metrics: that package pulls pyannote.core, pyannote.database,
scikit-learn and sympy for one formula."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STEP = 0.01


@dataclass(frozen=True)
class DERReport:
    der: float
    missed: float
    false_alarm: float
    confusion: float
    reference_s: float
    reference_speakers: int
    hypothesis_speakers: int

    def to_dict(self) -> dict[str, float | int]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def read_rttm(text: str) -> list[tuple[float, float, str]]:
    """(start, end, speaker) from RTTM SPEAKER lines."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0] == "SPEAKER":
            start, dur = float(parts[3]), float(parts[4])
            out.append((start, start + dur, parts[7]))
    return out


def _grid(turns: Sequence[tuple[float, float, str]], speakers: list[str], frames: int) -> np.ndarray:
    grid = np.zeros((len(speakers), frames), dtype=bool)
    index = {s: i for i, s in enumerate(speakers)}
    for start, end, who in turns:
        grid[index[who], int(round(start / STEP)) : int(round(end / STEP))] = True
    return grid


def der(
    reference: Sequence[tuple[float, float, str]],
    hypothesis: Sequence[tuple[float, float, str]],
    collar: float = 0.25,
) -> DERReport:
    from scipy.optimize import linear_sum_assignment

    end = max([e for _, e, _ in reference] + [e for _, e, _ in hypothesis] + [0.0])
    frames = int(round(end / STEP)) + 1
    ref_speakers = sorted({s for _, _, s in reference})
    hyp_speakers = sorted({s for _, _, s in hypothesis})
    ref = _grid(reference, ref_speakers, frames)
    hyp = _grid(hypothesis, hyp_speakers, frames)
    scored = np.ones(frames, dtype=bool)
    half = int(round(collar / STEP))
    for start, stop, _ in reference:
        for edge in (start, stop):
            at = int(round(edge / STEP))
            scored[max(0, at - half) : at + half] = False
    ref, hyp = ref[:, scored], hyp[:, scored]
    matched = ref.astype(np.int32) @ hyp.T.astype(np.int32) if len(ref) and len(hyp) else np.zeros((0, 0))
    rows, cols = linear_sum_assignment(-matched) if matched.size else ([], [])
    correct = float(matched[rows, cols].sum()) if matched.size else 0.0
    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    total = float(n_ref.sum())
    missed = float(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = float(np.maximum(n_hyp - n_ref, 0).sum())
    confusion = float(np.minimum(n_ref, n_hyp).sum()) - correct
    return DERReport(
        der=(missed + false_alarm + confusion) / total if total else 0.0,
        missed=missed / total if total else 0.0,
        false_alarm=false_alarm / total if total else 0.0,
        confusion=confusion / total if total else 0.0,
        reference_s=total * STEP,
        reference_speakers=len(ref_speakers),
        hypothesis_speakers=len(hyp_speakers),
    )
