"""Synthetic applications for demos, tests and benchmarks; never real people's data.

Every NIK is structurally valid (province, regency and kecamatan of the chosen village, a birth
date with the +40 for women, a serial), every phone a plausible Indonesian mobile number, and
the names are Balinese birth-order names with common given names: plausible, but invented
from a seeded generator. Rows go in with bulk inserts, a few thousand per statement, so
100 000 applications take well under a minute.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.questions import OCCUPATIONS, OTHER_OCCUPATION, RELATIONSHIPS
from bot.core.states import ApplicationStatus
from bot.db.models import Application, Consent, User
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
_FIRST_BY_ORDER = ("Wayan", "Putu", "Gede", "Made", "Kadek", "Nengah", "Nyoman", "Komang", "Ketut")
_MEN = (
    "Sukadana", "Suarjana", "Arsana", "Budiarta", "Darmawan", "Gunawan", "Mertayasa", "Parwata",
    "Sudarma", "Suwirya", "Wiradana", "Yasa", "Adnyana", "Astawa", "Sutama", "Widiana",
)  # fmt: skip
_WOMEN = (
    "Ariani", "Sukerti", "Suartini", "Wartini", "Sriasih", "Mariani", "Kusumawati", "Purnami",
    "Sulastri", "Widiastuti", "Ayu Lestari", "Darmini", "Rusmini", "Astiti", "Suciani",
)  # fmt: skip
_BANJAR = ("Kaja", "Kelod", "Kangin", "Kauh", "Tengah", "Anyar", "Delod Peken", "Dangin Pangkung")
_OTHER_JOBS = ("Tukang canang", "Penjahit", "Buruh tani", "Tukang banten", "Penjual lawar")
_REJECTIONS = ("NIK tidak ditemukan di Dukcapil", "Data ganda", "Usia di atas batas")
_MOBILE_PREFIXES = ("811", "812", "813", "821", "822", "852", "853", "857", "858", "877", "878")
_INCOMES = (1_000_000, 1_500_000, 2_000_000, 2_500_000, 3_000_000, 4_000_000, 5_000_000)
_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
BATCH = 2000
CONSENT_VERSION = "2026-11-v1"


@dataclass
class DemoResult:
    """How many rows the demo added."""

    applications: int
    drafts: int


class _People:
    """Draws invented people; NIKs and references never repeat within one run."""

    def __init__(
        self,
        rng: random.Random,
        areas: AreaDirectory,
        today: date,
        cipher: Cipher,
        taken: set[str],
        first: int,
    ) -> None:
        self.rng = rng
        self.today = today
        self.cipher = cipher
        self.villages = sorted(areas.village_by_code.values(), key=lambda v: v.code)
        # Keyed hashes of the NIKs already in the database and drawn so far.
        self.hashes = taken
        self.number = first

    def nik(self, district_code: str, birth: date, female: bool) -> str:
        region = district_code.replace(".", "")
        day = birth.day + (40 if female else 0)
        while True:
            serial = self.rng.randint(1, 9999)
            nik = f"{region}{day:02d}{birth.month:02d}{birth.year % 100:02d}{serial:04d}"
            hashed = self.cipher.nik_hash(nik)
            if hashed not in self.hashes:
                self.hashes.add(hashed)
                return nik

    def phone(self) -> str:
        rest = self.rng.randint(0, 10**8 - 1)
        return f"+62{self.rng.choice(_MOBILE_PREFIXES)}{rest:08d}"

    def name(self, female: bool) -> str:
        given = self.rng.choice(_WOMEN if female else _MEN)
        return f"{'Ni' if female else 'I'} {self.rng.choice(_FIRST_BY_ORDER)} {given}"

    def reference(self) -> str:
        # Multiplying by an odd number is a bijection modulo 32**6: application numbers that
        # never repeat give references that never repeat, yet look random.
        self.number += 1
        scrambled = self.number * 0x9E3779B1 % 32**6
        letters = []
        for _ in range(6):
            scrambled, digit = divmod(scrambled, 32)
            letters.append(_REFERENCE_ALPHABET[digit])
        return "BC-" + "".join(letters)

    def answers(self) -> dict[str, Any]:
        rng = self.rng
        village = rng.choice(self.villages)
        female = rng.random() < 0.45
        birth = self.today - timedelta(days=rng.randint(19 * 365, 60 * 365))
        occupation = rng.choice(OCCUPATIONS)
        answers: dict[str, Any] = {
            "nik": self.nik(village.district_code, birth, female),
            "full_name": self.name(female),
            "birth_date": birth.isoformat(),
            "gender": "P" if female else "L",
            "phone": self.phone(),
            "regency": village.district_code.rsplit(".", 1)[0],
            "district": village.district_code,
            "village": village.code,
            "occupation": occupation,
            "income": rng.choice(_INCOMES),
            "programs": ["jkk", "jkm", "jht"] if rng.random() < 0.3 else ["jkk", "jkm"],
            "period": rng.choice((1, 1, 1, 3, 6, 12)),
        }
        if rng.random() < 0.8:
            unit = "Lingkungan" if village.kind == "kelurahan" else "Banjar"
            answers["banjar"] = f"{unit} {rng.choice(_BANJAR)}"
        if rng.random() < 0.5:
            answers["desa_adat"] = {"id": None, "name": f"Desa Adat {village.name}"}
        if occupation == OTHER_OCCUPATION:
            answers["occupation_other"] = rng.choice(_OTHER_JOBS)
        if rng.random() < 0.6:
            answers["heir_name"] = self.name(not female)
            answers["heir_relationship"] = rng.choice(RELATIONSHIPS)
            if rng.random() < 0.7:
                answers["heir_phone"] = self.phone()
        if rng.random() < 0.3:
            local = answers["full_name"].split(" ", 1)[1].replace(" ", ".").lower()
            answers["email"] = f"{local}{rng.randint(1, 999)}@gmail.com"
        return answers


def _status(rng: random.Random) -> ApplicationStatus:
    statuses = [status for status, _weight in STATUS_MIX]
    weights = [weight for _status, weight in STATUS_MIX]
    return rng.choices(statuses, weights)[0]


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
) -> DemoResult:
    """Add synthetic applications (sent over the last `days` days) and unfinished drafts."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    taken = {
        hashed
        for hashed in await session.scalars(select(Application.nik_hash))
        if hashed is not None
    }
    first = await session.scalar(select(func.coalesce(func.max(Application.id), 0)))
    people = _People(rng, areas, now.date(), cipher, taken, int(first or 0))
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
        rows = []
        for offset, user_id in enumerate(users.all()):
            is_draft = done + offset >= applications
            rows.append(_row(people, cipher, rng, now, days, user_id, is_draft))
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


def _row(
    people: _People,
    cipher: Cipher,
    rng: random.Random,
    now: datetime,
    days: int,
    user_id: int,
    is_draft: bool,
) -> dict[str, Any]:
    answers = people.answers()
    started = now - timedelta(seconds=rng.randint(3600, days * 86400))
    row: dict[str, Any] = {
        "user_id": user_id,
        "language": "id",
        "created_at": started,
        "updated_at": started,
        "village_code": answers["village"],
        "occupation": answers["occupation"],
        "reference": None,
        "submitted_at": None,
        "nik_hash": cipher.nik_hash(answers["nik"]),
        "status_changed_at": None,
        "kpj_number": None,
        "covered_from": None,
        "status_note": None,
        "step": None,
    }
    if is_draft:
        # An unfinished form stops somewhere after the village.
        keep = ("nik", "full_name", "birth_date", "gender", "phone", "regency", "district")
        answers = {k: answers[k] for k in keep[: rng.randint(2, len(keep))]}
        row.update(
            status=ApplicationStatus.DRAFT,
            village_code=None,
            occupation=None,
            step="phone",
            nik_hash=cipher.nik_hash(answers["nik"]),
        )
        row["answers_enc"] = cipher.encrypt(answers)
        return row
    status = _status(rng)
    submitted = started + timedelta(minutes=rng.randint(3, 40))
    row.update(
        status=status,
        reference=people.reference(),
        submitted_at=submitted,
        updated_at=submitted,
        answers_enc=cipher.encrypt(answers),
    )
    if status is not ApplicationStatus.SUBMITTED:
        changed = min(submitted + timedelta(days=rng.randint(1, 20)), now)
        row.update(status_changed_at=changed, updated_at=changed)
        if status is ApplicationStatus.REGISTERED:
            row["kpj_number"] = f"{rng.randint(10**10, 10**11 - 1)}"
            row["covered_from"] = changed.date()
        elif status is ApplicationStatus.REJECTED:
            row["status_note"] = rng.choice(_REJECTIONS)
    return row
