"""Intents: a requested outcome with a deadline ("these files searchable by 09:00", "tell me
when this meeting is searchable", "re-embed everything with model X by Monday"), its last
recorded progress and the once-only markers of its completion and overdue events; and the
sources each intent covers (a key may be covered before the inbox registers it).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from grace_pipelines.db.schema import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("deadline", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.String(64), nullable=True),
        sa.Column("done", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("progress_at", UTCDateTime, nullable=True),
        sa.Column("completed_at", UTCDateTime, nullable=True),
        sa.Column("overdue_at", UTCDateTime, nullable=True),
        sa.Column("notified_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_intents_status", "intents", ["status"])
    op.create_table(
        "intent_sources",
        sa.Column("intent_id", sa.Integer, sa.ForeignKey("intents.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("source_key", sa.String(16), primary_key=True),
        sa.Column("title", sa.Text, nullable=True),
    )
    op.create_index("ix_intent_sources_source_key", "intent_sources", ["source_key"])


def downgrade() -> None:
    op.drop_table("intent_sources")
    op.drop_table("intents")
