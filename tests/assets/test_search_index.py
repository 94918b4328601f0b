"""The `search_index` asset materializes through Dagster and reports what it did."""

from pathlib import Path

import dagster as dg
import pytest

from grace_pipelines.api import Grace
from grace_pipelines.assets.search_index import search_index
from grace_pipelines.resources import VectorStore

from ..conftest import FIXTURES

pytestmark = pytest.mark.slow  # two ingests, then builds the ANN index


def test_search_index_asset_after_ingest(home: Path) -> None:
    with dg.instance_for_test() as instance:
        grace = Grace(home, instance=instance, ann_min_rows=1)
        grace.ingest([FIXTURES / "standup.mp3", FIXTURES / "groceries.ogg"], wait=True)
        store = grace.defs.resources["vector_store"]
        result = dg.materialize([search_index], resources={"vector_store": store}, instance=instance)
        assert result.success
        md = result.asset_materializations_for_node("search_index")[0].metadata
        assert md["rows"].value == store.count() >= 2
        assert md["vector_index"].value == "IVF_HNSW_SQ"
        assert grace.search("When is the quarterly report due?", k=1)[0].title == "standup.mp3"
    empty = dg.materialize([search_index], resources={"vector_store": VectorStore(uri=str(home / "none"))})
    assert empty.asset_materializations_for_node("search_index")[0].metadata["rows"].value == 0
