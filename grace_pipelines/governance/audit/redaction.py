"""The secret guard of the audit log: entries are kept forever and unencrypted, so a value
shaped like a credential (or a key named like one) is refused before it is written."""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from grace_pipelines.governance.audit.chain import AuditSecretError

# ---- the secret guard ----------------------------------------------------------------------
_SECRET_WORDS = {
    "secret",
    "secrets",
    "password",
    "passwords",
    "passwd",
    "passphrase",
    "pwd",
    "token",
    "tokens",
    "value",
    "values",
    "credential",
    "credentials",
    "apikey",
    "privatekey",
    "plaintext",
    "cookie",
}
_SECRET_PAIRS = {("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"), ("auth", "key")}
# A key ending in one of these names a secret without holding it: secret_name, token_count.
_HARMLESS_LAST = {
    "name",
    "names",
    "id",
    "ids",
    "count",
    "counts",
    "purpose",
    "kind",
    "type",
    "version",
    "ttl",
    "expires",
    "expiry",
    "at",
    "age",
    "status",
    "scope",
    "n",
}
_SECRET_VALUE_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bsk-(proj-)?[A-Za-z0-9_\-]{16,}"),  # OpenAI-style API keys
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),  # GitHub tokens
    re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),  # Slack tokens
    re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"),  # JWTs
]


def _words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def secret_key_reason(key: str) -> str | None:
    """Why a details key looks like it holds a secret value, or None."""
    words = _words(key)
    if not words or words[-1] in _HARMLESS_LAST:
        return None
    joined = "".join(words)
    if joined in _SECRET_WORDS:
        return "is named like a secret"
    for word in words:
        if word in _SECRET_WORDS:
            return f"contains {word!r}"
    for a, b in pairwise(words):
        if (a, b) in _SECRET_PAIRS:
            return f"contains '{a}_{b}'"
    return None


def _looks_like_secret_value(text: str) -> bool:
    return any(p.search(text) for p in _SECRET_VALUE_PATTERNS)


def check_no_secrets(details: Any, *, path: str = "details") -> None:
    """Raise AuditSecretError if `details` (nested dicts and lists included) has a key named
    like a credential or a string shaped like one. The message never repeats the value."""
    if isinstance(details, Mapping):
        for key, value in details.items():
            where = f"{path}.{key}"
            reason = secret_key_reason(str(key))
            if reason:
                raise AuditSecretError(
                    f"audit entries must never carry secret values: key {where!r} {reason}; "
                    "record the secret's name (as the subject, or under a key such as 'secret_name'), "
                    "never its value"
                )
            check_no_secrets(value, path=where)
    elif isinstance(details, (list, tuple)):
        for i, value in enumerate(details):
            check_no_secrets(value, path=f"{path}[{i}]")
    elif isinstance(details, str) and _looks_like_secret_value(details):
        raise AuditSecretError(
            f"audit entries must never carry secret values: {path} looks like a credential "
            "(API key, token or private key); record the secret's name, never its value"
        )
