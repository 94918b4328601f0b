"""Sources remember when they were recorded, apart from when they were dropped: the
container's creation-time tag where present, else the file's mtime at drop. Search filters
(`--since/--until --by recorded`) read it; a source registered before this column counts as
recorded when it was dropped (left NULL here, never guessed).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from grace_pipelines.db.schema import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("recorded_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("recorded_at")
