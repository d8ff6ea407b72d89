"""The audit log: every grant, revocation, refused privileged action and broadcast."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import AuditEntry, User


async def record(
    session: AsyncSession,
    action: str,
    *,
    actor: User | None = None,
    actor_label: str | None = None,
    target: str | None = None,
    **details: Any,
) -> None:
    """Add one audit entry (never with personal data: ids and codes only)."""
    session.add(
        AuditEntry(
            actor_user_id=actor.id if actor is not None else None,
            actor_label=actor_label,
            action=action,
            target=target,
            details=json.dumps(details, sort_keys=True, default=str),
        )
    )
