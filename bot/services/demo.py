"""Storing invented workers' applications (`bot.core.demo`) for demos, tests and benchmarks.

Rows go in with bulk inserts, a few thousand per statement, with their plain columns taken
from the form's `Indexed` declarations as a real draft has them; a NIK another active
application holds is drawn again. Never real people's data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.demo import DemoWorkers, demo_reference
from bot.core.form import Answers, Form
from bot.core.questions import CONSENT_VERSION, REGISTRATION
from bot.core.states import ApplicationStatus
from bot.db.models import ACTIVE_STATUSES, Application, Consent, User
from bot.security import Cipher
from bot.services.areas import AreaDirectory

# Statuses of the demo applications and how often each comes up.
STATUS_MIX: tuple[tuple[ApplicationStatus, int], ...] = (
    (ApplicationStatus.SUBMITTED, 50),
    (ApplicationStatus.VERIFIED, 20),
    (ApplicationStatus.REGISTERED, 20),
    (ApplicationStatus.REJECTED, 7),
    (ApplicationStatus.CANCELLED, 3),
)
_REJECTIONS = ("NIK tidak ditemukan di Dukcapil", "Data ganda", "Usia di atas batas")
BATCH = 2000


@dataclass
class DemoResult:
    """How many rows the demo added."""

    applications: int
    drafts: int


def indexed_columns(form: Form, answers: Answers, cipher: Cipher) -> dict[str, Any]:
    """The plain application columns the form declares for these answers (as a draft has them)."""
    columns: dict[str, Any] = {}
    for question in form.questions:
        indexed = question.indexed
        if indexed is None:
            continue
        value = answers.get(question.key)
        if value is None:
            columns[indexed.column] = None
        elif indexed.hashed:
            columns[indexed.column] = cipher.nik_hash(str(value))
        else:
            columns[indexed.column] = indexed.value(value)
    return columns


def _unique_hashes(form: Form) -> list[str]:
    return [
        q.indexed.column
        for q in form.questions
        if q.indexed is not None and q.indexed.unique and q.indexed.hashed
    ]


def _status(rng: random.Random) -> ApplicationStatus:
    statuses = [status for status, _weight in STATUS_MIX]
    weights = [weight for _status, weight in STATUS_MIX]
    return rng.choices(statuses, weights)[0]


@dataclass
class _Filler:
    """What one `add_demo_data` call draws from: the workers, the NIKs taken, the numbering."""

    workers: DemoWorkers
    cipher: Cipher
    form: Form
    rng: random.Random
    now: datetime
    days: int
    # Keyed hashes of the NIKs in the database and drawn so far (one per active application).
    taken: set[str]
    number: int

    def worker(self, unfinished: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        """A worker's answers that clash with nobody already stored, and their plain columns."""
        unique = _unique_hashes(self.form)
        while True:
            answers = self.workers.unfinished(self.form) if unfinished else self.workers.answers()
            columns = indexed_columns(self.form, answers, self.cipher)
            hashes = [columns[c] for c in unique if columns[c] is not None]
            if not any(h in self.taken for h in hashes):
                self.taken.update(hashes)
                return answers, columns

    def row(self, user_id: int, unfinished: bool) -> dict[str, Any]:
        """One application row for insertion."""
        rng = self.rng
        answers, columns = self.worker(unfinished)
        started = self.now - timedelta(seconds=rng.randint(3600, self.days * 86400))
        row: dict[str, Any] = {
            "user_id": user_id,
            "language": "id",
            "created_at": started,
            "updated_at": started,
            "reference": None,
            "submitted_at": None,
            "status_changed_at": None,
            "kpj_number": None,
            "covered_from": None,
            "status_note": None,
            "step": None,
            "answers_enc": self.cipher.encrypt(answers),
            **columns,
        }
        if unfinished:
            following = self.form.next_question(answers)
            row.update(status=ApplicationStatus.DRAFT, step=following.key if following else None)
            return row
        status = _status(rng)
        submitted = started + timedelta(minutes=rng.randint(3, 40))
        self.number += 1
        row.update(
            status=status,
            reference=demo_reference(self.number),
            submitted_at=submitted,
            updated_at=submitted,
        )
        if status is not ApplicationStatus.SUBMITTED:
            changed = min(submitted + timedelta(days=rng.randint(1, 20)), self.now)
            row.update(status_changed_at=changed, updated_at=changed)
            if status is ApplicationStatus.REGISTERED:
                row["kpj_number"] = f"{rng.randint(10**10, 10**11 - 1)}"
                row["covered_from"] = changed.date()
            elif status is ApplicationStatus.REJECTED:
                row["status_note"] = rng.choice(_REJECTIONS)
        return row


async def add_demo_data(
    session: AsyncSession,
    cipher: Cipher,
    areas: AreaDirectory,
    *,
    applications: int,
    drafts: int = 0,
    seed: int | None = None,
    now: datetime | None = None,
    days: int = 180,
    form: Form = REGISTRATION,
) -> DemoResult:
    """Add synthetic applications (sent over the last `days` days) and unfinished drafts."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    taken = {
        hashed
        for hashed in await session.scalars(
            select(Application.nik_hash).where(Application.status.in_(ACTIVE_STATUSES))
        )
        if hashed is not None
    }
    first = await session.scalar(select(func.coalesce(func.max(Application.id), 0)))
    filler = _Filler(
        DemoWorkers(rng, list(areas.village_by_code.values()), now.date()),
        cipher,
        form,
        rng,
        now,
        days,
        taken,
        int(first or 0),
    )
    done = 0
    total = applications + drafts
    while done < total:
        size = min(BATCH, total - done)
        # Plain executemany without RETURNING (SQLAlchemy's bulk RETURNING on SQLite fetches
        # in small pieces, ten times slower); the new ids are read back as those past the
        # highest one before. Demo data are loaded while nobody else writes.
        last_user = await session.scalar(select(func.coalesce(func.max(User.id), 0)))
        await session.execute(
            insert(User.metadata.tables["users"]),
            [{"language": "id", "created_at": now, "last_seen_at": now}] * size,
        )
        users = await session.scalars(select(User.id).where(User.id > last_user).order_by(User.id))
        rows = [
            filler.row(user_id, unfinished=done + offset >= applications)
            for offset, user_id in enumerate(users.all())
        ]
        last_app = await session.scalar(select(func.coalesce(func.max(Application.id), 0)))
        await session.execute(insert(Application.metadata.tables["applications"]), rows)
        made = await session.execute(
            select(Application.id, Application.user_id).where(Application.id > last_app)
        )
        started = {row["user_id"]: row["created_at"] for row in rows}
        consents = [
            {
                "user_id": user_id,
                "application_id": app_id,
                "given": True,
                "method": "chat",
                "text_version": CONSENT_VERSION,
                "language": "id",
                "created_at": started[user_id],
            }
            for app_id, user_id in made.all()
        ]
        await session.execute(insert(Consent.metadata.tables["consents"]), consents)
        done += size
    return DemoResult(applications, drafts)
