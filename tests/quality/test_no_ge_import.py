"""great-expectations costs 5-8 s to import, so it must stay off drop-to-searchable: building
the definitions, the ingest job, an inbox sensor tick, the `grace` CLI start-up and an ingest run
itself never import it (checked in fresh interpreters, where nothing else imported it first)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, home: Path) -> dict:
    env = {"GRACE_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home.parent)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


BUILD = """
import json, sys, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")  # definitions.py's own filters go in front of this one
    from grace_pipelines.definitions import build_definitions
    from grace_pipelines.settings import load_settings
    import grace_pipelines.cli
    defs = build_definitions(load_settings())
    ingest = defs.resolve_job_def("ingest_job")
    import dagster as dg
    with dg.instance_for_test() as instance:  # an inbox tick, as the daemon runs it
        context = dg.build_sensor_context(instance=instance, resources=dict(defs.resources))
        defs.resolve_sensor_def("inbox_sensor")(context)
    defs.resolve_job_def("quality_job")
    checks = sorted(k.name for k in defs.resolve_asset_graph().asset_check_keys)
print(json.dumps({
    "ge": "great_expectations" in sys.modules,
    "pandas_from_quality": "grace_pipelines.quality.frames" in sys.modules,
    "ingest_checks": sorted(k.name for k in ingest.asset_layer.asset_graph.asset_check_keys),
    "quality_checks": [c for c in checks if c.startswith("quality_")],
    "preview": [str(w.message)[:80] for w in caught if "AssetCheckSpec" in str(w.message)],
}))
"""


def test_definitions_ingest_job_and_cli_never_import_great_expectations(tmp_path: Path) -> None:
    out = _run(BUILD, tmp_path / "grace")
    assert out["ge"] is False and out["pandas_from_quality"] is False
    assert out["ingest_checks"] == ["consent_index", "consent_transcribe"], "quality checks must not run in ingest"
    assert len(out["quality_checks"]) == 14
    assert out["preview"] == [], "the partitioned-check preview warning is filtered"


INGEST = """
import json, sys
from pathlib import Path
import dagster as dg
from grace_pipelines.api import Grace
with dg.instance_for_test() as instance:
    grace = Grace(Path(sys.argv[1]), instance=instance)
    (status,) = grace.ingest([Path(sys.argv[2])], wait=True)
    quality_runs = instance.get_runs(filters=dg.RunsFilter(job_name="quality_job"))
    evaluated = [
        e.dagster_event.event_specific_data.check_name
        for r in instance.get_runs()
        for e in instance.all_logs(r.run_id)
        if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
print(json.dumps({"state": status.state, "ge": "great_expectations" in sys.modules,
                  "quality_runs": len(quality_runs), "evaluated": sorted(set(evaluated))}))
"""


@pytest.mark.slow  # a whole ingest (whisper + MiniLM) in a fresh interpreter
def test_an_ingest_run_never_imports_great_expectations(tmp_path: Path) -> None:
    home = tmp_path / "grace"
    env = {"GRACE_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", INGEST, str(home), str(FIXTURES / "standup.mp3")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["state"] == "searchable"
    assert out["ge"] is False, "an ingest run imported great_expectations"
    assert out["quality_runs"] == 0
    assert out["evaluated"] == ["consent_index", "consent_transcribe"]
