"""Alembic migrations of the app state database (SQLite and PostgreSQL alike)."""
