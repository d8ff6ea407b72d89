"""Arbitrary text at every step never breaks the conversation and never stores a bad value."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.config import Settings
from bot.core.contribution import check_income
from bot.core.dates import check_age
from bot.core.form import (
    QUESTIONS,
    parse_email,
    parse_occupation_text,
    parse_person_name,
    parse_place,
)
from bot.core.messages import Incoming, InputKind
from bot.core.nik import parse_nik
from bot.core.phone import normalise_phone
from bot.db.models import Application, User
from bot.runtime import Runtime, open_runtime
from tests.conftest import _empty_user_tables, _engine_options

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


def check_stored(answers: dict[str, Any], runtime: Runtime) -> None:
    """Every stored answer is one the form itself would accept."""
    s: Settings = runtime.settings
    today = runtime.today()
    for key, value in answers.items():
        if value is None:
            assert next(q for q in QUESTIONS if q.key == key).skippable or key == "desa_adat"
            continue
        if key == "nik":
            assert parse_nik(value, known_provinces=runtime.areas.province_codes, today=today)
        elif key in ("full_name", "heir_name"):
            assert parse_person_name(value) == value
        elif key == "birth_date":
            check_age(date.fromisoformat(value), today, s.min_age, s.max_age)
        elif key in ("phone", "heir_phone"):
            assert normalise_phone(value, mobile_only=key == "phone") == value
        elif key == "banjar":
            assert parse_place(value) == value
        elif key == "occupation_other":
            assert parse_occupation_text(value) == value
        elif key == "income":
            check_income(value, s.rates)
        elif key == "email":
            assert parse_email(value) == value
        elif key == "village":
            assert value in runtime.areas.village_by_code
        elif key == "desa_adat":
            assert isinstance(value, dict) and value["name"]
        elif key in (
            "gender",
            "heir_relationship",
            "occupation",
            "regency",
            "district",
            "programs",
            "period",
        ):
            assert value == COMPLETE[key] or key in ("gender", "occupation", "heir_relationship")


@pytest.fixture
def loop_runtime(
    settings: Settings, request: pytest.FixtureRequest
) -> Iterator[tuple[asyncio.AbstractEventLoop, Runtime]]:
    """A runtime driven from a plain event loop, for hypothesis (which is synchronous)."""
    options = _engine_options(settings, request)
    loop = asyncio.new_event_loop()
    manager = open_runtime(settings, **options)
    runtime = loop.run_until_complete(manager.__aenter__())
    loop.run_until_complete(_empty_user_tables(runtime))
    try:
        yield loop, runtime
    finally:
        loop.run_until_complete(manager.__aexit__(None, None, None))
        loop.close()


async def _send_at_step(runtime: Runtime, step: str, text: str) -> dict[str, Any]:
    keys = [q.key for q in QUESTIONS]
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
@pytest.mark.parametrize("step", [q.key for q in QUESTIONS])
def test_any_text_at_any_step(
    loop_runtime: tuple[asyncio.AbstractEventLoop, Runtime], step: str, text: str
) -> None:
    """Whatever is typed, the bot answers and only valid values reach the database."""
    loop, runtime = loop_runtime
    answers = loop.run_until_complete(_send_at_step(runtime, step, text))
    check_stored(answers, runtime)
