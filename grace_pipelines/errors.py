"""The two kinds of failure the CLI contract distinguishes: a user error (exit 1, a clear
message) and a system failure (exit 2). Domain errors (MediaError, ConsentError, VaultError,
...) stay in their domains; the facade turns them into `GraceError` where the user caused them."""

from __future__ import annotations

SYSTEM_FAILURE = "system failure"  # the prefix of every reason that is not the input's fault


class GraceError(Exception):
    """A user error (bad argument, unknown source, ...): the CLI exits 1 with this message."""
