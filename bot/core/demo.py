"""Invented workers answering the registration form, for demos, tests and benchmarks.

Pure Python. This module plays the worker, so, like a person typing, it knows the questions
by their keys; every answer is what the form itself would store (see `bot/core/questions.py`).
The people are plausible but invented from a seeded generator: every NIK is structurally
valid (province, regency and kecamatan of the chosen village, a birth date with the +40 for
women, a serial), every phone a plausible Indonesian mobile number, and the names are
Balinese birth-order names with common given names. No real person's data is used.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from bot.core.form import Form, VillageLike
from bot.core.questions import OCCUPATIONS, OTHER_OCCUPATION, RELATIONSHIPS

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
# Prefixes of Indonesian mobile operators (Telkomsel, Indosat, XL).
_MOBILE_PREFIXES = ("811", "812", "813", "821", "822", "852", "853", "857", "858", "877", "878")
_INCOMES = (1_000_000, 1_500_000, 2_000_000, 2_500_000, 3_000_000, 4_000_000, 5_000_000)
_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def demo_reference(number: int) -> str:
    """A reference such as BC-7KQ2M9 for application number `number`; never the same twice.

    Multiplying by an odd number is a bijection modulo 32**6, so numbers that never repeat
    give references that never repeat, yet look random.
    """
    scrambled = number * 0x9E3779B1 % 32**6
    letters = []
    for _ in range(6):
        scrambled, digit = divmod(scrambled, 32)
        letters.append(_REFERENCE_ALPHABET[digit])
    return "BC-" + "".join(letters)


class DemoWorkers:
    """Draws invented workers' complete answers; NIKs never repeat within one generator."""

    def __init__(self, rng: random.Random, villages: Sequence[VillageLike], today: date) -> None:
        self.rng = rng
        self.today = today
        self.villages = sorted(villages, key=lambda v: v.code)
        self.niks: set[str] = set()

    def nik(self, district_code: str, birth: date, female: bool) -> str:
        """A valid NIK first issued in the kecamatan, for that birth date and gender."""
        region = district_code.replace(".", "")
        day = birth.day + (40 if female else 0)
        while True:
            serial = self.rng.randint(1, 9999)
            nik = f"{region}{day:02d}{birth.month:02d}{birth.year % 100:02d}{serial:04d}"
            if nik not in self.niks:
                self.niks.add(nik)
                return nik

    def phone(self) -> str:
        """A mobile number in E.164, as the form stores it."""
        rest = self.rng.randint(0, 10**8 - 1)
        return f"+62{self.rng.choice(_MOBILE_PREFIXES)}{rest:08d}"

    def name(self, female: bool) -> str:
        """A Balinese name: I/Ni, a birth-order name, a given name."""
        given = self.rng.choice(_WOMEN if female else _MEN)
        return f"{'Ni' if female else 'I'} {self.rng.choice(_FIRST_BY_ORDER)} {given}"

    def answers(self) -> dict[str, Any]:
        """One worker's complete answers."""
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

    def unfinished(self, form: Form) -> dict[str, Any]:
        """The answers of someone who stopped part-way: the first few questions only."""
        answers = self.answers()
        asked = [q.key for q in form.applicable(answers) if q.key in answers]
        kept = asked[: self.rng.randint(2, max(2, len(asked) // 2))]
        return {key: answers[key] for key in kept}
