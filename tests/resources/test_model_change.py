"""Changing the embedding model re-embeds only: `embeddings` alone changes code version,
`reembed_sensor` re-runs it alone (chunks reused, nothing re-transcribed), into a table for the
new vector size, and a search never mixes the two models' vectors. The new model is an
OpenAI-compatible embeddings endpoint served locally (the real openai client over HTTP)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from grace_pipelines.api import Grace
from grace_pipelines.text.keywords import stems

from ..conftest import FIXTURES, Driver
from .local_http import local_server, send_json

DIM = 64


def hashed_bag_of_words(text: str) -> list[float]:
    """A deterministic toy embedding: stems hashed into DIM buckets (shared words -> similar)."""
    v = np.zeros(DIM)
    for stem in stems(text):
        digest = hashlib.sha256(stem.encode()).digest()
        v[digest[0] % DIM] += 1.0 if digest[1] % 2 else -1.0
    return (v if v.any() else np.ones(DIM)).tolist()


@pytest.fixture
def embeddings_api() -> Iterator[tuple[str, list[dict]]]:
    calls: list[dict] = []

    def on_post(handler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        calls.append(body)
        data = [
            {"object": "embedding", "index": i, "embedding": hashed_bag_of_words(t)}
            for i, t in enumerate(body["input"])
        ]
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        send_json(handler, 200, {"object": "list", "data": data, "model": body["model"], "usage": usage})

    with local_server(on_post) as url:
        yield url, calls


def _materializations(instance: dg.DagsterInstance, asset: str) -> list[dg.EventLogRecord]:
    return list(instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records)


@pytest.mark.slow  # a second embedding engine over two ingests
def test_model_change_reembeds_only_into_its_own_table(
    home: Path, embeddings_api, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, calls = embeddings_api
    with dg.instance_for_test() as instance:
        old = Grace(home, instance=instance)
        outcomes = old.ingest([FIXTURES / "standup.mp3", FIXTURES / "groceries.ogg"], wait=True)
        keys = sorted(o.source_key for o in outcomes)
        assert [o.state for o in outcomes] == ["searchable", "searchable"]
        old_store = old.defs.resources["vector_store"]
        old_rows = old_store.count()
        assert old_store.table_name == "chunks" and old_rows > 0
        before = {a: len(_materializations(instance, a)) for a in ("source", "transcript", "chunks", "embeddings")}
        assert before == {"source": 2, "transcript": 2, "chunks": 2, "embeddings": 2}

        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-model-change")
        new = Grace(
            home,
            instance=instance,
            embedder="openai",
            embedding_model="hash-embed",
            embedding_dimensions=DIM,
            openai_base_url=url,
        )
        defs = new.defs
        # Dagster sees a new code version on `embeddings` only
        versions = {a: defs.resolve_assets_def(a).code_versions_by_key[dg.AssetKey(a)] for a in before}
        recorded = {
            a: _materializations(instance, a)[0].asset_materialization.tags["dagster/code_version"] for a in before
        }
        assert {a for a in before if versions[a] != recorded[a]} == {"embeddings"}
        assert sorted(new.db.stale_embeddings(defs.resources["embedder"].code_version())) == keys

        assert {new.status_of(k).state for k in keys} == {"processing"}, "status says they wait for re-embedding"
        driver = Driver(defs, instance)
        tick = driver.tick("reembed_sensor")
        assert sorted(r.partition_key for r in tick.run_requests) == keys
        assert all(r.asset_selection == [dg.AssetKey("embeddings")] for r in tick.run_requests)
        assert all(r.success for r in driver.execute(tick))

        after = {a: len(_materializations(instance, a)) for a in before}
        assert after == {**before, "embeddings": 4}, "nothing upstream of embeddings ran again"
        assert calls and all(c["model"] == "hash-embed" and c["dimensions"] == DIM for c in calls)

        store = defs.resources["vector_store"]
        assert store.table_name == f"chunks__hash_embed__{DIM}d"
        assert store.table().schema.field("vector").type.list_size == DIM
        assert store.count() == old_rows, "same chunks, new vectors"
        assert old_store.count() == old_rows, "the old model's table is left as it was"
        assert driver.tick("reembed_sensor").run_requests == [], "each source once per model"
        assert {new.status_of(k).state for k in keys} == {"searchable"}

        # each model searches its own table only: the answers come back from both, never mixed
        hit = new.search("quarterly report deadline Friday", k=1)[0]
        assert hit.title == "standup.mp3"
        assert {h.source_key for h in new.search("dentist appointment Tuesday", k=3, mode="vector")} <= set(keys)
        assert old.search("When is the quarterly report due?", k=1)[0].title == "standup.mp3"

        # a purge reaches every model's table
        per_table = store.count(keys[0])
        assert per_table > 0 and old_store.count(keys[0]) == per_table
        assert store.purge_source(keys[0])["rows"] == 2 * per_table
        assert store.count(keys[0]) == 0 and old_store.count(keys[0]) == 0


def test_unknown_vector_size_is_a_clear_settings_error(home: Path) -> None:
    from grace_pipelines.settings import SettingsError

    grace = Grace(home, embedder="openai", embedding_model="my-local-model")
    with pytest.raises(SettingsError, match="embedding_dimensions.*my-local-model"):
        _ = grace.defs


@pytest.mark.slow  # a second embedding engine over its own ingest
def test_grace_reembed_without_the_daemon(home: Path, embeddings_api, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from grace_pipelines.cli import app

    url, _ = embeddings_api
    with dg.instance_for_test() as instance:
        (key,) = [o.source_key for o in Grace(home, instance=instance).ingest([FIXTURES / "groceries.ogg"], wait=True)]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-model-change")
    for name, value in {
        "GRACE_EMBEDDER": "openai",
        "GRACE_EMBEDDING_MODEL": "hash-embed",
        "GRACE_EMBEDDING_DIMENSIONS": str(DIM),
        "GRACE_OPENAI_BASE_URL": url,
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    first = runner.invoke(app, ["reembed", "--json", "--home", str(home)])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {"reembedded": [key], "failed": []}
    assert json.loads(runner.invoke(app, ["reembed", "--json", "--home", str(home)]).stdout)["reembedded"] == []
    assert Grace(home).status_of(key).state == "searchable"
