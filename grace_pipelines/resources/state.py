"""The state database (consent ledger, source registry, quarantine log) as a Dagster resource."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from grace_pipelines.db.state import StateDB


class StateResource(dg.ConfigurableResource):
    """SQLAlchemy URL of the app state: SQLite in GRACE_HOME by default, or PostgreSQL."""

    url: str = Field(description="SQLAlchemy database URL")
    keys_dir: str | None = Field(None, description="GRACE_HOME's keys folder (the audit log's anchor)")

    def db(self) -> StateDB:
        return StateDB(self.url, keys_dir=self.keys_dir)
