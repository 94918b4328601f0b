"""Playbook files: the shipped ones load, a broken one is reported with its file, line and field
(and never stops the others), user files override shipped ones, and a broken file is a failed
`valid_*` check of the `playbooks` asset once the definitions load and materialize."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from grace_pipelines.playbooks.loading import load_playbooks, seed_dir, validate_path
from grace_pipelines.settings import load_settings

SHIPPED = {
    "crypto_key_persistence",
    "htm_timing_and_sizing",
    "recording_to_learning",
    "retention",
    "search_index",
    "secrets_capture_and_consent",
}
GOOD = """\
name: nightly_consent
description: A small playbook of the user's own, checking pending consent.
trigger:
  cron: "0 6 * * *"
  timezone: Europe/Berlin
checks:
  - name: pending
    metric: consent.held_too_long
    max: 0
actions:
  - do: remind
    when: pending
"""


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_playbooks_load_without_errors(home: Path) -> None:
    playbooks, errors = load_playbooks(load_settings(home=home))
    assert errors == []
    assert {p.name for p in playbooks} == SHIPPED
    crypto = next(p for p in playbooks if p.name == "crypto_key_persistence")
    assert crypto.trigger.cron == "0 3 * * 0" and crypto.source == "playbooks/crypto_key_persistence.yaml"
    assert seed_dir() == Path(__file__).resolve().parents[2] / "playbooks"


@pytest.mark.parametrize(
    ("edit", "line", "field", "message"),
    [
        (("    max: 0\n", "    max: lots\n"), 9, "checks.0.max", "Input should be a valid number"),
        (("  - do: remind\n", "  - do: page_the_cto\n"), 11, "actions.0.do", "unknown action 'page_the_cto'"),
        (("    metric: consent.held_too_long\n", "    metric: consent.nope\n"), 8, "checks.0.metric", "unknown metric"),
        (('  cron: "0 6 * * *"\n', '  cron: "0 25 * * *"\n'), 4, "trigger.cron", "hour field '25'"),
        (("  timezone: Europe/Berlin\n", "  timezone: Mars/Olympus\n"), 5, "trigger.timezone", "unknown time zone"),
        (("    when: pending\n", "    when: pendnig\n"), 12, "actions.0.when", "neither 'breach', 'always'"),
        (("checks:\n", "checks:\n  - [unclosed\n"), 8, "(yaml)", "not valid YAML"),
        (("name: nightly_consent\n", "name: nightly_consent\nschedule: daily\n"), 2, "schedule", "Extra inputs"),
    ],
)
def test_a_bad_file_names_file_line_and_field_and_the_others_still_load(
    home: Path, edit: tuple[str, str], line: int, field: str, message: str
) -> None:
    folder = home / "playbooks"
    _write(folder, "broken.yaml", GOOD.replace(*edit))
    _write(folder, "fine.yaml", GOOD.replace("nightly_consent", "fine_one"))
    playbooks, errors = load_playbooks(load_settings(home=home))
    assert {p.name for p in playbooks} == SHIPPED | {"fine_one"}, "the other files still load"
    (error,) = errors
    assert (error.line, error.field) == (line, field), str(error)
    assert message in error.message
    assert str(error) == f"{folder / 'broken.yaml'} line {line}: {field}: {error.message}"


def test_duplicate_names_are_reported_and_a_user_file_overrides_a_shipped_one(home: Path) -> None:
    folder = home / "playbooks"
    _write(folder, "a.yaml", GOOD)
    _write(folder, "b.yaml", GOOD)
    _write(folder, "mine.yaml", GOOD.replace("nightly_consent", "retention").replace("0 6 * * *", "15 5 * * *"))
    playbooks, errors = load_playbooks(load_settings(home=home))
    (error,) = errors
    assert error.file.endswith("b.yaml") and error.field == "name" and error.line == 1
    assert "already used by" in error.message and "a.yaml" in error.message
    retention = next(p for p in playbooks if p.name == "retention")
    assert retention.trigger.cron == "15 5 * * *" and retention.source.endswith("mine.yaml")


def test_validate_one_file_and_the_cli_exit_code(home: Path, tmp_path: Path) -> None:
    from grace_pipelines.cli import app

    bad = _write(tmp_path / "elsewhere", "x.yaml", GOOD.replace("    max: 0\n", "    max: [1, 2]\n"))
    (playbook_list, errors) = validate_path(bad)
    assert playbook_list == [] and errors[0].field == "checks.0.max"
    runner = CliRunner()
    done = runner.invoke(app, ["playbooks", "validate", str(bad), "--home", str(home)])
    assert done.exit_code == 1
    assert f"{bad} line 9: checks.0.max" in " ".join(done.output.split())
    good = _write(tmp_path / "elsewhere", "y.yaml", GOOD)
    assert runner.invoke(app, ["playbooks", "validate", str(good), "--home", str(home)]).exit_code == 0
    listed = runner.invoke(app, ["playbooks", "list", "--json", "--home", str(home)])
    assert listed.exit_code == 0 and '"crypto_key_persistence"' in listed.output


def test_a_broken_user_file_is_a_failed_check_and_the_code_location_still_loads(home: Path) -> None:
    from grace_pipelines.definitions import build_definitions

    _write(home / "playbooks", "broken.yaml", GOOD.replace("    max: 0\n", "    max: lots\n"))
    settings = load_settings(home=home)
    settings.ensure_dirs()
    defs = build_definitions(settings)
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {f"playbook_{n}" for n in SHIPPED} | {"playbooks"} <= keys
    assert defs.resolve_schedule_def("playbook_crypto_key_persistence_schedule").cron_schedule == "0 3 * * 0"
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("playbooks_validation_job").execute_in_process(instance=instance)
        evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    broken = evaluations["valid_broken"]
    assert not broken.passed and broken.severity == dg.AssetCheckSeverity.ERROR
    assert broken.metadata["line"].value == 9 and broken.metadata["field"].value == "checks.0.max"
    assert "broken.yaml line 9: checks.0.max" in (broken.description or "")
    assert all(evaluations[f"valid_{n}"].passed for n in SHIPPED)


def test_the_component_builds_the_playbook_definitions(home: Path, tmp_path: Path) -> None:
    from grace_pipelines.playbooks.component import PlaybooksComponent

    extra = tmp_path / "more"
    _write(extra, "nightly.yaml", GOOD)
    from dagster.components.testing import create_defs_folder_sandbox

    attributes = {"home": str(home), "folder": str(extra)}
    with create_defs_folder_sandbox() as sandbox:  # a defs.yaml naming the component, as a dg project has
        path = sandbox.scaffold_component(
            PlaybooksComponent,
            defs_yaml_contents={
                "type": "grace_pipelines.playbooks.component.PlaybooksComponent",
                "attributes": attributes,
            },
        )
        with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
            assert isinstance(component, PlaybooksComponent) and component.folder == str(extra)
            keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
            assert {"playbook_nightly_consent", "playbook_retention", "playbooks"} <= keys
            assert defs.resolve_schedule_def("playbook_nightly_consent_schedule").execution_timezone == "Europe/Berlin"
            job = defs.resolve_job_def("playbook_nightly_consent_job")
            with dg.instance_for_test() as instance:
                result = job.execute_in_process(instance=instance)
            (evaluation,) = result.get_asset_check_evaluations()
            assert evaluation.check_name == "pending" and evaluation.passed


def test_an_after_asset_playbook_runs_once_per_new_materialization(home: Path) -> None:
    from grace_pipelines.definitions import build_definitions

    text = GOOD.replace('  cron: "0 6 * * *"\n  timezone: Europe/Berlin\n', "  after_asset: search_index\n")
    _write(home / "playbooks", "after_index.yaml", text)
    settings = load_settings(home=home)
    settings.ensure_dirs()
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("playbook_nightly_consent_sensor")
    with dg.instance_for_test() as instance:

        def tick(cursor: str | None) -> tuple[list, str | None]:
            context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
            requests = list(sensor.evaluate_tick(context).run_requests or [])
            return requests, context.cursor

        assert tick(None)[0] == [], "nothing materialized yet"
        defs.resolve_job_def("search_index_job").execute_in_process(instance=instance)
        (request,), cursor = tick(None)
        assert sensor.job_name == "playbook_nightly_consent_job" and request.run_key.startswith("nightly_consent:")
        assert tick(cursor)[0] == [], "once per materialization"
