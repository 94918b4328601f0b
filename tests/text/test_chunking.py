from hypothesis import given, settings
from hypothesis import strategies as st

from grace_pipelines.text.chunking import (
    chunk_document,
    chunk_transcript,
    pack_spans,
    sentence_spans,
)


def _segments(sentences: list[str], seconds_each: float = 3.0) -> list[dict]:
    segments, t = [], 0.0
    for text in sentences:
        words, wt = [], t
        for w in text.split():
            words.append({"word": w, "start": round(wt, 3), "end": round(wt + 0.3, 3)})
            wt += (seconds_each - 0.3) / len(text.split())
        segments.append({"start": t, "end": t + seconds_each, "text": text, "words": words})
        t += seconds_each
    return segments


def test_sentences_are_split_with_offsets() -> None:
    text = "First one. Second one!  Third?\nFourth line"
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == ["First one.", "Second one!", "Third?", "Fourth line"]


def test_transcript_chunks_carry_the_seconds_they_cover() -> None:
    sentences = [f"Sentence number {i} talks about topic {i} in some detail here." for i in range(30)]
    chunks = chunk_transcript(_segments(sentences), size=200, overlap=60)
    assert len(chunks) > 5
    for chunk in chunks:
        assert len(chunk.text) <= 200
        first = int(chunk.text.split()[2])  # "Sentence number N ..."
        last_sentence = chunk.text.rstrip(".").split("Sentence number ")[-1]
        last = int(last_sentence.split()[0])
        # sentence i is spoken in [3i, 3i+3)
        assert chunk.start_s is not None and chunk.end_s is not None
        assert 3 * first <= chunk.start_s < 3 * first + 3
        assert 3 * last < chunk.end_s <= 3 * last + 3


def test_overlap_repeats_whole_trailing_sentences() -> None:
    sentences = [f"Point {i} is short." for i in range(40)]
    chunks = chunk_transcript(_segments(sentences), size=120, overlap=40)
    for prev, nxt in zip(chunks, chunks[1:]):
        assert nxt.char_start < prev.char_end, "consecutive chunks overlap"
        assert nxt.char_start > prev.char_start, "chunking always advances"
        overlap = prev.char_end - nxt.char_start
        assert overlap <= 40
        assert nxt.text.startswith("Point"), "overlap starts at a sentence boundary"


def test_sentence_longer_than_chunk_is_cut_at_words() -> None:
    long = " ".join(["word"] * 300) + "."
    chunks = chunk_document(long, size=100, overlap=20)
    assert all(len(c.text) <= 100 for c in chunks)
    assert all(not c.text.startswith(" ") for c in chunks)
    assert sum(c.text.count("word") for c in chunks) >= 300


def test_segment_times_used_without_words() -> None:
    segments = [{"start": 10.0, "end": 14.5, "text": "No word timings here."}]
    (chunk,) = chunk_transcript(segments)
    assert (chunk.start_s, chunk.end_s) == (10.0, 14.5)


def test_document_chunks_know_their_lines() -> None:
    text = "# Title\n\nIntro line.\n\n## Risks\nThe vendor may be late.\nBudget is tight.\n"
    (chunk,) = chunk_document(text, size=500, overlap=100)
    assert (chunk.line_start, chunk.line_end) == (1, 7)
    small = chunk_document(text, size=30, overlap=0)
    risks = next(c for c in small if "vendor" in c.text)
    assert risks.line_start == 6


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("abcde .!?\n")), min_size=1, max_size=2000),
    st.integers(min_value=20, max_value=400),
    st.integers(min_value=0, max_value=19),
)
def test_every_word_lands_in_some_chunk(text: str, size: int, overlap: int) -> None:
    spans = pack_spans(text, size, overlap)
    covered = [False] * len(text)
    for a, b in spans:
        assert 0 <= a < b <= len(text)
        assert b - a <= size
        for i in range(a, b):
            covered[i] = True
    for i, ch in enumerate(text):
        if ch not in " .!?\n":
            assert covered[i], f"character {i} lost"
    starts = [a for a, _ in spans]
    assert starts == sorted(set(starts)), "chunks advance monotonically"


def test_section_chunks_never_cross_a_heading() -> None:
    from grace_pipelines.text.chunking import chunk_sections

    text = "# A\nalpha one. alpha two.\n# B\nbeta one. beta two. beta three.\n"
    b = text.index("# B")
    sections = [
        {"char_start": 0, "char_end": b, "page": None, "heading": "A"},
        {"char_start": b, "char_end": len(text), "page": None, "heading": "B"},
    ]
    chunks = chunk_sections(text, sections, size=500, overlap=0)
    assert [(c.heading, c.line_start, c.line_end) for c in chunks] == [("A", 1, 2), ("B", 3, 4)]
    assert [c.index for c in chunks] == [0, 1]
    assert all(text[c.char_start : c.char_end] == c.text for c in chunks)
