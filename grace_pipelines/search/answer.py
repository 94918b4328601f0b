"""Answers in sentences, with [n] citations, and never an invented one.

`compose(...)` takes the question and the passages search found (already filtered by
consent), keeps only those that are really about the question (cosine similarity of the
question to the passage, MiniLM scale), and then either asks an OpenAI-compatible chat model
to answer from those passages alone, or, with no model configured, returns an extractive
answer: the best-matching sentences, each with its citation, clearly labelled. With no
relevant passage it says it found nothing. Pure policy plus a chat call; no Dagster.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from grace_pipelines.engines.credentials import api_key_for
from grace_pipelines.errors import GraceError
from grace_pipelines.settings import GraceSettings
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


def scored_pieces(
    question_vec: np.ndarray, results: Sequence[Any], embed: Callable[[list[str]], np.ndarray]
) -> list[tuple[float, list[tuple[str, float]]]]:
    """Per result: (the passage's own cosine, [(piece text, cosine)] for each of its sentences).
    Search already scored both from vectors stored at index time (search/sentences.py); a result
    without them (a row from before, or a caller's own) gets them embedded here, in one batch."""
    out: list[tuple[float, list[tuple[str, float]]] | None] = []
    todo: list[tuple[int, str]] = []  # (result, text): the passage itself, then its sentences
    for i, r in enumerate(results):
        pieces, chunk = getattr(r, "scored_pieces", None), getattr(r, "chunk_cosine", None)
        if pieces is not None and chunk is not None:
            who = getattr(r, "piece_speakers", None) or [None] * len(pieces)
            out.append((float(chunk), [(_attributed(r.text[a:b], w), sim) for (a, b, sim), w in zip(pieces, who)]))
            continue
        out.append(None)
        todo.append((i, r.text))
        todo.extend((i, r.text[a:b]) for a, b in sentence_spans(r.text))
    if todo:
        sims = embed([t for _, t in todo]) @ question_vec
        fresh: dict[int, list[tuple[str, float]]] = {}
        for (i, text), sim in zip(todo, sims):
            fresh.setdefault(i, []).append((text, float(sim)))
        for i, scored in fresh.items():
            out[i] = (scored[0][1], scored[1:])
    return [item for item in out if item is not None]


def _attributed(text: str, speaker: str | None) -> str:
    """A quote with who said it, when the recording's speakers are known: `Priya: "..."`."""
    return f'{speaker}: "{text.strip()}"' if speaker else text


def passage_scores(scored: Sequence[tuple[float, list[tuple[str, float]]]]) -> list[float]:
    """How well each passage answers: the best of the whole passage and each of its sentences
    (a long passage about three things should not dilute the one sentence that answers)."""
    return [max([chunk, *(sim for _, sim in pieces)]) for chunk, pieces in scored]


def relevant(passages: Sequence[Any], scores: Sequence[float], min_similarity: float) -> list[tuple[Any, float]]:
    """Passages scoring at least `min_similarity`, best first."""
    keep = [(p, s) for p, s in zip(passages, scores) if s >= min_similarity]
    return sorted(keep, key=lambda item: item[1], reverse=True)


def extractive(
    citations: Sequence[Citation], pieces: Sequence[Sequence[tuple[str, float]]], max_sentences: int = 2
) -> str:
    """The best sentences across the cited passages (`pieces[i]`: citation i's scored
    sentences), each followed by its [n]."""
    candidates = [(text, c.n, sim) for c, scored in zip(citations, pieces) for text, sim in scored if text.strip()]
    if not candidates:
        return NOT_FOUND
    ranked = sorted(range(len(candidates)), key=lambda i: candidates[i][2], reverse=True)
    top = candidates[ranked[0]][2]
    # a second sentence only when it is nearly as relevant as the best one
    best = [i for i in ranked[:max_sentences] if candidates[i][2] >= 0.8 * top]
    best.sort(key=lambda i: (candidates[i][1], i))  # in source order
    return EXTRACTIVE_LABEL + " " + " ".join(f"{candidates[i][0].strip()} [{candidates[i][1]}]" for i in best)


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


def answer_question(
    question: str,
    results: Sequence[Any],
    embedder: Any,
    settings: GraceSettings,
    question_vec: np.ndarray | None = None,
) -> Answer:
    """An answer to `question` from its search `results`: generated by the chat model when one is
    configured (citations numbered as passed), else extractive (labelled); 'nothing found' when
    no passage clears `answer_min_similarity`."""
    if question_vec is None:  # the search that found `results` embedded it already, usually
        question_vec = embedder.embed_query(question)
    scored = scored_pieces(question_vec, results, embedder.embed)
    pieces_of = {id(r): pieces for r, (_, pieces) in zip(results, scored)}
    kept = relevant(results, passage_scores(scored), settings.answer_min_similarity)
    if not kept:
        return Answer(question=question, answer=NOT_FOUND, mode="not_found")
    citations = [
        Citation(
            n=i,
            citation=r.citation,
            source_key=r.source_key,
            title=r.title,
            kind=r.kind,
            start_s=r.start_s,
            end_s=r.end_s,
            text=r.text,
            similarity=round(sim, 4),
        )
        for i, (r, sim) in enumerate(kept, start=1)
    ]
    if not settings.chat_model:
        return Answer(
            question=question,
            answer=extractive(citations, [pieces_of[id(r)] for r, _ in kept]),
            mode="extractive",
            citations=citations,
        )
    import openai  # only when a chat model is configured

    key = api_key_for(
        os.environ.get(settings.openai_api_key_env),
        credential=settings.openai_credential,
        state_url=settings.state_url,
        keys_dir=str(settings.keys_dir),
        purpose="answering",
        actor="ask:chat",
        error=GraceError,
    )
    client = openai.OpenAI(api_key=key, base_url=settings.openai_base_url, max_retries=3)
    try:
        text = generate(question, citations, client=client, model=settings.chat_model)
    except openai.OpenAIError as exc:
        raise RuntimeError(f"the chat endpoint failed ({type(exc).__name__})") from None
    return Answer(question=question, answer=text, mode="generated", citations=citations, model=settings.chat_model)
