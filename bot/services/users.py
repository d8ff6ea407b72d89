"""Finding or creating the person behind an incoming message."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import User, utcnow

SEEN_RESOLUTION = timedelta(minutes=1)


async def user_for_telegram(session: AsyncSession, telegram_id: int, language: str) -> User:
    """The user with this Telegram id, created with `language` on first contact."""
    user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
    if user is None:
        user = User(telegram_id=telegram_id, language=language)
        session.add(user)
        await session.flush()
    else:
        now = utcnow()
        # Good to the minute: no write on every message of a conversation.
        if now - user.last_seen_at >= SEEN_RESOLUTION:
            user.last_seen_at = now
    return user
