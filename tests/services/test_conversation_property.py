"""Arbitrary text at every step never breaks the conversation and never stores a bad value."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.core.form import FormContext
from bot.core.messages import Incoming, InputKind
from bot.core.questions import REGISTRATION
from bot.db.models import Application, User
from bot.i18n import translator
from bot.runtime import Runtime

COMPLETE: dict[str, Any] = {
    "nik": "5102051708850003",
    "full_name": "I Made Sukadana",
    "birth_date": "1985-08-17",
    "gender": "L",
    "phone": "+6281234567890",
    "regency": "51.02",
    "district": "51.02.05",
    "village": "51.02.05.2006",
    "banjar": "Dukuh",
    "desa_adat": None,
    "occupation": "lainnya",
    "occupation_other": "Tukang canang",
    "income": 1_500_000,
    "programs": ["jkk", "jkm"],
    "period": 1,
    "heir_name": "Ni Luh Sari",
    "heir_relationship": "anak",
    "heir_phone": "+6281311112222",
    "email": None,
}


def _as_typed(value: Any) -> str:
    """What a person would type to give this stored value again."""
    if isinstance(value, dict):
        return str(value["name"])
    return str(value)


def check_stored(answers: dict[str, Any], runtime: Runtime) -> None:
    """Every stored answer is one the form's own declaration would accept, field by field."""
    s = runtime.settings
    ctx = FormContext(
        answers=answers,
        t=translator("id"),
        areas=runtime.areas,
        rates=s.rates,
        today=runtime.today(),
        income_options=s.income_options,
        min_age=s.min_age,
        max_age=s.max_age,
    )
    for key, value in answers.items():
        question = REGISTRATION.by_key[key]
        assert question.applies(answers), key
        if value is None:
            assert question.skippable, key
            continue
        if question.check is not None:
            question.check(value, ctx)
        offered = [o.value for o in question.options(ctx)] if question.options else []
        if value in offered:
            continue
        if question.find is not None and question.find(str(value), ctx) is not None:
            continue
        # Not a button's value: it must be what the parser makes of it (cleaned, canonical).
        assert question.parse is not None, (key, value)
        assert question.parse(_as_typed(value), ctx) == value, (key, value)


async def _send_at_step(runtime: Runtime, step: str, text: str) -> dict[str, Any]:
    keys = [q.key for q in REGISTRATION.questions]
    before = {k: COMPLETE[k] for k in keys[: keys.index(step)]}
    async with runtime.sessions() as session, session.begin():
        user = await session.scalar(select(User).where(User.telegram_id == 9))
        if user is None:
            user = User(telegram_id=9, language="id")
            session.add(user)
            await session.flush()
        draft = await session.scalar(select(Application).where(Application.user_id == user.id))
        if draft is None:
            draft = Application(user_id=user.id, status="draft")
            session.add(draft)
        draft.step = step
        draft.flow_state = json.dumps({})
        draft.answers_enc = runtime.cipher.encrypt(before)
        await session.flush()
        outcome = await runtime.conversation.handle(
            session, user, Incoming(InputKind.TEXT, text=text)
        )
        assert outcome.replies, "every input gets an answer"
    async with runtime.sessions() as session:
        draft = await session.scalar(select(Application).where(Application.user_id == user.id))
        assert draft is not None
        return runtime.cipher.decrypt(draft.answers_enc) if draft.answers_enc else {}


@hsettings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(min_size=1, max_size=60))
@pytest.mark.parametrize("step", [q.key for q in REGISTRATION.questions])
def test_any_text_at_any_step(
    loop_runtime: tuple[asyncio.AbstractEventLoop, Runtime], step: str, text: str
) -> None:
    """Whatever is typed, the bot answers and only valid values reach the database."""
    loop, runtime = loop_runtime
    answers = loop.run_until_complete(_send_at_step(runtime, step, text))
    check_stored(answers, runtime)
