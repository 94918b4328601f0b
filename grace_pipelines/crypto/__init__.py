"""Encryption at rest: AES-256-GCM envelopes, a keyring of key-encryption keys, rotation.

Pure library code (no Dagster imports). Typical use by the blob store::

    from grace_pipelines.crypto import open_keyring, seal, open_blob, store_aad

    keyring = open_keyring(grace_home / "keys", create=True)      # `grace init`
    with keyring.writer_lock():                                   # put
        data = seal(plaintext, keyring, aad=store_aad(key, name))
        ...atomic write of `data` to store/{key}/{name}...
    plaintext = open_blob(data, keyring, aad=store_aad(key, name), name=f"{key}/{name}")  # get

    rotate(keyring, FolderBlobs(grace_home / "store"))            # `grace keys rotate`, weekly
    status(keyring, FolderBlobs(...)); verify(keyring, FolderBlobs(...))   # keys status / verify

See envelope.py (format, errors), keyring.py (master key, key states, locks) and
rotation.py (resumable rotation) for the details.
"""

from grace_pipelines.crypto.envelope import (
    HEADER_MAX,
    SEGMENT_SIZE,
    CryptoError,
    EnvelopeInfo,
    inspect,
    is_envelope,
    kek_id_of,
    open_blob,
    open_stream,
    rewrap,
    seal,
    seal_stream,
    store_aad,
)
from grace_pipelines.crypto.files import atomic_write_bytes
from grace_pipelines.crypto.kek import Kek, KeyInfo
from grace_pipelines.crypto.keyring import Keyring, open_keyring
from grace_pipelines.crypto.master_key import MASTER_KEY_ENV, MasterKey, create_master_key_file, load_master_key
from grace_pipelines.crypto.rotation import (
    BlobFailure,
    BlobSet,
    FolderBlobs,
    KeyStatus,
    RotationError,
    RotationReport,
    StatusReport,
    VerifyReport,
    default_aad,
    encrypt_plaintext_blobs,
    rotate,
    status,
    verify,
)

__all__ = [
    "HEADER_MAX",
    "MASTER_KEY_ENV",
    "SEGMENT_SIZE",
    "BlobFailure",
    "BlobSet",
    "CryptoError",
    "EnvelopeInfo",
    "FolderBlobs",
    "Kek",
    "KeyInfo",
    "KeyStatus",
    "Keyring",
    "MasterKey",
    "RotationError",
    "RotationReport",
    "StatusReport",
    "VerifyReport",
    "atomic_write_bytes",
    "create_master_key_file",
    "default_aad",
    "encrypt_plaintext_blobs",
    "inspect",
    "is_envelope",
    "kek_id_of",
    "load_master_key",
    "open_blob",
    "open_keyring",
    "open_stream",
    "rewrap",
    "rotate",
    "seal",
    "seal_stream",
    "status",
    "store_aad",
    "verify",
]
