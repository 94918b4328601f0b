"""Grace: recordings and documents become private, searchable, cited knowledge on Dagster."""

from grace_pipelines.api import Grace, GraceError, SearchResult, SourceStatus

__all__ = ["Grace", "GraceError", "SearchResult", "SourceStatus"]
