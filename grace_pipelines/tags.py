"""Every `grace/*` run tag Grace writes or reads, in one place.

Tags are how a Dagster run says what it is for: the run queue's fair-share limit keys on
`grace/origin` (dagster.yaml), recovery finds a run's process by `grace/pid` + `grace/host`,
HTM metrics and recovery map runs back to sources by `grace/source` / `grace/sources`, and an
operator reads `grace/title` (the file's name) instead of mapping partition hashes.
"""

from __future__ import annotations

SOURCE = "grace/source"  # the one source key of an ingest or purge run
SOURCES = "grace/sources"  # a tiny batch's keys, comma-separated
BATCH_SIZE = "grace/batch_size"
ORIGIN = "grace/origin"  # voice_note | meeting | document | ...: the fair-share key
KIND = "grace/kind"  # audio | video | document
SIZE_CLASS = "grace/size_class"  # tiny | normal | heavy
ROUTE = "grace/route"  # why the dispatcher launched it (run, batch, deferred, SLA at risk)
TRIGGER = "grace/trigger"  # consent | revocation | recovery | purge | cli
REASON = "grace/reason"  # e.g. reembed
EMBEDDING_MODEL = "grace/embedding_model"
PID = "grace/pid"  # the process that executes the run in-process (recovery's liveness check)
HOST = "grace/host"
INTENT = "grace/intent"  # the open intents (ids, comma-separated) a run works for: grace intent status

TITLE = "grace/title"  # the dropped file's title (a batch: its first title and how many more)
HOLD = "grace/hold"  # a run that only seals the bytes of a source awaiting consent: "consent"

PRIORITY = "dagster/priority"  # Dagster's own: higher dequeues first


TITLE_CHARS = 100


def title_tag(title: str, more: int = 0) -> str:
    """A run-tag value for a title: printable characters only, at most TITLE_CHARS, and for a
    batch `first.wav (+49 more)`."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in title).strip() or "untitled"
    if len(clean) > TITLE_CHARS:
        clean = clean[: TITLE_CHARS - 1] + "…"
    return f"{clean} (+{more} more)" if more else clean
