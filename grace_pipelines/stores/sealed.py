"""Everything Grace keeps sealed under its keyring, as one collection for key rotation, status
and verification: the blob store's files and the vault's values in the state database."""

from __future__ import annotations

from grace_pipelines.crypto.rotation import FolderBlobs
from grace_pipelines.db.state import StateDB
from grace_pipelines.governance.vault import StoreAndVaultBlobs, VaultBlobs


def sealed_things(store_root: str, db: StateDB) -> StoreAndVaultBlobs:
    return StoreAndVaultBlobs(FolderBlobs(store_root), VaultBlobs(db))
