"""HTM ledger: size class, SLA deadline, route, priority and launch/searchable times per
source; launches (for per-origin caps and metrics) and SLA tier events (each fires once).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from grace_pipelines.db.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("size_class", sa.String(8), nullable=True))
        batch.add_column(sa.Column("sla_due", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("route", sa.String(8), nullable=True))
        batch.add_column(sa.Column("priority", sa.Integer, nullable=True))
        batch.add_column(sa.Column("launched_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("run_key", sa.Text, nullable=True))
        batch.add_column(sa.Column("searchable_at", UTCDateTime, nullable=True))
    op.create_table(
        "htm_launches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("origin", sa.String(32), nullable=False),
        sa.Column("size_class", sa.String(8), nullable=False),
        sa.Column("sources", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_htm_launches_at", "htm_launches", ["at"])
    op.create_table(
        "htm_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source_key", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(32), nullable=False),
        sa.Column("size_class", sa.String(8), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.UniqueConstraint("source_key", "kind", name="uq_htm_events_source_kind"),
    )
    op.create_index("ix_htm_events_at", "htm_events", ["at"])


def downgrade() -> None:
    op.drop_table("htm_events")
    op.drop_table("htm_launches")
    with op.batch_alter_table("sources") as batch:
        for column in ("searchable_at", "run_key", "launched_at", "priority", "route", "sla_due", "size_class"):
            batch.drop_column(column)
