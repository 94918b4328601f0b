"""The request and response bodies of /api/v1 as pydantic models: they validate what comes
in and make the OpenAPI schema (/api/openapi.json, Swagger UI at /api/docs) say what goes out.
Field names and shapes are those of the CLI's `--json` (see wire.py)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    """A response body: fields the facade adds later pass through unchanged (the JSON stays the CLI's)."""

    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    detail: str = Field(description="What was wrong, naming the file or source and the reason.")


class UploadRefusal(BaseModel):
    detail: str
    file: str | None = Field(None, description="The uploaded file's name.")
    state: str | None = Field(None, description="refused | ignored | quarantined")


class Health(Out):
    status: str = "ok"
    sources: int = Field(description="Sources known to this GRACE_HOME.")


class SourceStatus(Out):
    source_key: str | None
    title: str
    kind: str | None
    origin: str | None
    state: str = Field(description="awaiting_consent | processing | searchable | failed | quarantined | purged | ...")
    why: str
    recorded_at: str | None = Field(None, description="When it was recorded (UTC, ISO 8601).")
    dropped_at: str | None = Field(None, description="When the inbox registered it (UTC, ISO 8601).")


class Sources(Out):
    sources: list[SourceStatus]


class IngestOutcome(SourceStatus):
    path: str | None = Field(None, description="The uploaded file's name.")


class IngestResult(Out):
    sources: list[IngestOutcome]


class SearchHit(Out):
    rank: int
    score: float
    source_key: str
    title: str
    kind: str
    start_s: float | None
    end_s: float | None
    text: str
    citation: str = Field(description="e.g. 'standup.mp3 @ 00:03-00:09, Priya'; GET /clip plays it.")
    speaker: str | None = Field(None, description="Who said the cited sentence: a voice's name, else 'speaker N'.")


class AppliedFilters(Out):
    since: str | None = Field(description="UTC, inclusive (ISO 8601, Z).")
    until: str | None = Field(description="UTC, exclusive.")
    origin: str | None
    kind: str | None
    source: str | None
    when: str = Field(description="recorded | dropped: which time since/until filter.")
    speaker: str | None = None


class SearchResponse(Out):
    query: str
    results: list[SearchHit]
    skipped: list[str] = Field(description="Sources the search could not read, and why.")
    filters: AppliedFilters


class Filters(BaseModel):
    """What people type: since/until as '2026-11-30', '30 Nov', 'yesterday', 'last week', '6 hours ago'."""

    since: str | None = None
    until: str | None = None
    origin: str | None = Field(None, description="voice_note, meeting, document, screen, api, manual, schedule")
    kind: str | None = Field(None, description="audio | video | document")
    source: str | None = Field(None, description="Source key, key prefix or file name.")
    by: str = Field("recorded", description="What since/until filter: recorded | dropped.")
    speaker: str | None = Field(None, description="Only what this named voice said.")


class AskRequest(Filters):
    question: str = Field(min_length=1, max_length=4000)
    k: int = Field(5, ge=1, le=50)


class AnswerCitation(Out):
    n: int
    citation: str
    source_key: str
    title: str
    kind: str
    start_s: float | None
    end_s: float | None
    text: str
    similarity: float


class Answer(Out):
    question: str
    answer: str
    mode: str = Field(description="generated | extractive | not_found")
    citations: list[AnswerCitation]
    model: str | None
    skipped: list[str] = Field(description="Sources the search could not read, and why.")
    filters: AppliedFilters


class GrantRequest(BaseModel):
    source: str = Field(description="Source key, or the file name of a drop.")
    party: str
    scope: str = Field(description="transcribe | index | all")
    ttl: str | None = Field(None, description="The grant lasts this long (90m, 12h, 30d, 2w).")
    expires_at: datetime | None = Field(None, description="Or until this time (timezone-aware).")
    wait: bool = Field(False, description="Run the work this releases now, before answering.")


class RevokeRequest(BaseModel):
    source: str
    party: str
    scope: str
    wait: bool = Field(False, description="Run the purge to completion before answering.")


class Decision(Out):
    ids: list[int] = Field(description="The consent ledger entries recorded.")
    source: SourceStatus = Field(description="The source's state after the decision.")


class ConsentItem(Out):
    source_key: str
    title: str
    scope: str
    participants: list[str]
    granted: list[str]
    missing: list[str]
    refused: list[str] = Field(description="Those of `missing` whose latest decision is a revocation.")
    commands: list[str]


class ConsentList(Out):
    consent: list[ConsentItem]


class Waiting(Out):
    source_key: str
    title: str
    scope: str
    command: str


class PartyDecisions(Out):
    party: str
    waiting: list[Waiting] = Field(description="Consent requests waiting on this party.")


class CredentialRequest(Out):
    name: str
    purpose: str
    requested_by: str
    at: str
    approve: str = Field(description="The command that approves it.")


class Decisions(Out):
    parties: list[PartyDecisions]
    credentials: list[CredentialRequest] = Field(description="Credential uses waiting for approval.")


class ApproveRequest(BaseModel):
    name: str = Field(description="The secret's name.")
    purpose: str = Field(description="What it may be used for (embedding, transcription, ...).")
    ttl: str | None = Field(None, description="The approval lasts this long (90m, 12h, 30d, 2w).")


class RefuseRequest(BaseModel):
    name: str = Field(description="The secret's name.")
    purpose: str = Field(description="The purpose whose pending use is refused.")


class Refused(Out):
    name: str
    purpose: str
    requests_closed: int


class Approved(Out):
    name: str
    purpose: str
    expires_at: str | None


class Speaker(Out):
    source_key: str
    title: str | None
    label: str = Field(description="S1, S2 ... by first appearance in the recording.")
    name: str | None = Field(None, description="The voice's name (named by a person, or matched).")
    how: str | None = Field(None, description="named | matched")
    similarity: float | None = None
    seconds: float
    first_s: float | None = None


class Speakers(Out):
    speakers: list[Speaker]
    profiles: list[str] = Field(description="Every voice profile's name.")


class NameSpeakerRequest(BaseModel):
    source: str = Field(description="Source key, or the file name of a drop.")
    speaker: str = Field(min_length=2, max_length=8, description="The label, e.g. S2.")
    name: str = Field(min_length=1, max_length=80, description="Who it is (as consent names the person).")


class MergeSpeakersRequest(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    into: str = Field(min_length=1, max_length=80)


class ForgetSpeakerRequest(BaseModel):
    name: str = Field(min_length=1, max_length=80)
