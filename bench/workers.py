"""Simulated workers: the answers each bot's form takes, and people giving them.

Every person waits for the bot's answer before giving the next one. What "the answer" looks
like is learnt once per bot (`calibrate`): one person goes through the form alone and the
screen after each step (the newest message's text and buttons) is kept. Under load a step is
answered once the bot sent or edited a message after it and the newest message shows that
screen. (Counting the bot's changes instead does not work: whether a pressed question is
edited into the next one or the next one comes as a new message depends on timing.) A step's
latency is the time from the update to the first message sent or edited in answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bot.fakebot import BotMessage, FakeTelegram, FakeUser
from bot.fakebot.chat import Signal
from bot.i18n import translator

StepKind = Literal["text", "press", "contact"]


@dataclass(frozen=True)
class Step:
    """One thing a person does: type a text, press a button (by label), share their number."""

    kind: StepKind
    value: str

    async def perform(self, user: FakeUser) -> None:
        """Do it in the fake Telegram."""
        if self.kind == "text":
            await user.send_text(self.value)
        elif self.kind == "press":
            await user.press(self.value)
        else:
            await user.send_contact(self.value)


Script = Callable[[int], list[Step]]
# What differs between people on the same screen: NIKs, dates, reference numbers.
_PERSONAL = re.compile(r"BC-[A-Z0-9]+|\d")


@dataclass(frozen=True)
class Screen:
    """What the newest message of the bot shows, without what differs from person to person."""

    text: str
    buttons: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, message: BotMessage | None) -> Screen:
        """The screen a message shows."""
        if message is None:
            return cls("", ())
        text = _PERSONAL.sub("", message.text or message.caption or "")
        return cls(text, tuple(tuple(row) for row in message.buttons()))

    def shows(self, other: Screen) -> bool:
        """Whether this screen is `other`, or the same with the pressed answer split off.

        The pressed question may become the next question ("✅ Setuju" and then the question)
        or be closed with the answer while the question comes in a new message.
        """
        return self.buttons == other.buttons and (
            self.text in other.text or other.text in self.text
        )


def nik_for(number: int) -> str:
    """A valid NIK for person `number` (Tabanan, born 17-08-1985, male; the serial differs)."""
    return f"510205170885{number % 9999 + 1:04d}"


def bebas_cemas_script(number: int) -> list[Step]:
    """The whole /daftar form with good answers, as tests/e2e/test_registration.py gives them."""
    t = translator("id")

    def press(key: str, **params: str) -> Step:
        return Step("press", t(key, **params))

    return [
        Step("text", "/start"),
        press("menu.register"),
        press("consent.yes"),
        Step("text", nik_for(number)),
        Step("text", "I Made   Sukadana"),
        press("birth_date.use_nik", date="17 Agustus 1985"),
        press("gender.male"),
        Step("contact", "6281234567890"),
        Step("press", "Kabupaten Tabanan"),
        Step("press", "Tabanan"),
        Step("text", "dajan  peken"),
        Step("text", "Banjar Dukuh"),
        press("nav.skip"),
        press("occupation.petani"),
        Step("text", "1,5 juta"),
        press("programs.basic", amount="Rp21.800"),
        press("period.option.3", amount="Rp65.400"),
        Step("text", "Ni Luh Sari"),
        press("relationship.pasangan"),
        Step("text", "0813-1111-2222"),
        press("nav.skip"),
        press("summary.send"),
    ]


def conversation_script(number: int) -> list[Step]:
    """The 12 questions of the ConversationHandler baseline (bench/baselines/conversation.py)."""
    return [
        Step("text", "/start"),
        Step("text", "I Made Sukadana"),
        Step("text", nik_for(number)),
        Step("text", "17-08-1985"),
        Step("press", "Laki-laki"),
        Step("text", "081234567890"),
        Step("text", "Dajan Peken"),
        Step("text", "Banjar Dukuh"),
        Step("press", "Petani"),
        Step("text", "1500000"),
        Step("text", "Ni Luh Sari"),
        Step("text", "081311112222"),
        Step("press", "Kirim"),
    ]


def echo_script(number: int) -> list[Step]:
    """As many texts as the form baseline has steps, for the echo bot."""
    return [Step("text", f"pesan {step} dari {number}") for step in range(13)]


class Watcher:
    """Every change the bot makes in each chat, with the moment the fake saw it."""

    def __init__(self, fake: FakeTelegram) -> None:
        self._fake = fake
        # Per chat: (moment, whether it is a message sent or edited).
        self.events: dict[int, list[tuple[float, bool]]] = defaultdict(list)
        self._signals: dict[int, Signal] = defaultdict(Signal)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watcher:
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._watch(ready))
        await ready.wait()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self, ready: asyncio.Event) -> None:
        with self._fake.subscribe() as queue:
            ready.set()
            while True:
                event = await queue.get()
                self.events[event.chat_id].append(
                    (time.monotonic(), event.kind in ("sent", "edited"))
                )
                self._signals[event.chat_id].notify()

    def count(self, chat_id: int) -> int:
        """Changes seen so far in a chat."""
        return len(self.events[chat_id])

    async def wait_for(self, chat_id: int, count: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until a chat has `count` changes; False if `timeout` seconds pass first."""
        return await self.wait_until(chat_id, lambda: self.count(chat_id) >= count, timeout)

    async def wait_until(
        self,
        chat_id: int,
        condition: Callable[[], bool],
        timeout: float,  # noqa: ASYNC109
    ) -> bool:
        """Wait until `condition` holds, checked at each change in the chat; False on timeout."""
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0 or not await self._signals[chat_id].wait(left):
                return condition()
        return True

    def answered_since(self, chat_id: int, mark: int) -> bool:
        """Whether a message was sent or edited after change number `mark`."""
        return any(is_message for _, is_message in self.events[chat_id][mark:])

    async def wait_quiet(self, chat_id: int, quiet: float, timeout: float) -> None:  # noqa: ASYNC109
        """Wait for a first change, then until the chat has been quiet for `quiet` seconds."""
        mark = self.count(chat_id)
        await self.wait_for(chat_id, mark + 1, timeout)
        while await self._signals[chat_id].wait(quiet):
            pass

    def first_message_after(self, chat_id: int, mark: int) -> float | None:
        """The moment of the first message sent or edited after change number `mark`."""
        for moment, is_message in self.events[chat_id][mark:]:
            if is_message:
                return moment
        return None


@dataclass
class StepResult:
    """One answered (or unanswered) step of one person."""

    chat_id: int
    index: int
    sent: float
    latency: float | None
    done: float | None


@dataclass
class Outcome:
    """All steps of a load, and the people who did not finish."""

    steps: list[StepResult] = field(default_factory=list)
    unfinished: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Chat id -> when the update now waiting for its answer was sent.
    waiting: dict[int, float] = field(default_factory=dict)

    @property
    def started(self) -> float:
        """The first update's moment."""
        return min(step.sent for step in self.steps)

    @property
    def ended(self) -> float:
        """The last answer's moment."""
        return max((s.done for s in self.steps if s.done is not None), default=self.started)

    @property
    def answered(self) -> list[StepResult]:
        """Steps whose answer arrived."""
        return [step for step in self.steps if step.done is not None]


async def calibrate(
    fake: FakeTelegram, watcher: Watcher, script: Script, chat_id: int, quiet: float = 0.5
) -> list[Screen]:
    """The screen after each step when one person is alone with the bot."""
    user = fake.user(chat_id, "Kalibrasi")
    screens = []
    for step in script(chat_id):
        mark = watcher.count(chat_id)
        await step.perform(user)
        await watcher.wait_quiet(chat_id, quiet, timeout=30)
        if not watcher.answered_since(chat_id, mark):
            raise RuntimeError(f"the bot did not answer {step} for a person alone")
        screens.append(Screen.of(user.last))
    return screens


Pace = Callable[[random.Random], float]


def think_time(low: float, high: float) -> Pace:
    """A person who answers `low`..`high` seconds after the previous answer was sent."""
    return lambda rng: rng.uniform(low, high)


async def run_person(
    fake: FakeTelegram,
    watcher: Watcher,
    steps: Sequence[Step],
    expected: Sequence[Screen | None],
    chat_id: int,
    outcome: Outcome,
    *,
    pace: Pace | None = None,
    rng: random.Random | None = None,
    timeout: float = 60.0,  # noqa: ASYNC109 - per step
    start_at: int = 0,
) -> int:
    """Go through `steps` from `start_at`; return the index of the first step not answered.

    Without `pace` the next answer follows the reply at once (closed loop); with it, each
    answer is sent `pace(rng)` seconds after the previous one, or as soon as the reply is
    there if that is later. A step of `expected` None is answered by any message.
    """
    user = fake.user(chat_id, "Warga")
    rng = rng or random.Random(chat_id)
    next_at = time.monotonic()
    for index in range(start_at, len(steps)):
        if pace is not None:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        mark = watcher.count(chat_id)
        sent = time.monotonic()
        outcome.waiting[chat_id] = sent
        try:
            await steps[index].perform(user)
        except LookupError as error:
            outcome.errors.append(f"{chat_id} step {index}: {error}")
            outcome.unfinished.append(chat_id)
            return index
        screen = expected[index]

        def answered_here(mark: int = mark, screen: Screen | None = screen) -> bool:
            return watcher.answered_since(chat_id, mark) and (
                screen is None or Screen.of(user.last).shows(screen)
            )

        answered = await watcher.wait_until(chat_id, answered_here, timeout)
        del outcome.waiting[chat_id]
        first = watcher.first_message_after(chat_id, mark)
        done = time.monotonic() if answered else None
        latency = first - sent if first is not None else None
        outcome.steps.append(StepResult(chat_id, index, sent, latency, done))
        if not answered:
            outcome.unfinished.append(chat_id)
            return index
        if pace is not None:
            next_at = sent + pace(rng)
    return len(steps)


async def run_load(
    fake: FakeTelegram,
    watcher: Watcher,
    script: Script,
    expected: Sequence[Screen | None],
    chat_ids: Sequence[int],
    *,
    pace: Pace | None = None,
    seed: int = 1,
    timeout: float = 60.0,  # noqa: ASYNC109 - per step
) -> Outcome:
    """Everyone goes through the whole form at once; people with a pace start spread out."""
    outcome = Outcome()

    async def person(number: int, chat_id: int) -> None:
        rng = random.Random(seed * 1_000_003 + number)
        if pace is not None:
            await asyncio.sleep(pace(rng) * rng.random())
        steps = script(chat_id)
        await run_person(
            fake, watcher, steps, expected, chat_id, outcome, pace=pace, rng=rng, timeout=timeout
        )

    await asyncio.gather(*(person(n, chat_id) for n, chat_id in enumerate(chat_ids)))
    return outcome
