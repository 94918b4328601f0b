"""Grace: recordings and documents become private, searchable, cited knowledge on Dagster.

`from grace_pipelines import Grace` is the Python API. The names load on first use (PEP 562),
so importing a policy module (`grace_pipelines.text.chunking`, `...htm.sizing`) costs no Dagster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Grace", "GraceError", "SearchResult", "SourceStatus"]

if TYPE_CHECKING:
    from grace_pipelines.api import Grace, GraceError, SearchResult, SourceStatus


def __getattr__(name: str) -> Any:
    if name in __all__:
        from grace_pipelines import api

        return getattr(api, name)
    raise AttributeError(f"module 'grace_pipelines' has no attribute {name!r}")
