"""Database: declarative models, the engine and sessions, Alembic migrations."""
