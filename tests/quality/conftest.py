"""One real ingest for the quality tests that need stored data: standup.mp3 (audio, with its
consent sidecar) and kettle_guide.pdf (a paged document, consent granted), through the real
pipeline on a Dagster test instance, shared by the tests of this package."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pytest

from grace_pipelines.api import Grace

from ..conftest import FIXTURES, clean_env


@dataclass
class Ingested:
    grace: Grace
    instance: dg.DagsterInstance
    keys: dict[str, str]  # title -> source key

    @property
    def defs(self) -> dg.Definitions:
        return self.grace.defs


@pytest.fixture(scope="package")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingested]:
    with pytest.MonkeyPatch.context() as mp, dg.instance_for_test() as instance:
        clean_env(mp)
        grace = Grace(tmp_path_factory.mktemp("quality") / "grace", instance=instance)
        grace.ingest([FIXTURES / "standup.mp3", FIXTURES / "docs" / "kettle_guide.pdf"], wait=True)
        grace.grant("kettle_guide.pdf", "me", "all", wait=True)
        states = {s.title: s for s in grace.status()}
        assert {t: s.state for t, s in states.items()} == {
            "standup.mp3": "searchable",
            "kettle_guide.pdf": "searchable",
        }
        yield Ingested(grace, instance, {t: s.source_key for t, s in states.items()})
