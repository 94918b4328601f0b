"""The eval harness: loading and checking an eval set, judging hits, recall@k and MRR (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from grace_pipelines.ingest.media import kind_of
from grace_pipelines.search.evaluation import (
    EvalQuestion,
    EvalSetError,
    first_hit_rank,
    is_hit,
    is_moment_hit,
    load_eval_set,
    recall_mrr,
)

EVAL = Path(__file__).resolve().parents[1] / "eval"


def test_the_committed_eval_set_meets_the_brief() -> None:
    eval_set = load_eval_set(EVAL)
    kinds = {s.file: kind_of(s.file) for s in eval_set.sources}
    spoken = [f for f, k in kinds.items() if k in ("audio", "video")]
    written = [f for f, k in kinds.items() if k == "document"]
    assert len(eval_set.sources) >= 10 and len(spoken) >= 5 and len(written) >= 5
    assert len(eval_set.questions) >= 40
    assert {q.source for q in eval_set.questions} == set(kinds), "every source is asked about"
    timings = json.loads((EVAL / "corpus" / "timings.json").read_text())
    for q in eval_set.questions:
        if q.source in spoken:
            assert q.window is not None, q.id
            sentences = timings[q.source]
            assert any(
                abs(s["start_s"] - q.window[0]) < 1e-3 and abs(s["end_s"] - q.window[1]) < 1e-3 for s in sentences
            ), q.id
        else:
            assert q.window is None, q.id
    # phrased differently: no paraphrase question repeats four consecutive words of its evidence
    for q in eval_set.questions:
        if q.style != "paraphrase":
            continue
        words = q.question.lower().rstrip("?").split()
        grams = {" ".join(words[i : i + 4]) for i in range(len(words) - 3)}
        assert not any(g in (q.evidence or "").lower() for g in grams), q.id


def _write(tmp_path: Path, document: dict, files: tuple[str, ...] = ("a.mp3", "b.pdf")) -> Path:
    (tmp_path / "corpus").mkdir(exist_ok=True)
    for name in files:
        (tmp_path / "corpus" / name).write_bytes(b"x")
    path = tmp_path / "questions.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


GOOD = {
    "sources": [{"file": "a.mp3", "origin": "voice_note"}, {"file": "b.pdf", "origin": "document"}],
    "questions": [
        {"id": "q1", "question": "when is it?", "source": "a.mp3", "window": [1.0, 2.0]},
        {"id": "q2", "question": "what page?", "source": "b.pdf", "page": 2},
    ],
}


def test_load_eval_set_accepts_a_folder_or_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    assert len(load_eval_set(path).questions) == 2
    assert load_eval_set(tmp_path).corpus_dir == tmp_path / "corpus"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["questions"][0].pop("window"), "exactly one of window, page, heading, lines"),
        (lambda d: d["questions"][0].update(page=3), "exactly one of"),
        (lambda d: d["questions"][0].update(window=[3.0, 2.0]), "is empty"),
        (lambda d: d["questions"][1].update(source="c.docx"), "not in `sources`: c.docx"),
        (lambda d: d["questions"][1].update(id="q1"), "not unique"),
        (lambda d: d["sources"].append({"file": "gone.wav"}), "missing under"),
        (lambda d: d["questions"][0].update(style="trick"), "questions.0.style"),
    ],
)
def test_load_eval_set_rejects_broken_sets_naming_the_file(tmp_path: Path, change, message: str) -> None:
    document = json.loads(json.dumps(GOOD))
    change(document)
    path = _write(tmp_path, document)
    with pytest.raises(EvalSetError, match=message) as info:
        load_eval_set(path)
    assert str(path) in str(info.value)


def test_load_eval_set_rejects_missing_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(EvalSetError, match="no such eval set"):
        load_eval_set(tmp_path / "nope.yaml")
    (tmp_path / "questions.yaml").write_text("sources: [unclosed", encoding="utf-8")
    with pytest.raises(EvalSetError, match="not valid YAML"):
        load_eval_set(tmp_path)


SPOKEN = EvalQuestion(id="s", question="when?", source="talk.mp3", window=(10.0, 14.0))


@pytest.mark.parametrize(
    ("result", "hit"),
    [
        ({"title": "talk.mp3", "passage_start_s": 0.0, "passage_end_s": 30.0}, True),
        ({"title": "talk.mp3", "passage_start_s": 12.0, "passage_end_s": 30.0}, True),  # covers exactly half
        ({"title": "talk.mp3", "passage_start_s": 12.5, "passage_end_s": 30.0}, False),  # covers less than half
        ({"title": "talk.mp3", "passage_start_s": 20.0, "passage_end_s": 30.0}, False),
        ({"title": "other.mp3", "passage_start_s": 0.0, "passage_end_s": 30.0}, False),
        ({"title": "talk.mp3", "start_s": 9.0, "end_s": 15.0}, True),  # no passage window: the cited one
        ({"title": "talk.mp3"}, False),
    ],
)
def test_is_hit_for_a_recording_needs_the_source_and_half_the_window(result: dict, hit: bool) -> None:
    assert is_hit(result, SPOKEN) is hit


def test_is_hit_for_pages_headings_and_lines() -> None:
    page = EvalQuestion(id="p", question="page?", source="g.pdf", page=2)
    assert is_hit({"title": "g.pdf", "page": 2}, page) and not is_hit({"title": "g.pdf", "page": 3}, page)
    heading = EvalQuestion(id="h", question="section?", source="h.docx", heading="Remote work")
    assert is_hit({"title": "h.docx", "heading": " remote WORK"}, heading)
    assert not is_hit({"title": "h.docx", "heading": "Holidays"}, heading) and not is_hit({"title": "h.docx"}, heading)
    lines = EvalQuestion(id="l", question="line?", source="m.txt", lines=(5, 5))
    assert is_hit({"title": "m.txt", "line_start": 1, "line_end": 5}, lines)
    assert not is_hit({"title": "m.txt", "line_start": 6, "line_end": 9}, lines)


def test_moment_hit_uses_the_cited_seconds_not_the_passage() -> None:
    result = {"title": "talk.mp3", "start_s": 20.0, "end_s": 24.0, "passage_start_s": 0.0, "passage_end_s": 30.0}
    assert is_hit(result, SPOKEN) and not is_moment_hit(result, SPOKEN)
    assert is_moment_hit({**result, "start_s": 10.2, "end_s": 13.9}, SPOKEN)


def test_first_hit_rank_and_metrics() -> None:
    results = [{"title": "x.mp3", "start_s": 0, "end_s": 1}, {"title": "talk.mp3", "start_s": 10, "end_s": 14}]
    assert first_hit_rank(results, SPOKEN) == 2 and first_hit_rank(results[:1], SPOKEN) is None
    assert recall_mrr([1, 2, None, 6]) == {
        "recall_at_1": 0.25,
        "recall_at_5": 0.5,
        "mrr": round((1 + 0.5 + 1 / 6) / 4, 4),
    }
    assert recall_mrr([]) == {"recall_at_1": 0.0, "recall_at_5": 0.0, "mrr": 0.0}
