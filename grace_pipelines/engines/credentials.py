"""Credentials for the engines that call a paid API, fetched from the vault for a purpose.

A key given directly (or through an environment-variable handle: `dg.EnvVar`, or `EnvKey` for
the plain clients) wins; otherwise the vault hands out the named secret only with an active
approval for the purpose, and refuses (audited, with the command that approves it) without one.

Here rather than in resources/ so that the plain clients look keys up exactly as the resources
do, without importing Dagster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from grace_pipelines.db.state import StateDB
from grace_pipelines.stores.blobs import keyring_for


@dataclass(frozen=True)
class EnvKey:
    """An API key read from an environment variable when it is used, like `dg.EnvVar` (whose
    `get_value()` it mirrors): a plain client's repr shows the variable's name, never the key."""

    name: str

    def get_value(self, default: str | None = None) -> str | None:
        return os.environ.get(self.name, default)


def vault_secret(
    *, credential: str | None, state_url: str | None, keys_dir: str | None, purpose: str, actor: str
) -> str:
    """The secret's value; raises grace_pipelines.governance.vault.VaultRefused or VaultError."""
    from grace_pipelines.governance.vault import Vault, VaultRefused

    if not (credential and state_url and keys_dir):
        raise VaultRefused(
            f"no API key for {purpose}: store one with `grace secrets set openai` and approve it with "
            f"`grace secrets approve openai --purpose {purpose}` (or set the key's environment variable)"
        )
    return Vault(StateDB(state_url), keyring_for(keys_dir)).use(credential, purpose, actor=actor)


def api_key_for(
    explicit: Any,
    *,
    credential: str | None,
    state_url: str | None,
    keys_dir: str | None,
    purpose: str,
    actor: str,
    error: type[Exception],
) -> str:
    """The key to send: an explicit one (e.g. from an environment variable), else the vault's
    for `purpose`. Vault refusals become `error` (the caller's own exception type), with the
    approving command."""
    from grace_pipelines.governance.vault import VaultError, VaultRefused

    get_value = getattr(explicit, "get_value", None)
    if callable(get_value):  # dg.EnvVar (a resource used outside a run holds it unresolved) or EnvKey
        explicit = get_value()
    if explicit:
        return explicit
    try:
        return vault_secret(credential=credential, state_url=state_url, keys_dir=keys_dir, purpose=purpose, actor=actor)
    except (VaultRefused, VaultError) as exc:
        raise error(f"the {actor} engine needs an API key: {exc}") from None
