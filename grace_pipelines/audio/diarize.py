"""Who spoke when, as plain functions: windows over the speech, spectral clustering of their
speaker embeddings with the speaker count read off the eigengap, turns, and each transcript
segment and word labelled with the turn it overlaps most.

Why spectral clustering: on the probe (two-speaker telephone speech, CAM++ embeddings of 1.5 s
windows every 0.75 s) average linkage with a distance threshold swung from one speaker to five
as the threshold moved by 0.05; spectral clustering on a pruned cosine affinity (3D-Speaker's
recipe) found the count from the eigengap and gave DER 9.9 %. Two guards follow the clustering:
clusters whose windows are as alike as one voice's windows are merged (centroids are not
compared: averaging removes the noise, and two espeak-ng women's centroids met at 0.81) (the same-speaker
threshold, calibrated in bench/speaker_diarization.py), and clusters holding too little speech
to be a voice (overlap, laughter, a cough) are folded into the nearest real one, so overlapped
speech is never labelled as a third speaker.

No Dagster and no model here: the embeddings come in as an array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

WINDOW_S = 1.5
HOP_S = 0.75
MIN_SPEECH_S = 2.0  # less speech than this: one unnamed speaker, a note, never a failure
MAX_SPEAKERS = 8
PRUNE_P = 0.022  # share of each affinity row kept (3D-Speaker's default), at least MIN_KEPT
MIN_KEPT = 6
# two clusters whose windows are on average at least this alike are one voice. Measured on CAM++
# windows (1.5 s): one voice's windows average 0.63-0.80 with each other, two voices' 0.39-0.64
# (espeak-ng voices and the real two-speaker sample; bench/speaker_diarization.py)
MERGE_COSINE = 0.68
MIN_SPEAKER_S = 2.5  # a cluster with less speech than this is folded into its nearest voice


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "speaker": self.speaker}


@dataclass
class Diarization:
    """Turns over the recording, one centroid embedding and the speech seconds per speaker."""

    turns: list[Turn]
    centroids: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    engine: str = "offline"
    notes: list[str] = field(default_factory=list)

    @property
    def speakers(self) -> list[str]:
        return sorted(self.seconds, key=lambda s: (-self.seconds[s], s))


def windows(regions: Sequence[tuple[float, float]], window_s: float = WINDOW_S, hop_s: float = HOP_S):
    """(start, end) windows covering each speech region; a region shorter than a window is one
    window of its own length (at least 0.5 s of it, else it is skipped)."""
    out: list[tuple[float, float]] = []
    for start, end in regions:
        length = end - start
        if length < 0.5:
            continue
        if length <= window_s:
            out.append((start, end))
            continue
        at = start
        while at + window_s < end:
            out.append((at, at + window_s))
            at += hop_s
        out.append((max(start, end - window_s), end))
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def spectral_labels(embeddings: np.ndarray, max_speakers: int = MAX_SPEAKERS) -> np.ndarray:
    """Cluster labels 0..k-1 for each embedding; k from the eigengap of the pruned affinity's
    Laplacian (1 when there are too few windows to tell)."""
    from scipy.cluster.vq import kmeans2
    from scipy.linalg import eigh

    n = len(embeddings)
    if n < 4:
        return np.zeros(n, dtype=int)
    x = _unit(np.asarray(embeddings, dtype=np.float64))
    affinity = x @ x.T
    keep = max(MIN_KEPT, int(round(PRUNE_P * n)))
    if keep < n:
        cut = np.sort(affinity, axis=1)[:, -keep][:, None]
        affinity = np.where(affinity >= cut, affinity, 0.0)
    affinity = 0.5 * (affinity + affinity.T)
    np.fill_diagonal(affinity, 0.0)
    laplacian = np.diag(affinity.sum(axis=1)) - affinity
    values, vectors = eigh(laplacian)
    top = min(max_speakers, n - 1)
    gaps = np.diff(values[: top + 1])
    k = int(np.argmax(gaps)) + 1 if len(gaps) else 1
    if k == 1:
        return np.zeros(n, dtype=int)
    spectral = vectors[:, :k]
    _, labels = kmeans2(spectral, k, minit="++", seed=np.random.default_rng(0))
    return labels


def _centroids(x: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    return {int(c): _unit(x[labels == c].mean(axis=0)) for c in np.unique(labels)}


def tidy(
    embeddings: np.ndarray,
    labels: np.ndarray,
    durations: np.ndarray,
    merge_cosine: float = MERGE_COSINE,
    min_speaker_s: float = MIN_SPEAKER_S,
) -> np.ndarray:
    """Merge clusters that are one voice, fold clusters too small to be a voice into the nearest."""
    x = _unit(np.asarray(embeddings, dtype=np.float64))
    similarity = x @ x.T
    labels = labels.copy()
    while True:  # the pair of clusters whose windows are most alike, merged while one voice's would be
        keys = sorted(int(c) for c in np.unique(labels))
        best, pair = -1.0, None
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                sim = float(similarity[np.ix_(labels == a, labels == b)].mean())
                if sim > best:
                    best, pair = sim, (a, b)
        if pair is None or best < merge_cosine:
            break
        labels[labels == pair[1]] = pair[0]
    while True:
        speech = {int(c): float(durations[labels == c].sum()) for c in np.unique(labels)}
        if len(speech) < 2:
            break
        smallest = min(speech, key=speech.get)
        if speech[smallest] >= min_speaker_s:
            break
        cents = _centroids(x, labels)
        others = [c for c in cents if c != smallest]
        nearest = max(others, key=lambda c: float(cents[c] @ cents[smallest]))
        labels[labels == smallest] = nearest
    return labels


def turns_from(spans: Sequence[tuple[float, float]], labels: Sequence[str]) -> list[Turn]:
    """Contiguous turns from labelled (overlapping) windows: where two windows overlap and
    disagree, the boundary is the middle of their overlap."""
    turns: list[Turn] = []
    for (start, end), label in zip(spans, labels):
        if turns and start <= turns[-1].end + 0.05:
            last = turns[-1]
            if last.speaker == label:
                turns[-1] = Turn(last.start, max(last.end, end), label)
                continue
            middle = (start + last.end) / 2 if start < last.end else start
            turns[-1] = Turn(last.start, middle, last.speaker)
            turns.append(Turn(middle, end, label))
        else:
            turns.append(Turn(start, end, label))
    return [t for t in turns if t.end - t.start > 0.01]


def speaker_at(turns: Sequence[Turn], start: float, end: float) -> str | None:
    """The speaker whose turns overlap [start, end] most (the nearest turn for a zero overlap)."""
    if not turns:
        return None
    overlap: dict[str, float] = {}
    for t in turns:
        o = min(end, t.end) - max(start, t.start)
        if o > 0:
            overlap[t.speaker] = overlap.get(t.speaker, 0.0) + o
    if overlap:
        return max(overlap, key=overlap.get)
    middle = (start + end) / 2
    return min(turns, key=lambda t: min(abs(t.start - middle), abs(t.end - middle))).speaker


def label_segments(segments: list[dict[str, Any]], turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """Each word gets the speaker it overlaps most; each segment the speaker of most of its word
    time (its own span when it has no words). Returns new dicts."""
    out = []
    for seg in segments:
        words = [{**w, "speaker": speaker_at(turns, w["start"], w["end"])} for w in seg.get("words") or []]
        share: dict[str, float] = {}
        for w in words:
            if w["speaker"]:
                share[w["speaker"]] = share.get(w["speaker"], 0.0) + max(w["end"] - w["start"], 0.01)
        speaker = max(share, key=share.get) if share else speaker_at(turns, seg["start"], seg["end"])
        out.append({**seg, "words": words, **({"speaker": speaker} if speaker else {})})
    return out


def one_speaker(duration_s: float, note: str) -> Diarization:
    """The fallback for a clip too short or too quiet for turns: one unnamed speaker."""
    return Diarization(
        turns=[Turn(0.0, duration_s, "S1")] if duration_s > 0 else [],
        seconds={"S1": duration_s},
        notes=[note],
    )


def diarize_embeddings(
    spans: Sequence[tuple[float, float]],
    embeddings: np.ndarray,
    duration_s: float,
    merge_cosine: float = MERGE_COSINE,
) -> Diarization:
    """Turns, centroids and seconds from the windows' embeddings (speakers named S1, S2, ... by
    first appearance)."""
    speech = sum(e - s for s, e in spans)
    if speech < MIN_SPEECH_S or len(spans) == 0:
        return one_speaker(duration_s, f"too little speech for speaker turns ({speech:.1f} s): one speaker")
    durations = np.array([e - s for s, e in spans])
    raw = spectral_labels(embeddings)
    labels = tidy(embeddings, raw, durations, merge_cosine=merge_cosine)
    names: dict[int, str] = {}
    for label in labels:  # S1 is whoever speaks first
        names.setdefault(int(label), f"S{len(names) + 1}")
    named = [names[int(c)] for c in labels]
    x = _unit(np.asarray(embeddings, dtype=np.float64))
    centroids = {names[c]: v.astype(np.float32) for c, v in _centroids(x, labels).items()}
    turns = turns_from(spans, named)
    seconds: dict[str, float] = {}
    for t in turns:
        seconds[t.speaker] = seconds.get(t.speaker, 0.0) + (t.end - t.start)
    return Diarization(turns=turns, centroids=centroids, seconds=seconds)


def without_speakers(segments: list[dict[str, Any]], labels: set[str]) -> tuple[list[dict[str, Any]], int]:
    """The transcript with every word of `labels` removed (a person's turns purged); a segment
    left without words goes, a mixed one keeps the others' words and text. Returns the new
    segments and how many words were removed. Idempotent."""
    out, removed = [], 0
    for seg in segments:
        words = seg.get("words") or []
        if not words:
            if seg.get("speaker") in labels:
                removed += len((seg.get("text") or "").split())
                continue
            out.append(seg)
            continue
        kept = [w for w in words if (w.get("speaker") or seg.get("speaker")) not in labels]
        removed += len(words) - len(kept)
        if not kept:
            continue
        if len(kept) == len(words):
            out.append(seg)
            continue
        text = " ".join((w.get("word") or "").strip() for w in kept).strip()
        speakers = [w.get("speaker") for w in kept if w.get("speaker")]
        out.append(
            {
                **seg,
                "start": kept[0]["start"],
                "end": kept[-1]["end"],
                "text": text,
                "words": kept,
                **({"speaker": max(set(speakers), key=speakers.count)} if speakers else {}),
            }
        )
    return out, removed
