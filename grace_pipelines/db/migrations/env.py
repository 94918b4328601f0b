"""Alembic environment: run against the connection Grace hands over (no alembic.ini needed)."""

from alembic import context

from grace_pipelines.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table="grace_alembic_version",  # Dagster keeps its own alembic_version
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
