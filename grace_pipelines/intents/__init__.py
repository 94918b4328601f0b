"""Intents: a requested outcome with a deadline ("these files searchable by 09:00", "tell me when
this meeting is searchable", "re-embed everything with model X by Monday").

The bridge between what a person asks for and what the HTM dispatcher does: an intent's
deadline lowers its sources' SLA deadlines (so the dispatcher and the SLA sensor treat them as
due by then), its runs carry the `grace/intent` tag, and its progress, completion and overdue
events are recorded (audit log + webhook, once each).

- `deadlines`: the deadlines people type, parsed strictly in the configured time zone (pure);
- `progress`: done/total, failures with reasons, status transitions, projection (pure);
- `service`: submitting, evaluating and describing intents on the state database (no Dagster).
"""

from grace_pipelines.intents.deadlines import DeadlineError, parse_deadline
from grace_pipelines.intents.progress import KINDS, STATUSES, Progress, next_status

__all__ = ["KINDS", "STATUSES", "DeadlineError", "Progress", "next_status", "parse_deadline"]
