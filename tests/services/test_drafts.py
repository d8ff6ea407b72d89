"""Unfinished registrations are deleted after the retention period; recent ones stay."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.db.models import Application, Consent, User, utcnow
from bot.runtime import Runtime
from bot.services.registration import purge_stale_drafts


async def test_old_drafts_are_deleted_and_recent_ones_kept(runtime: Runtime) -> None:
    """A draft untouched for 31 days goes (its consent stays, unlinked); others stay."""
    async with runtime.sessions() as session, session.begin():
        user = User(telegram_id=5, language="id")
        session.add(user)
        await session.flush()
        old = Application(
            user_id=user.id, status="draft", step="income", updated_at=utcnow() - timedelta(days=31)
        )
        fresh = Application(user_id=user.id, status="draft", step="nik")
        sent = Application(
            user_id=user.id,
            status="submitted",
            reference="BC-OLD111",
            updated_at=utcnow() - timedelta(days=400),
        )
        session.add_all([old, fresh, sent])
        await session.flush()
        session.add(
            Consent(
                user_id=user.id, application_id=old.id, given=True, text_version="v", language="id"
            )
        )
    async with runtime.sessions() as session, session.begin():
        assert await purge_stale_drafts(session, timedelta(days=30)) == 1
    async with runtime.sessions() as session:
        steps = set((await session.scalars(select(Application.step))).all())
        consents = await session.scalar(select(func.count()).select_from(Consent))
    assert steps == {"nik", None}
    assert consents == 1
