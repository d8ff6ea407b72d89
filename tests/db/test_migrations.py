"""Migrations create exactly the tables the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, select

from bot.db.models import Base, Broadcast
from bot.db.session import pending_migrations
from bot.runtime import Runtime
from bot.services.broadcasts import photo_of, text_of
from tests.conftest import RuntimeFactory


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


async def test_broadcast_texts_and_photos_stored_plain_are_encrypted_at_the_next_start(
    runtime: Runtime, runtime_factory: RuntimeFactory
) -> None:
    """Migrations 0012 and 0013 keep texts and photos (they have no key); the next start-up
    encrypts them, once."""
    plain = "Om Swastiastu, Bu Ketut Sari (0812-3456-7890) menunggu di balai banjar."
    jpeg = b"\xff\xd8\xff\xe0 balai banjar \xff\xd9"
    async with runtime.sessions() as session, session.begin():
        # What 0012 and 0013 leave of a broadcast written before them: plain, renamed.
        old = Broadcast(scope_kind="all", state="done", text_enc=plain, photo_enc=jpeg)
        template = Broadcast(scope_kind="all", state="done", template="benefits")
        session.add_all([old, template])
    async with runtime_factory() as restarted, restarted.sessions() as session:
        sealed = await session.get(Broadcast, old.id)
        assert sealed is not None and sealed.text_enc is not None and sealed.photo_enc
        assert "Ketut" not in sealed.text_enc and "0812" not in sealed.text_enc
        assert b"balai" not in sealed.photo_enc
        assert text_of(sealed, restarted.cipher) == plain
        assert photo_of(sealed, restarted.cipher) == jpeg
        kept = await session.get(Broadcast, template.id)
        assert kept is not None and kept.text_enc is None and kept.photo_enc is None
        assert kept.template == "benefits"
        # A second start leaves what is encrypted as it is.
        before = (sealed.text_enc, sealed.photo_enc)
    async with runtime_factory() as again, again.sessions() as session:
        found = await session.execute(
            select(Broadcast.text_enc, Broadcast.photo_enc).where(Broadcast.id == old.id)
        )
        assert tuple(found.one()) == before
