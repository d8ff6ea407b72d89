"""Broadcasts: who receives one (audience within a scope), and what each recipient reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import ColumnElement, Select, and_, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.core.callbacks import MenuAction, encode
from bot.core.messages import Attachment, Button, Reply
from bot.core.money import format_rupiah
from bot.core.policy import POLICY, Scope, ScopeKind
from bot.core.questions import minimum_monthly
from bot.core.states import BroadcastState, DeliveryState
from bot.db.models import Application, Broadcast, Delivery, Follow, User, owned_by
from bot.i18n import translator
from bot.security import Cipher
from bot.services import audit

TEMPLATES = ("benefits", "minimum", "register", "payment")
AUDIENCES = ("followers", "applicants", "status", "unfinished")
STATUSES = ("submitted", "verified", "registered", "rejected")
SCOPE_KINDS = ("village", "desa_adat", "regency", "all")
# The whole branch is stored as "all" in broadcasts.scope_kind.
_ALL = "all"
# How every Fernet token starts once base64-encoded (version byte 0x80, then the time).
_TOKEN_START = "gAAAAA"


@dataclass(frozen=True)
class Target:
    """Who a broadcast is for: a scope and an audience within it."""

    scope_kind: str
    scope_code: str | None
    audience: str = "followers"
    status: str | None = None


def target_for(scope: Scope, audience: str = "followers", status: str | None = None) -> Target:
    """The broadcast target for a policy place."""
    if scope.kind is ScopeKind.BRANCH:
        return Target(_ALL, None, audience, status)
    return Target(scope.kind.value, scope.code, audience, status)


def scope_from(kind: str, code: str | None) -> Scope | None:
    """The policy place of a stored (or button-carried) scope kind and code; None if unknown."""
    if kind == _ALL:
        return Scope.branch() if not code else None
    if kind not in (ScopeKind.VILLAGE, ScopeKind.DESA_ADAT, ScopeKind.REGENCY):
        return None
    return Scope.parse(kind, code)


def broadcast_scope(broadcast: Broadcast) -> Scope:
    """The policy place a broadcast is for."""
    scope = scope_from(broadcast.scope_kind, broadcast.scope_code)
    if scope is None:
        raise ValueError(f"broadcast {broadcast.id} has an unknown scope {broadcast.scope_kind!r}")
    return scope


def _village_filter(column: Any, target: Target) -> ColumnElement[bool]:
    if target.scope_kind == ScopeKind.VILLAGE:
        return column == target.scope_code  # type: ignore[no-any-return]
    if target.scope_kind == ScopeKind.REGENCY:
        return column.like(f"{target.scope_code}.%")  # type: ignore[no-any-return]
    return literal(True)


def recipients_query(target: Target, branch_regencies: list[str]) -> Select[Any]:
    """User ids of the audience: not opted out, not blocked, each once."""
    reachable = and_(User.opted_out_at.is_(None), User.blocked_at.is_(None))
    if target.audience == "followers":
        condition: ColumnElement[bool]
        if target.scope_kind == ScopeKind.DESA_ADAT:
            condition = Follow.desa_adat_id == int(target.scope_code or 0)
        elif target.scope_kind == "all":
            condition = or_(
                *(Follow.village_code.like(f"{code}.%") for code in branch_regencies),
                Follow.desa_adat_id.is_not(None),
            )
        else:
            condition = _village_filter(Follow.village_code, target)
        return (
            select(User.id)
            .join(Follow, Follow.user_id == User.id)
            .where(condition, reachable)
            .distinct()
        )
    statuses = {
        "applicants": list(STATUSES),
        "status": [target.status or "submitted"],
        "unfinished": ["draft"],
    }[target.audience]
    if target.scope_kind == ScopeKind.DESA_ADAT:
        condition = Application.desa_adat_id == int(target.scope_code or 0)
    elif target.scope_kind == "all":
        condition = literal(True)
    else:
        condition = _village_filter(Application.village_code, target)
    return (
        select(User.id)
        # A form a leader filled for a resident is not the leader's until claimed.
        .join(Application, owned_by(User.id))
        .where(Application.status.in_(statuses), condition, reachable)
        .distinct()
    )


async def count_recipients(
    session: AsyncSession, target: Target, branch_regencies: list[str]
) -> int:
    """How many people a broadcast to `target` would reach now."""
    query = recipients_query(target, branch_regencies).subquery()
    return int(await session.scalar(select(func.count()).select_from(query)) or 0)


async def create_broadcast(
    session: AsyncSession,
    target: Target,
    *,
    settings: Settings,
    cipher: Cipher,
    text: str | None = None,
    template: str | None = None,
    photo: bytes | None = None,
    created_by: User | None = None,
    actor_label: str | None = None,
    scheduled_at: datetime | None = None,
    progress_chat_id: int | None = None,
) -> Broadcast:
    """Create a broadcast and one delivery row per recipient, ready for the delivery engine."""
    broadcast = Broadcast(
        created_by=created_by.id if created_by else None,
        scope_kind=target.scope_kind,
        scope_code=target.scope_code,
        audience=target.audience,
        status_filter=target.status,
        template=template,
        state=BroadcastState.COMPOSING.value,
        progress_chat_id=progress_chat_id,
    )
    set_text(broadcast, cipher, text)
    set_photo(broadcast, cipher, photo)
    session.add(broadcast)
    await session.flush()
    await release_broadcast(
        session,
        broadcast,
        settings=settings,
        created_by=created_by,
        actor_label=actor_label,
        scheduled_at=scheduled_at,
    )
    return broadcast


async def release_broadcast(
    session: AsyncSession,
    broadcast: Broadcast,
    *,
    settings: Settings,
    created_by: User | None = None,
    actor_label: str | None = None,
    scheduled_at: datetime | None = None,
) -> None:
    """Turn a composing broadcast into a sending or scheduled one, one delivery per recipient."""
    if (broadcast.text_enc is None) == (broadcast.template is None):
        raise ValueError("a broadcast has either a text or a template")
    if broadcast.template is not None and broadcast.template not in TEMPLATES:
        raise ValueError(f"unknown template {broadcast.template!r}")
    if broadcast.state != BroadcastState.COMPOSING:
        raise ValueError(f"broadcast {broadcast.id} is {broadcast.state}, not composing")
    target = Target(
        broadcast.scope_kind, broadcast.scope_code, broadcast.audience, broadcast.status_filter
    )
    broadcast.state = (
        BroadcastState.SCHEDULED if scheduled_at is not None else BroadcastState.SENDING
    ).value
    broadcast.scheduled_at = scheduled_at
    await session.flush()
    recipients = recipients_query(target, settings.branch_regencies).subquery()
    await session.execute(
        insert(Delivery).from_select(
            ["broadcast_id", "user_id", "state", "attempts"],
            select(
                literal(broadcast.id),
                recipients.c.id,
                literal(DeliveryState.PENDING.value),
                literal(0),
            ),
        )
    )
    count = await session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.broadcast_id == broadcast.id)
    )
    await audit.record(
        session,
        "broadcast_create",
        actor=created_by,
        actor_label=actor_label,
        target=f"{target.scope_kind}:{target.scope_code or '-'}",
        broadcast=broadcast.id,
        audience=target.audience,
        recipients=count,
        scheduled=scheduled_at.isoformat() if scheduled_at else None,
    )


async def record_progress_message(
    session: AsyncSession, broadcast_id: int, chat_id: int, message_id: int
) -> None:
    """Keep the id of a broadcast's live progress message, so the delivery engine edits it."""
    # Only the chat the broadcast reports to may name its progress message.
    await session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.progress_chat_id == chat_id)
        .values(progress_message_id=message_id)
    )


def set_text(broadcast: Broadcast, cipher: Cipher, text: str | None) -> None:
    """Keep a leader's own text (or caption) encrypted: it may name people."""
    broadcast.text_enc = cipher.encrypt({"text": text}) if text is not None else None


def text_of(broadcast: Broadcast, cipher: Cipher) -> str | None:
    """A broadcast's own text, or None for a template."""
    if broadcast.text_enc is None:
        return None
    return str(cipher.decrypt(broadcast.text_enc)["text"])


def set_photo(broadcast: Broadcast, cipher: Cipher, photo: bytes | None) -> None:
    """Keep a broadcast's photo encrypted: it may show people."""
    broadcast.photo_enc = cipher.encrypt_bytes(photo) if photo is not None else None
    _opened_photos.pop(broadcast, None)


# Photos opened for sending, by the broadcast object the delivery engine keeps while it sends
# (one decryption per broadcast, not one per recipient); gone with the object.
_opened_photos: WeakKeyDictionary[Broadcast, bytes] = WeakKeyDictionary()


def photo_of(broadcast: Broadcast, cipher: Cipher) -> bytes | None:
    """A broadcast's photo, decrypted, or None."""
    if broadcast.photo_enc is None:
        return None
    photo = _opened_photos.get(broadcast)
    if photo is None:
        photo = _opened_photos[broadcast] = cipher.decrypt_bytes(broadcast.photo_enc)
    return photo


async def seal_plain(session: AsyncSession, cipher: Cipher) -> int:
    """Encrypt broadcast texts and photos stored plain before they were kept encrypted
    (migrations 0012 and 0013); return how many were sealed."""
    texts = (
        await session.execute(
            select(Broadcast.id, Broadcast.text_enc).where(
                Broadcast.text_enc.is_not(None), Broadcast.text_enc.not_like(f"{_TOKEN_START}%")
            )
        )
    ).all()
    for number, text in texts:
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == number, Broadcast.text_enc == text)
            .values(text_enc=cipher.encrypt({"text": text}))
        )
    photos = await session.scalars(
        select(Broadcast.id).where(
            Broadcast.photo_enc.is_not(None),
            func.substr(Broadcast.photo_enc, 1, len(_TOKEN_START)) != _TOKEN_START.encode(),
        )
    )
    sealed = len(texts)
    for number in list(photos):
        # One photo at a time: each may be a few megabytes.
        photo = await session.scalar(select(Broadcast.photo_enc).where(Broadcast.id == number))
        if photo is not None:
            await session.execute(
                update(Broadcast)
                .where(Broadcast.id == number)
                .values(photo_enc=cipher.encrypt_bytes(photo))
            )
            sealed += 1
    return sealed


def render(broadcast: Broadcast, user: User, settings: Settings, cipher: Cipher) -> Reply:
    """The message one recipient reads, in their own language."""
    t = translator(user.language or settings.default_language)
    if broadcast.template is not None:
        minimum = minimum_monthly(settings.rates)
        body = t(f"template.{broadcast.template}", minimum=format_rupiah(minimum))
    else:
        body = text_of(broadcast, cipher) or ""
    text = f"{body}\n\n{t('broadcast.footer')}"
    role = broadcast.sender_role
    if role is not None and POLICY.is_branch_role(role):
        text = f"{t('broadcast.from_branch')}\n\n{text}"
    elif role is not None and (spec := POLICY.role(role)) is not None:
        sender = t("broadcast.from", role=t(spec.label), place=broadcast.sender_place or "-")
        text = f"{sender}\n\n{text}"
    register = encode(MenuAction("register"))
    buttons: tuple[tuple[Button, ...], ...] = ()
    if broadcast.audience == "unfinished":
        buttons = ((Button(t("menu.continue"), register),),)
    elif broadcast.template in ("benefits", "minimum", "register"):
        buttons = ((Button(t("menu.register"), register),),)
    photo = photo_of(broadcast, cipher)
    attachment = Attachment("siaran.jpg", photo, is_photo=True) if photo else None
    return Reply(text, buttons=buttons, attachment=attachment)
