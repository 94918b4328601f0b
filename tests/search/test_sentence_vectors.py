"""Sentence vectors at index time (search/sentences.py): every chunk row carries its pieces'
vectors, sealed; search and ask score sentences from them without embedding anything but the
query; a table from before the column gets it and its old rows still search (embedded per
query, as before). Real MiniLM, real LanceDB, a real Dagster instance."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest

from grace_pipelines.api import Grace
from grace_pipelines.search import sentences
from grace_pipelines.search.answer import EXTRACTIVE_LABEL
from grace_pipelines.stores.blobs import open_bytes, open_text
from grace_pipelines.stores.vectors import SENTENCES_COLUMN, chunks_schema, connect

from ..conftest import clean_env, drop_file

# one paragraph per line: a line break ends a sentence for sentence_spans
NOTES = (
    "# Garden notes\n\n"
    "The tomatoes need water every morning in July. The shed roof leaks above the left window. "
    "Marta promised to bring the ladder on Saturday. Compost goes behind the apple tree.\n\n"
    "# Budget\n\n"
    "The heating bill rose by forty percent this winter. We agreed to cap the holiday budget at "
    "nine hundred euros. Ravi will compare three insurance offers before the end of March.\n"
)


class EmbedCounter:
    """Counts the texts handed to the real embedder's `embed` (queries go to `embed_query`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, embedder) -> None:
        self.texts, self.queries = 0, 0
        real, real_query = type(embedder).embed, type(embedder).embed_query

        def counted(this, texts):
            self.texts += len(texts)
            return real(this, texts)

        def query(this, text):
            self.queries += 1
            return real_query(this, text) - 0.0  # the real vector, not counted as texts

        monkeypatch.setattr(type(embedder), "embed", counted)
        monkeypatch.setattr(type(embedder), "embed_query", query)


@pytest.fixture(scope="module")
def grace(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as monkeypatch, dg.instance_for_test() as instance:
        clean_env(monkeypatch)
        root = tmp_path_factory.mktemp("sentences")
        note = drop_file(root / "drop", name="notes.md", data=NOTES, grants={"me": ["transcribe", "index"]})
        g = Grace(root / "grace", instance=instance)
        [outcome] = g.ingest([note], wait=True)
        assert outcome.state == "searchable", outcome.why
        yield g


def rows(grace: Grace) -> list[dict]:
    return grace.clients.chunk_index.table().to_arrow().to_pylist()


def test_each_row_holds_its_pieces_vectors_sealed(grace: Grace) -> None:
    embedder = grace.clients.embedder
    for row in rows(grace):
        sealed = row[SENTENCES_COLUMN]
        assert sealed, "every row written now has sentence vectors"
        key = grace.clients.blob_store.text_key(row["source_key"])
        vectors = sentences.unpack(
            open_bytes(key, sealed, sentences.aad_for(row["source_key"], row["chunk_index"])), 384
        )
        chunk = open_text(key, row["text_enc"], f"{row['source_key']}:{row['chunk_index']}")
        pieces = sentences.pieces_of(chunk, row["moments"])
        assert len(vectors) == len(pieces) >= 2
        fresh = embedder.embed([chunk[a:b] for a, b, _, _ in pieces])
        assert np.allclose(vectors, fresh, atol=2e-3), "float16 keeps the cosines"
        with pytest.raises(Exception):  # moved to another row, they do not open
            open_bytes(key, sealed, sentences.aad_for(row["source_key"], row["chunk_index"] + 1))
        with pytest.raises(ValueError):  # nor as plain float16: the ciphertext is not a whole number of vectors
            sentences.unpack(sealed, 384)


def test_search_and_ask_embed_only_the_query(grace: Grace, monkeypatch: pytest.MonkeyPatch) -> None:
    counting = EmbedCounter(monkeypatch, grace.clients.embedder)
    results = grace.search("who brings the ladder", k=3)
    assert results[0].title == "notes.md" and "ladder" in results[0].text
    answer = grace.ask("How much may the holiday cost?")
    assert answer.mode == "extractive" and answer.answer.startswith(EXTRACTIVE_LABEL)
    assert "nine hundred euros" in answer.answer
    assert counting.texts == 2, "the two queries; sentences were scored from stored vectors"
    assert counting.queries == 2, "ask embeds its question once"


def test_a_table_from_before_the_column_is_migrated_and_still_searches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with dg.instance_for_test() as instance:
        note = drop_file(tmp_path / "drop", name="notes.md", data=NOTES, grants={"me": ["transcribe", "index"]})
        g = Grace(tmp_path / "grace", instance=instance)
        [outcome] = g.ingest([note], wait=True)
        assert outcome.state == "searchable", outcome.why
        index = g.clients.chunk_index
        table = index.table()
        # rewrite the table as an older Grace wrote it: the same rows without the column
        old_schema = pa.schema([f for f in chunks_schema(384) if f.name != SENTENCES_COLUMN])
        old_rows = [{k: v for k, v in r.items() if k != SENTENCES_COLUMN} for r in table.to_arrow().to_pylist()]
        db = connect(index.uri)
        db.drop_table(index.table_name)
        db.create_table(index.table_name, data=pa.Table.from_pylist(old_rows, schema=old_schema))
        assert SENTENCES_COLUMN not in index.table().schema.names

        counting = EmbedCounter(monkeypatch, g.clients.embedder)
        results = g.search("who brings the ladder", k=3)
        assert "ladder" in results[0].text
        assert counting.texts > 1, "old rows: their sentences embedded per query (beside the query)"
        assert results[0].start_s is None and results[0].line_start is not None

        # an older Grace recorded another row layout: re-embedding migrates the table (the
        # column added) and fills the rows, and then only the query is embedded
        g.db.update_source(outcome.source_key, embedding_model="minilm-before-sentence-vectors")
        assert g.reembed() == {outcome.source_key: True}
        assert SENTENCES_COLUMN in index.table().schema.names
        assert all(r[SENTENCES_COLUMN] for r in index.table().to_arrow().to_pylist())
        counting.texts = 0
        assert "ladder" in g.search("who brings the ladder", k=3)[0].text
        assert counting.texts == 1, "only the query"
