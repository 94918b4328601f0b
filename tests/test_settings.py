from pathlib import Path

import pytest

from grace_pipelines.settings import SettingsError, load_settings


def test_defaults_live_under_home(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path)
    assert s.inbox == tmp_path / "inbox"
    assert s.store == tmp_path / "store"
    assert s.lancedb == tmp_path / "lancedb"
    assert s.quarantine == tmp_path / "quarantine"
    assert s.dagster_home == tmp_path / "dagster"
    assert s.state_url == f"sqlite:///{tmp_path / 'grace.db'}"
    assert (s.chunk_chars, s.chunk_overlap, s.transcriber, s.embedder) == (500, 100, "faster-whisper", "minilm")


def test_toml_then_env_then_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "grace.toml").write_text('chunk_chars = 300\nchunk_overlap = 30\nowner = "alice"\n')
    s = load_settings(home=tmp_path)
    assert (s.chunk_chars, s.chunk_overlap, s.owner) == (300, 30, "alice")
    monkeypatch.setenv("GRACE_CHUNK_CHARS", "800")
    assert load_settings(home=tmp_path).chunk_chars == 800
    assert load_settings(home=tmp_path, chunk_chars=900).chunk_chars == 900


def test_home_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRACE_HOME", str(tmp_path / "h"))
    assert load_settings().home == (tmp_path / "h").resolve()


def test_dagster_home_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dh"))
    assert load_settings(home=tmp_path).dagster_home == tmp_path / "dh"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"chunk_overlap": 600}, "chunk_overlap (600) must be smaller than chunk_chars (500)"),
        ({"chunk_chars": 10}, "chunk_chars"),
        ({"transcriber": "whisper.cpp"}, "transcriber"),
        ({"embedder": "bert"}, "embedder"),
        ({"database_url": "mysql://x"}, "database_url"),
        ({"inbox_poll_seconds": 0}, "inbox_poll_seconds"),
        ({"no_such_knob": 1}, "no_such_knob"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"offpeak_start": "25:00"}, "offpeak_start"),
        ({"sla_targets": [{"size_class": "tiny", "minutes": 2}]}, "no target for normal work from any origin"),
        ({"sla_targets": [{"size_class": "*", "minutes": 2, "by": "08:00"}]}, "exactly one of `minutes` or `by`"),
        ({"search_fusion": "borda"}, "search_fusion"),
    ],
)
def test_invalid_values_name_the_setting(tmp_path: Path, overrides: dict, needle: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(home=tmp_path, **overrides)
    assert needle in str(err.value)
    assert "grace.toml" in str(err.value)


def test_bad_toml_value_is_reported(tmp_path: Path) -> None:
    (tmp_path / "grace.toml").write_text('whisper_device = "tpu"\n')
    with pytest.raises(SettingsError, match="whisper_device"):
        load_settings(home=tmp_path)


def test_htm_settings_from_toml(tmp_path: Path) -> None:
    (tmp_path / "grace.toml").write_text(
        'timezone = "Europe/Berlin"\noffpeak_start = "22:30"\noffpeak_end = "05:00"\n'
        '[[sla_targets]]\nsize_class = "*"\nminutes = 45\n'
        '[[sla_targets]]\norigin = "voice_note"\nsize_class = "tiny"\nminutes = 1\n'
    )
    settings = load_settings(home=tmp_path)
    assert (
        str(settings.tz) == "Europe/Berlin"
        and settings.offpeak_start.hour == 22
        and settings.offpeak_start.minute == 30
    )
    from grace_pipelines.htm import target_for

    assert target_for(settings.sla_targets, "voice_note", "tiny").label() == "1 min"
    assert target_for(settings.sla_targets, "meeting", "heavy").label() == "45 min"
