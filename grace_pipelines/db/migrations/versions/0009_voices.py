"""Voices remembered across recordings: `voice_profiles` (a person's name) and
`source_speakers` (each recording's speakers, their seconds, and the profile each one is).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from grace_pipelines.db.schema import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voice_profiles",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
    )
    op.create_table(
        "source_speakers",
        sa.Column("source_key", sa.String(16), primary_key=True),
        sa.Column("label", sa.String(8), primary_key=True),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("first_s", sa.Float, nullable=True),
        sa.Column("last_s", sa.Float, nullable=True),
        sa.Column("profile_id", sa.Integer, sa.ForeignKey("voice_profiles.id", ondelete="SET NULL"), nullable=True),
        sa.Column("how", sa.String(8), nullable=True),
        sa.Column("similarity", sa.Float, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("source_speakers")
    op.drop_table("voice_profiles")
