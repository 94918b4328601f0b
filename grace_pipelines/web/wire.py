"""The JSON objects `grace search|ask|status --json` print and the HTTP API returns: one
function each, so both sides give identical JSON (no web framework imported here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SEARCH_KEYS = ("rank", "score", "source_key", "title", "kind", "start_s", "end_s", "text", "citation", "speaker")


def search_json(query: str, results: Sequence[Any], skipped: Sequence[str], filters: Any) -> dict[str, Any]:
    """`{"query", "results": [...SEARCH_KEYS], "skipped": [...], "filters": {...}}` for a list of
    SearchResult and the SearchFilters applied."""
    return {
        "query": query,
        "results": [{key: r.to_dict()[key] for key in SEARCH_KEYS} for r in results],
        "skipped": list(skipped),
        "filters": filters.to_dict(),
    }


def ask_json(answer: Any, skipped: Sequence[str], filters: Any) -> dict[str, Any]:
    """An Answer, the sources its search could not read (and why) and the filters applied, as
    `grace ask --json` prints them."""
    return {**answer.to_dict(), "skipped": list(skipped), "filters": filters.to_dict()}


def status_json(items: Sequence[Any]) -> dict[str, Any]:
    """`{"sources": [...]}`, one SourceStatus each, as `grace status --json` prints it."""
    return {"sources": [i.to_dict() for i in items]}
