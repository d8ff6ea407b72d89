"""Migrations create exactly the tables the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from bot.db.models import Base
from bot.db.session import pending_migrations
from bot.runtime import Runtime


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_the_schema_matches_the_models(runtime: Runtime) -> None:
    """After start-up no migration is pending and the schema has no drift from the models."""
    assert await pending_migrations(runtime.engine) == []
    async with runtime.engine.connect() as connection:
        assert await connection.run_sync(_differences) == []


async def test_areas_are_loaded_once(runtime: Runtime) -> None:
    """The branch's 437 villages are in the database and the directory."""
    assert len(runtime.areas.village_by_code) == 437
    assert runtime.areas.village_by_code["51.02.05.2006"].name == "Dajan Peken"
    assert [r.code for r in runtime.areas.regencies] == runtime.settings.branch_regencies
