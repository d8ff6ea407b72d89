"""Composing a broadcast (/siaran) and controlling it from its live progress message.

The broadcast being composed is a `Broadcast` row in state "composing" (it holds the text or
template, the audience and the photo); the person's `mode_state` only says which row and which
step. Every step asks the policy again before it acts.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.callbacks import BroadcastControl, ComposeChoice, ComposeScope, encode
from bot.core.errors import InvalidInput
from bot.core.messages import Button, Incoming, Reply, button_rows, text_length
from bot.core.policy import POLICY, Action, Grant, Scope, ScopeKind
from bot.core.schedule import example_time, parse_when
from bot.core.states import CONTROL_TARGETS, BroadcastState, UserMode, control_sources
from bot.db.models import AuditEntry, Broadcast
from bot.services import audit
from bot.services.broadcasts import (
    AUDIENCES,
    STATUSES,
    TEMPLATES,
    broadcast_scope,
    count_recipients,
    release_broadcast,
    render,
    scope_from,
    set_photo,
    set_text,
    target_for,
)
from bot.services.common import (
    allowed,
    deny,
    grants,
    known_place,
    mode_state,
    scope_label,
    set_mode,
)
from bot.services.delivery import (
    broadcast_counts,
    default_progress,
    set_broadcast_state,
    state_key,
)
from bot.services.turn import Turn

# Lengths as Telegram counts them (UTF-16 code units: an emoji is two), the footer and the
# sender's line still to come within Telegram's 4 096.
MIN_TEXT, MAX_TEXT = 5, 3500
# The broadcast footer is added under the caption; Telegram's caption limit is 1024.
MAX_CAPTION = 850
MAX_PHOTO_BYTES = 5_000_000
# Compose steps (the buttons of a step carry its name, so an old button is recognised).
CONTENT, TEXT, AUDIENCE, STATUS, PREVIEW, WHEN = (
    "content",
    "text",
    "audience",
    "status",
    "preview",
    "when",
)


class Composing:
    """/siaran from the choice of place to sending or scheduling, and the progress buttons."""

    # ------------------------------------------------------------------ choosing the place

    async def cmd_compose(self, turn: Turn, _args: str) -> None:
        """Ask where the broadcast goes (or go straight on when there is one place)."""
        scopes: list[Scope] = []
        for scope in POLICY.scopes_for(await grants(turn), Action.BROADCAST):
            scopes.append(scope)
            if scope.kind is ScopeKind.BRANCH:
                # The whole branch, or one of its regencies.
                scopes.extend(
                    Scope(ScopeKind.REGENCY, r.code) for r in turn.services.areas.regencies
                )
        if len(scopes) == 1:
            await self._start(turn, scopes[0])
            return
        buttons = []
        for scope in scopes:
            target = target_for(scope)
            pick = ComposeScope(target.scope_kind, target.scope_code)
            buttons.append(Button(await scope_label(turn, scope), encode(pick)))
        turn.say(Reply(turn.t("compose.scope"), buttons=button_rows(buttons, 1)))

    async def scope_button(self, turn: Turn, pick: ComposeScope) -> None:
        """The place was picked."""
        scope = scope_from(pick.kind, pick.code)
        if scope is None or not await known_place(turn, scope):
            turn.outcome.stale_button = True
            turn.text("button.stale")
            return
        if await allowed(turn, Action.BROADCAST, scope):
            await self._start(turn, scope)

    async def _start(self, turn: Turn, scope: Scope) -> None:
        # A composition given up earlier has no deliveries; the new one replaces it.
        await turn.session.execute(
            delete(Broadcast).where(
                Broadcast.created_by == turn.user.id,
                Broadcast.state == BroadcastState.COMPOSING,
            )
        )
        target = target_for(scope)
        broadcast = Broadcast(
            created_by=turn.user.id,
            scope_kind=target.scope_kind,
            scope_code=target.scope_code,
            audience="followers",
            state=BroadcastState.COMPOSING.value,
            progress_chat_id=turn.user.telegram_id,
        )
        turn.session.add(broadcast)
        await turn.session.flush()
        self._step(turn, broadcast, CONTENT)
        buttons = [
            Button(turn.t(f"template.name.{n}"), self._data(broadcast, CONTENT, "tpl", n))
            for n in TEMPLATES
        ]
        buttons.append(Button(turn.t("compose.own_text"), self._data(broadcast, CONTENT, "own")))
        turn.say(
            Reply(
                turn.t("compose.content", scope=await scope_label(turn, scope)),
                buttons=button_rows(buttons, 1),
            )
        )

    # ------------------------------------------------------------------ the steps

    def _data(self, broadcast: Broadcast, step: str, choice: str, value: str = "") -> str:
        return encode(ComposeChoice(broadcast.id, step, choice, value))

    def _step(self, turn: Turn, broadcast: Broadcast, step: str) -> None:
        set_mode(turn, UserMode.COMPOSE, {"broadcast": broadcast.id, "step": step})

    async def _current(self, turn: Turn) -> tuple[Broadcast, str] | None:
        """The broadcast being composed and its step, if the policy still allows it."""
        state = mode_state(turn)
        number = state.get("broadcast")
        broadcast = await turn.session.get(Broadcast, number) if isinstance(number, int) else None
        if turn.user.mode != UserMode.COMPOSE or broadcast is None:
            return None
        if broadcast.state != BroadcastState.COMPOSING or broadcast.created_by != turn.user.id:
            return None
        return broadcast, str(state.get("step"))

    async def _may_go_on(self, turn: Turn, broadcast: Broadcast) -> bool:
        if await allowed(turn, Action.BROADCAST, broadcast_scope(broadcast)):
            return True
        await self._discard(turn.session, broadcast)
        return False

    async def choice_button(self, turn: Turn, pick: ComposeChoice) -> None:
        """A button of one compose step."""
        current = await self._current(turn)
        if current is None or current[0].id != pick.broadcast_id or current[1] != pick.step:
            turn.outcome.stale_button = True
            turn.text("button.stale")
            return
        broadcast, step = current
        if not await self._may_go_on(turn, broadcast):
            return
        choice, value = pick.choice, pick.value
        if choice == "cancel":
            await self._discard(turn.session, broadcast)
            set_mode(turn, None)
            turn.text("compose.cancelled")
        elif step == CONTENT and choice == "tpl" and value in TEMPLATES:
            broadcast.template, broadcast.text_enc = value, None
            self._ask_audience(turn, broadcast)
        elif step == CONTENT and choice == "own":
            self._step(turn, broadcast, TEXT)
            turn.text("compose.write")
        elif step == AUDIENCE and value == "status":
            self._step(turn, broadcast, STATUS)
            buttons = [
                Button(turn.t(f"status.{s}"), self._data(broadcast, STATUS, "st", s))
                for s in STATUSES
            ]
            turn.say(Reply(turn.t("compose.status"), buttons=button_rows(buttons, 2)))
        elif step == AUDIENCE and value in AUDIENCES:
            broadcast.audience, broadcast.status_filter = value, None
            await self._preview(turn, broadcast)
        elif step == STATUS and value in STATUSES:
            broadcast.audience, broadcast.status_filter = "status", value
            await self._preview(turn, broadcast)
        elif step == PREVIEW and choice == "send":
            await self._release(turn, broadcast, None)
        elif step == PREVIEW and choice == "when":
            self._step(turn, broadcast, WHEN)
            turn.text("compose.when", example=example_time(datetime.now(turn.services.settings.tz)))
        else:
            turn.outcome.stale_button = True
            turn.text("button.stale")

    async def typed(self, turn: Turn, text: str) -> None:
        """Typed text while composing: the message itself, or the time to send it."""
        current = await self._current(turn)
        if current is None:
            set_mode(turn, None)
            turn.text("button.stale")
            return
        broadcast, step = current
        if not await self._may_go_on(turn, broadcast):
            return
        if step == TEXT:
            body = text.strip()
            if not MIN_TEXT <= text_length(body) <= MAX_TEXT:
                turn.text("compose.error.length")
                return
            set_text(broadcast, turn.services.cipher, body)
            broadcast.template = None
            self._ask_audience(turn, broadcast)
        elif step == WHEN:
            try:
                moment = parse_when(text, datetime.now(turn.services.settings.tz))
            except InvalidInput as exc:
                turn.error(exc)
                return
            await self._release(turn, broadcast, moment)
        else:
            turn.text("answer.use_buttons")

    async def photo(self, turn: Turn, incoming: Incoming) -> bool:
        """One photo with a caption as the message; False when no message is being written."""
        current = await self._current(turn)
        if current is None or current[1] != TEXT:
            return False
        broadcast = current[0]
        if not await self._may_go_on(turn, broadcast):
            return True
        if incoming.photo is None:
            turn.text("compose.error.media")
            return True
        caption = incoming.text.strip()
        if not MIN_TEXT <= text_length(caption) <= MAX_CAPTION:
            turn.text("compose.error.caption", limit=MAX_CAPTION)
            return True
        photo = await incoming.photo()
        if len(photo) > MAX_PHOTO_BYTES:
            turn.text("compose.error.photo_size")
            return True
        set_text(broadcast, turn.services.cipher, caption)
        broadcast.template = None
        set_photo(broadcast, turn.services.cipher, photo)
        self._ask_audience(turn, broadcast)
        return True

    def _ask_audience(self, turn: Turn, broadcast: Broadcast) -> None:
        self._step(turn, broadcast, AUDIENCE)
        buttons = [
            Button(turn.t(f"audience.{a}"), self._data(broadcast, AUDIENCE, "aud", a))
            for a in AUDIENCES
        ]
        turn.say(Reply(turn.t("compose.audience"), buttons=button_rows(buttons, 1)))

    async def _preview(self, turn: Turn, broadcast: Broadcast) -> None:
        self._step(turn, broadcast, PREVIEW)
        settings = turn.services.settings
        scope = broadcast_scope(broadcast)
        target = target_for(scope, broadcast.audience, broadcast.status_filter)
        count = await count_recipients(turn.session, target, settings.branch_regencies)
        await self._sign(turn, broadcast)
        # Only templates exist in every language; a leader's own words go out as written.
        intro = "compose.preview_intro" if broadcast.template else "compose.preview_intro_own"
        turn.text(intro, count=count)
        turn.say(render(broadcast, turn.user, settings, turn.services.cipher))
        buttons = (
            (Button(turn.t("compose.send_now"), self._data(broadcast, PREVIEW, "send")),),
            (Button(turn.t("compose.schedule"), self._data(broadcast, PREVIEW, "when")),),
            (Button(turn.t("compose.cancel"), self._data(broadcast, PREVIEW, "cancel")),),
        )
        turn.say(Reply(turn.t("compose.confirm", count=count), buttons=buttons))

    async def _sign(self, turn: Turn, broadcast: Broadcast) -> None:
        """Name the role and place the broadcast goes out in (recipients are told)."""
        held = await grants(turn)
        scope = broadcast_scope(broadcast)
        broadcast.sender_role = POLICY.sender_role(held, scope)
        acting = POLICY.acting_scope(held, Action.BROADCAST, scope)
        broadcast.sender_place = await scope_label(turn, acting) if acting else None

    async def _release(self, turn: Turn, broadcast: Broadcast, when: datetime | None) -> None:
        await self._sign(turn, broadcast)
        await release_broadcast(
            turn.session,
            broadcast,
            settings=turn.services.settings,
            created_by=turn.user,
            scheduled_at=when,
        )
        set_mode(turn, None)
        if when is not None:
            turn.text(
                "compose.scheduled", when=when.strftime("%d-%m-%Y %H:%M"), number=broadcast.id
            )
        # The live progress message, which the delivery engine edits in place from now on.
        counts = await broadcast_counts(turn.session, broadcast.id)
        view = default_progress(broadcast, counts, turn.t.language)
        turn.say(replace(view, track=f"broadcast:{broadcast.id}"))

    async def _discard(self, session: AsyncSession, broadcast: Broadcast) -> None:
        await set_broadcast_state(session, broadcast.id, BroadcastState.CANCELLED)
        await session.refresh(broadcast)

    # ------------------------------------------------------------------ progress buttons

    async def control_button(self, turn: Turn, pick: BroadcastControl) -> None:
        """Pause, resume or cancel (after a confirmation) from the progress message.

        A press the broadcast's state machine does not allow from its state now (resuming a
        cancelled one, pausing a finished one, cancelling twice) is refused with one sentence
        naming the state; nothing changes and nothing is audited.
        """
        broadcast = await turn.session.get(Broadcast, pick.broadcast_id)
        if broadcast is None or pick.action not in (*CONTROL_TARGETS, "cancel_no"):
            turn.outcome.stale_button = True
            turn.text("button.stale")
            return
        held = await grants(turn)
        acting = POLICY.acting_scope(held, Action.BROADCAST_CONTROL, broadcast_scope(broadcast))
        if acting is None:
            await deny(turn, f"broadcast_{pick.action}", f"broadcast:{broadcast.id}")
            return
        t = turn.t
        target = CONTROL_TARGETS.get(pick.action)
        if target is not None and broadcast.state not in control_sources(target):
            _refuse(turn, pick.action, broadcast.state)
        elif pick.action == "resume" and await self._paused_by_wider(turn, broadcast, held):
            turn.text("broadcast.resume_refused")
            return
        elif pick.action == "cancel":
            counts = await broadcast_counts(turn.session, broadcast.id)
            card = default_progress(broadcast, counts, t.language)
            ask = (
                (
                    Button(t("broadcast.cancel_yes"), encode(replace(pick, action="cancel_yes"))),
                    Button(t("broadcast.cancel_no"), encode(replace(pick, action="cancel_no"))),
                ),
            )
            text = f"{card.text}\n\n{t('broadcast.cancel_confirm')}"
            turn.say(Reply(text, buttons=ask, edit=True))
            return
        elif target is not None:
            if await set_broadcast_state(turn.session, broadcast.id, target):
                await audit.record(
                    turn.session,
                    _AUDIT[pick.action],
                    actor=turn.user,
                    target=f"broadcast:{broadcast.id}",
                    by_scope=f"{acting.kind}:{acting.code or ''}",
                )
                turn.text(_SAID[pick.action])
            else:
                # Its state changed since it was read (the sender finished it meanwhile).
                await turn.session.refresh(broadcast)
                _refuse(turn, pick.action, broadcast.state)
        # The progress message shows the current state and its buttons at once.
        await turn.session.refresh(broadcast)
        counts = await broadcast_counts(turn.session, broadcast.id)
        turn.say(replace(default_progress(broadcast, counts, t.language), edit=True))

    async def _paused_by_wider(self, turn: Turn, broadcast: Broadcast, held: list[Grant]) -> bool:
        """Whether someone with a wider place (staff) paused it: their pause binds the leader."""
        paused_by = await _paused_by(turn.session, broadcast.id)
        if paused_by is None or POLICY.permits(held, Action.BROADCAST_CONTROL, paused_by):
            return False
        await audit.record(
            turn.session,
            "denied",
            actor=turn.user,
            target=f"broadcast:{broadcast.id}",
            what="broadcast_resume",
            reason="paused_by_wider_scope",
        )
        return True


def _refuse(turn: Turn, action: str, state: str) -> None:
    """Say that the broadcast's state does not allow this press."""
    turn.text(_REFUSED[action], state=turn.t(state_key(state)))


_AUDIT = {
    "pause": "broadcast_pause",
    "resume": "broadcast_resume",
    "cancel_yes": "broadcast_cancel",
}
_SAID = {
    "pause": "broadcast.paused",
    "resume": "broadcast.resumed",
    "cancel_yes": "broadcast.cancelled",
}
_REFUSED = {
    "pause": "broadcast.refused.pause",
    "resume": "broadcast.refused.resume",
    "cancel": "broadcast.refused.cancel",
    "cancel_yes": "broadcast.refused.cancel",
}


async def _paused_by(session: AsyncSession, broadcast_id: int) -> Scope | None:
    """The place of whoever paused the broadcast last (from the audit log, where it is kept)."""
    entry = await session.scalar(
        select(AuditEntry)
        .where(
            AuditEntry.action == "broadcast_pause", AuditEntry.target == f"broadcast:{broadcast_id}"
        )
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    if entry is None:
        return None
    kind, _, code = str(json.loads(entry.details).get("by_scope", "")).partition(":")
    if kind not in ScopeKind.__members__.values():
        return None
    return Scope(ScopeKind(kind), code or None)
