"""`grace`: the command line on top of the `Grace` API.

Exit codes: 0 done, 1 a user error with a clear message, 2 a system failure. `--json` prints
exactly one JSON object on stdout; human output goes through rich (to stderr for progress).
One module per group of verbs; importing them registers their commands on `app` in the order
`grace --help` lists them.
"""

# ruff: noqa: I001  (the order registers the commands)
from grace_pipelines.cli import sources as _sources  # noqa: F401  (registers init, ingest, status)
from grace_pipelines.cli import search as _search  # noqa: F401  (search, ask, reembed, eval, play)
from grace_pipelines.cli import consent as _consent  # noqa: F401  (consent ..., purge)
from grace_pipelines.cli import ops as _ops  # noqa: F401  (doctor, dev)
from grace_pipelines.cli import governance as _governance  # noqa: F401  (keys, audit, secrets)
from grace_pipelines.cli import intents as _intents  # noqa: F401  (intent submit, status, list, cancel)
from grace_pipelines.cli import playbooks as _playbooks  # noqa: F401  (playbooks list, validate, run)
from grace_pipelines.cli import speakers as _speakers  # noqa: F401  (speakers ..., export)
from grace_pipelines.cli import web as _web  # noqa: F401  (serve)
from grace_pipelines.cli.app import app, main

__all__ = ["app", "main"]
