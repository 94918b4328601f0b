"""Answers in sentences, with [n] citations, and never an invented one.

`compose(...)` takes the question and the passages search found (already filtered by
consent), keeps only those that are really about the question (cosine similarity of the
question to the passage, MiniLM scale), and then either asks an OpenAI-compatible chat model
to answer from those passages alone, or, with no model configured, returns an extractive
answer: the best-matching sentences, each with its citation, clearly labelled. With no
relevant passage it says it found nothing. Pure policy plus a chat call; no Dagster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from grace_pipelines.text.chunking import sentence_spans

EXTRACTIVE_LABEL = "Extractive answer (no language model configured; quoted from your sources):"
NOT_FOUND = "I found nothing in your recordings or documents that answers this."
SYSTEM_PROMPT = (
    "You answer questions about the user's own recordings and documents. Use only the numbered "
    "passages given. Answer in a few sentences and cite every claim with its passage number in "
    "square brackets, like [1] or [2]. If the passages do not contain the answer, say so plainly "
    "and do not guess."
)


@dataclass
class Citation:
    n: int
    citation: str
    source_key: str
    title: str
    kind: str
    start_s: float | None
    end_s: float | None
    text: str
    similarity: float


@dataclass
class Answer:
    question: str
    answer: str
    mode: str  # generated | extractive | not_found
    citations: list[Citation] = field(default_factory=list)
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def passage_scores(question_vec: np.ndarray, texts: Sequence[str], embed: Callable[[list[str]], np.ndarray]) -> list[float]:
    """How well each passage answers: the best of the whole passage and each of its sentences
    (a long passage about three things should not dilute the one sentence that answers)."""
    pieces: list[tuple[int, str]] = []
    for i, text in enumerate(texts):
        pieces.append((i, text))
        pieces.extend((i, text[a:b]) for a, b in sentence_spans(text))
    if not pieces:
        return []
    sims = embed([t for _, t in pieces]) @ question_vec
    best = [-1.0] * len(texts)
    for (i, _), sim in zip(pieces, sims):
        best[i] = max(best[i], float(sim))
    return best


def relevant(passages: Sequence[Any], scores: Sequence[float], min_similarity: float) -> list[tuple[Any, float]]:
    """Passages scoring at least `min_similarity`, best first."""
    keep = [(p, s) for p, s in zip(passages, scores) if s >= min_similarity]
    return sorted(keep, key=lambda item: item[1], reverse=True)


def extractive(question_vec: np.ndarray, citations: Sequence[Citation], embed: Callable[[list[str]], np.ndarray], max_sentences: int = 2) -> str:
    """The best sentences across the cited passages, each followed by its [n]."""
    candidates: list[tuple[str, int]] = []
    for c in citations:
        for start, end in sentence_spans(c.text):
            candidates.append((c.text[start:end], c.n))
    if not candidates:
        return NOT_FOUND
    scores = embed([s for s, _ in candidates]) @ question_vec
    ranked = sorted(range(len(candidates)), key=lambda i: float(scores[i]), reverse=True)
    top = float(scores[ranked[0]])
    # a second sentence only when it is nearly as relevant as the best one
    best = [i for i in ranked[:max_sentences] if float(scores[i]) >= 0.8 * top]
    best.sort(key=lambda i: (candidates[i][1], i))  # in source order
    return EXTRACTIVE_LABEL + " " + " ".join(f"{candidates[i][0]} [{candidates[i][1]}]" for i in best)


def generate(question: str, citations: Sequence[Citation], *, client: Any, model: str) -> str:
    """Ask an OpenAI-compatible chat model to answer from the numbered passages only."""
    context = "\n\n".join(f"[{c.n}] ({c.citation}) {c.text}" for c in citations)
    response = client.chat.completions.create(
        model=model,
        temperature=0,
        messages=[
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Passages:\n{context}\n\nQuestion: {question}"},
        ],
    )
    return (response.choices[0].message.content or "").strip()
