"""Credentials for the engines that call a paid API, fetched from the vault for a purpose.

A key given directly (or through `dg.EnvVar`) wins; otherwise the vault hands out the named
secret only with an active approval for the purpose, and refuses (audited, with the command
that approves it) without one.
"""

from __future__ import annotations

from grace_pipelines.resources.blob_store import keyring_for
from grace_pipelines.state import StateDB


def vault_secret(*, credential: str | None, state_url: str | None, keys_dir: str | None, purpose: str, actor: str) -> str:
    """The secret's value; raises grace_pipelines.vault.VaultRefused or VaultError."""
    from grace_pipelines.vault import Vault, VaultRefused

    if not (credential and state_url and keys_dir):
        raise VaultRefused(
            f"no API key for {purpose}: store one with `grace secrets set openai` and approve it with "
            f"`grace secrets approve openai --purpose {purpose}` (or set the key's environment variable)"
        )
    return Vault(StateDB(state_url), keyring_for(keys_dir)).use(credential, purpose, actor=actor)
