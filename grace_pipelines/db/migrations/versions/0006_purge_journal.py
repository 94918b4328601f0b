"""Purge journal: a purge is written down before it starts and marked done at the end, so a
purge killed half-way (after LanceDB's delete committed, before old versions were cleaned)
is finished by the next recovery pass instead of being forgotten.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from grace_pipelines.db.schema import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "purge_journal",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source_key", sa.String(16), nullable=False, index=True),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("progress", sa.JSON, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("purge_journal")
