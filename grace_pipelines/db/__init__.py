"""The app state database: schema (every table), engine and Alembic migrations, repositories."""
