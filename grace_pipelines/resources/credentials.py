"""Credentials for the engines that call a paid API, fetched from the vault for a purpose.

The lookup lives in grace_pipelines.engines.credentials (no Dagster, shared with the plain
clients and the Python API); re-exported here for the older import path.
"""

from __future__ import annotations

from grace_pipelines.engines.credentials import EnvKey, api_key_for, vault_secret

__all__ = ["EnvKey", "api_key_for", "vault_secret"]
