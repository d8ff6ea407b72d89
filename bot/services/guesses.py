"""Limits on guessing from one chat: NIKs tried in a registration, and /klaim codes.

Every try is an audit row (so guesses are on record), and the rows of the last 24 hours are
what the limits count: no table of its own, and a restart or another replica counts the same.
A NIK try is kept as a short keyed hash (`Cipher.keyed_hash`), never the NIK itself: enough to
tell one NIK from another, nothing to read it back from.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import AuditEntry, User, utcnow
from bot.security import Cipher
from bot.services import audit

WINDOW = timedelta(hours=24)
NIK_TRY = "nik_try"
NIK_LIMIT = "nik_limit"
CLAIM_REFUSED = "claim_refused"
CLAIM_LIMIT = "claim_limit"


def try_token(cipher: Cipher, kind: str, value: str) -> str:
    """What a try is recorded as: 16 hex digits of a keyed hash of the kind and value."""
    return cipher.keyed_hash(f"try:{kind}:{value}")[:16]


async def nik_try_allowed(
    session: AsyncSession, cipher: Cipher, user: User, kind: str, value: str, limit: int
) -> bool:
    """Record that `user` tries `value` (a NIK) and say whether it is within the day's limit.

    Trying a value again costs nothing; a new one beyond `limit` different values in 24 hours
    is refused (and that refusal is recorded too).
    """
    token = f"{kind}:{try_token(cipher, kind, value)}"
    tried = set(
        await session.scalars(
            select(AuditEntry.target)
            .where(
                AuditEntry.actor_user_id == user.id,
                AuditEntry.action == NIK_TRY,
                AuditEntry.at >= utcnow() - WINDOW,
            )
            .distinct()
        )
    )
    if token in tried:
        return True
    if len(tried) >= limit:
        await audit.record(session, NIK_LIMIT, actor=user, target=kind)
        return False
    await audit.record(session, NIK_TRY, actor=user, target=token)
    return True


async def claim_tries_left(session: AsyncSession, user: User, limit: int) -> bool:
    """Whether `user` may try another /klaim code (fewer than `limit` wrong ones in 24 hours)."""
    wrong = await session.scalar(
        select(func.count())
        .select_from(AuditEntry)
        .where(
            AuditEntry.actor_user_id == user.id,
            AuditEntry.action == CLAIM_REFUSED,
            AuditEntry.at >= utcnow() - WINDOW,
        )
    )
    if int(wrong or 0) < limit:
        return True
    await audit.record(session, CLAIM_LIMIT, actor=user)
    return False
