"""The registration questions, each declared once with everything about it.

A question says how a typed answer is read (a core parser), where its buttons come from,
what it checks and asks again, how it is shown in the summary and written to the export,
what its prompt is filled with, what it clears and when it applies. Adding a question is
one `Question(...)` here plus its texts (`q.<key>.prompt`, `.help`, `.label`) in locales/.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from bot.core import areas as area_data
from bot.core.contribution import (
    PAYMENT_PERIODS,
    Contribution,
    Program,
    Rates,
    check_income,
    contribution_for,
)
from bot.core.dates import age_on, check_age, format_date, parse_date
from bot.core.errors import InvalidInput
from bot.core.form import (
    Answers,
    Column,
    Confirmation,
    Contact,
    Display,
    Form,
    FormContext,
    Getter,
    Indexed,
    Kind,
    Lookup,
    Option,
    Question,
    raw_column,
)
from bot.core.money import format_rupiah, parse_rupiah
from bot.core.nik import Gender, NikInfo, mask_nik, nik_reader, parse_nik
from bot.core.phone import format_phone_local, normalise_phone
from bot.core.text import read_typed

# No official list exists (DOMAIN.md); these are the jobs the branch names most, "lainnya" asks.
OCCUPATIONS: tuple[str, ...] = (
    "petani",
    "nelayan",
    "pedagang",
    "ojek",
    "sopir",
    "buruh_bangunan",
    "juru_parkir",
    "pengrajin",
    "seniman",
    "pemangku",
    "prajuru_adat",
    "lainnya",
)
OTHER_OCCUPATION = "lainnya"
# Words people type for a job on the list (normalised, without accents).
OCCUPATION_SYNONYMS: dict[str, str] = {
    "tani": "petani",
    "bertani": "petani",
    "dagang": "pedagang",
    "berdagang": "pedagang",
    "jualan": "pedagang",
    "warung": "pedagang",
    "nelayan ikan": "nelayan",
    "ojol": "ojek",
    "tukang ojek": "ojek",
    "supir": "sopir",
    "driver": "sopir",
    "tukang": "buruh_bangunan",
    "tukang bangunan": "buruh_bangunan",
    "kuli": "buruh_bangunan",
    "parkir": "juru_parkir",
    "jukir": "juru_parkir",
    "perajin": "pengrajin",
    "seni": "seniman",
    "mangku": "pemangku",
    "bendesa": "prajuru_adat",
    "lain": "lainnya",
    "other": "lainnya",
}

RELATIONSHIPS: tuple[str, ...] = ("pasangan", "anak", "orang_tua", "saudara", "lainnya")
RELATIONSHIP_SYNONYMS: dict[str, str] = {
    "suami": "pasangan",
    "istri": "pasangan",
    "isteri": "pasangan",
    "husband": "pasangan",
    "wife": "pasangan",
    "putra": "anak",
    "putri": "anak",
    "ayah": "orang_tua",
    "ibu": "orang_tua",
    "bapak": "orang_tua",
    "kakak": "saudara",
    "adik": "saudara",
}
GENDER_SYNONYMS: dict[str, str] = {
    "l": "L",
    "laki": "L",
    "lakilaki": "L",
    "pria": "L",
    "male": "L",
    "man": "L",
    "p": "P",
    "wanita": "P",
    "perempuan": "P",
    "female": "P",
    "woman": "P",
}
# Mistyped domains people often send (queried once, never changed silently).
EMAIL_DOMAIN_TYPOS: dict[str, str] = {
    "gmial.com": "gmail.com",
    "gamil.com": "gmail.com",
    "gmai.com": "gmail.com",
    "gmail.co": "gmail.com",
    "gmail.con": "gmail.com",
    "gmail.cm": "gmail.com",
    "gmal.com": "gmail.com",
    "yaho.com": "yahoo.com",
    "yahoo.co": "yahoo.com",
    "yahoo.con": "yahoo.com",
    "yhoo.com": "yahoo.com",
    "hotmial.com": "hotmail.com",
    "hotmail.co": "hotmail.com",
    "outlok.com": "outlook.com",
}

_SPACES = re.compile(r"\s+")
_NAME_CHARS = re.compile(r"^[^\W\d_]+(?:[ '.,\-][^\W\d_]*)*$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
_FREE_TEXT = re.compile(r"^[\w .,'/()\-&]+$")


# ---------------------------------------------------------------------- parsers (pure)


def clean_spaces(text: str) -> str:
    """Typed text read safely (`read_typed`: NFKC, nothing hidden), trimmed, spaces collapsed."""
    return _SPACES.sub(" ", read_typed(text)).strip()


def parse_person_name(text: str) -> str:
    """A person's full name as on the KTP: letters, spaces and a few marks, 2 to 100 characters."""
    name = clean_spaces(text)
    if len(name) < 2:
        raise InvalidInput("name.error.short")
    if len(name) > 100:
        raise InvalidInput("name.error.long")
    if any(ch.isdigit() for ch in name):
        raise InvalidInput("name.error.digits")
    if not _NAME_CHARS.match(name) or sum(ch.isalpha() for ch in name) < 2:
        raise InvalidInput("name.error.chars")
    return name


def parse_place(text: str) -> str:
    """A banjar, dusun or similar place name typed by the person."""
    value = clean_spaces(text)
    if len(value) < 2 or not any(ch.isalpha() for ch in value):
        raise InvalidInput("place.error.short")
    if len(value) > 60:
        raise InvalidInput("place.error.long")
    if not _FREE_TEXT.match(value):
        raise InvalidInput("place.error.chars")
    return value


def parse_occupation_text(text: str) -> str:
    """A job described in the person's own words."""
    value = clean_spaces(text)
    if len(value) < 3 or not any(ch.isalpha() for ch in value):
        raise InvalidInput("occupation.error.short")
    if len(value) > 60:
        raise InvalidInput("occupation.error.long")
    if not _FREE_TEXT.match(value):
        raise InvalidInput("occupation.error.chars")
    return value


def parse_email(text: str) -> str:
    """An email address, lower-cased."""
    value = text.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value) or ".." in value:
        raise InvalidInput("email.error.invalid")
    return value


def display_name(name: str) -> str:
    """A name typed all in lower or upper case, in title case ("i made" -> "I Made")."""
    letters = [ch for ch in name if ch.isalpha()]
    if letters and (all(ch.islower() for ch in letters) or all(ch.isupper() for ch in letters)):
        return " ".join(part[:1].upper() + part[1:].lower() for part in name.split(" "))
    return name


# ---------------------------------------------------------------------- what the NIK says


def nik_info(ctx: FormContext) -> NikInfo | None:
    """What the NIK answered so far says (None without a readable NIK)."""
    nik = ctx.answers.get("nik")
    if not nik:
        return None
    # An export row asks twice (birth date and gender); kept with the NIK it was read from.
    known = ctx.memo.get("nik_info")
    if known is not None and known[0] == nik:
        found: NikInfo | None = known[1]
        return found
    try:
        info = parse_nik(str(nik), known_provinces=ctx.areas.province_codes, today=ctx.today)
    except InvalidInput:
        info = None
    ctx.memo["nik_info"] = (nik, info)
    return info


def _date_differs_from_nik(value: Any, ctx: FormContext) -> date | None:
    info = nik_info(ctx)
    if value is None or info is None or info.birth_date is None:
        return None
    chosen = date.fromisoformat(str(value))
    return info.birth_date if chosen != info.birth_date else None


def _gender_differs_from_nik(value: Any, ctx: FormContext) -> Gender | None:
    info = nik_info(ctx)
    if value is None or info is None:
        return None
    return info.gender if str(value) != info.gender.value else None


def differs_from_nik(answers: Answers, ctx: FormContext) -> bool:
    """Whether the birth date or gender answered contradicts the NIK (staff filter on it)."""
    view = _with_answers(ctx, answers)
    return (
        _date_differs_from_nik(answers.get("birth_date"), view) is not None
        or _gender_differs_from_nik(answers.get("gender"), view) is not None
    )


def _with_answers(ctx: FormContext, answers: Answers) -> FormContext:
    return ctx if ctx.answers is answers else dataclasses.replace(ctx, answers=answers)


# ---------------------------------------------------------------------- NIK


def _parse_nik(text: str, ctx: FormContext) -> str:
    parsed = parse_nik(text, known_provinces=ctx.areas.province_codes, today=ctx.today)
    born = parsed.birth_date
    if born is not None and born <= ctx.today and age_on(born, ctx.today) < ctx.min_age:
        # A child's data needs a parent's consent (UU PDP): none of it is kept, the NIK
        # included; they register at the branch together with a parent.
        raise InvalidInput("birth_date.error.too_young", min_age=ctx.min_age)
    return parsed.nik


def _show_nik(value: Any, ctx: FormContext) -> str:
    return str(value) if ctx.own_screen else mask_nik(str(value))


def _nik_cell(answers: Answers, ctx: FormContext) -> Any:
    # Staff key the full NIK into the national system; a leader's export shows it masked.
    value = answers.get("nik")
    return _show_nik(value, ctx) if value else ""


def _bind_nik(ctx: FormContext) -> Getter:
    full = ctx.own_screen

    def cell(answers: Answers) -> Any:
        value = answers.get("nik")
        if not value:
            return ""
        return str(value) if full else mask_nik(str(value))

    return cell


# ---------------------------------------------------------------------- names


def _parse_name(text: str, _ctx: FormContext) -> str:
    return parse_person_name(text)


def _show_name(value: Any, _ctx: FormContext) -> str:
    return display_name(str(value))


def _name_columns(key: str) -> tuple[Column, ...]:
    def cell(answers: Answers, _ctx: FormContext) -> Any:
        value = answers.get(key)
        return display_name(str(value)) if value else ""

    def bind(_ctx: FormContext) -> Getter:
        def fast(answers: Answers) -> Any:
            value = answers.get(key)
            # An ASCII name in mixed case is kept as typed: two string methods decide that
            # without looking at each letter (for ASCII, "cased" and "letter" are the same).
            if type(value) is str and value.isascii() and not (value.islower() or value.isupper()):
                return value
            return display_name(str(value)) if value else ""

        return fast

    return (Column(key, cell, bind),)


# ---------------------------------------------------------------------- birth date and gender


def _check_birth_date(value: Any, ctx: FormContext) -> None:
    birth = date.fromisoformat(str(value))
    if birth <= ctx.today and age_on(birth, ctx.today) >= ctx.max_age:
        # Nothing to type better: say once where a person can help instead.
        raise InvalidInput(
            "birth_date.error.over_age",
            max_age=ctx.max_age - 1,
            address=ctx.branch_address,
            call_centre=ctx.call_centre,
        )
    check_age(birth, ctx.today, ctx.min_age, ctx.max_age)


def _parse_birth_date(text: str, ctx: FormContext) -> str:
    return parse_date(text).isoformat()


def _nik_date_option(ctx: FormContext) -> Sequence[Option]:
    info = nik_info(ctx)
    if info is None or info.birth_date is None:
        return []
    try:
        check_age(info.birth_date, ctx.today, ctx.min_age, ctx.max_age)
    except InvalidInput:
        # The date was already refused (too old, too young): offering it again only loops.
        return []
    label = ctx.t("birth_date.use_nik", date=format_date(info.birth_date, ctx.t.language))
    return [Option("nik", label, info.birth_date.isoformat())]


def _confirm_birth_date(value: Any, ctx: FormContext) -> Confirmation | None:
    nik_date = _date_differs_from_nik(value, ctx)
    if nik_date is None:
        return None
    return Confirmation("birth_date.confirm_nik", nik_date=format_date(nik_date, ctx.t.language))


def _birth_date_cell(answers: Answers, _ctx: FormContext) -> Any:
    # A real date, so a spreadsheet sorts and filters it as one.
    value = answers.get("birth_date")
    return date.fromisoformat(str(value)) if value else None


def _bind_birth_date(_ctx: FormContext) -> Getter:
    parse = date.fromisoformat

    def cell(answers: Answers) -> Any:
        value = answers.get("birth_date")
        return parse(str(value)) if value else None

    return cell


def _show_birth_date(value: Any, ctx: FormContext) -> str:
    shown = format_date(date.fromisoformat(str(value)), ctx.t.language)
    if _date_differs_from_nik(value, ctx) is not None:
        shown += " " + ctx.t("summary.differs_from_nik")
    return shown


def _gender_label(value: str, ctx: FormContext) -> str:
    return ctx.t("gender.male" if value == Gender.MALE.value else "gender.female")


def _gender_options(ctx: FormContext) -> Sequence[Option]:
    return [Option(g.value, _gender_label(g.value, ctx), g.value) for g in Gender]


def _gender_params(ctx: FormContext) -> Mapping[str, Any]:
    info = nik_info(ctx)
    if info is None:
        return {"suggestion": ""}
    return {"suggestion": ctx.t("gender.nik_suggests", gender=_gender_label(info.gender, ctx))}


def _confirm_gender(value: Any, ctx: FormContext) -> Confirmation | None:
    nik_gender = _gender_differs_from_nik(value, ctx)
    if nik_gender is None:
        return None
    return Confirmation("gender.confirm_nik", gender=_gender_label(nik_gender, ctx))


def _show_gender(value: Any, ctx: FormContext) -> str:
    shown = _gender_label(str(value), ctx)
    if _gender_differs_from_nik(value, ctx) is not None:
        shown += " " + ctx.t("summary.differs_from_nik")
    return shown


def _mismatch_cell(answers: Answers, ctx: FormContext) -> Any:
    return ctx.t("export.yes") if differs_from_nik(answers, ctx) else ""


def _bind_mismatch(ctx: FormContext) -> Getter:
    yes = ctx.t("export.yes")
    read = nik_reader(ctx.areas.province_codes, ctx.today)
    parse = date.fromisoformat

    def cell(answers: Answers) -> Any:
        nik = answers.get("nik")
        info = read(nik) if nik else None
        if info is None:
            return ""
        born, gender = info
        chosen = answers.get("birth_date")
        if chosen is not None and born is not None:
            # The stored answer is an ISO date: equal text is an equal date.
            text = str(chosen)
            if text != born.isoformat() and parse(text) != born:
                return yes
        value = answers.get("gender")
        return yes if value is not None and str(value) != gender.value else ""

    return cell


# ---------------------------------------------------------------------- phones


def _parse_mobile(text: str, _ctx: FormContext) -> str:
    return normalise_phone(text, mobile_only=True)


def _parse_any_phone(text: str, _ctx: FormContext) -> str:
    return normalise_phone(text, mobile_only=False)


def _show_phone(value: Any, _ctx: FormContext) -> str:
    return format_phone_local(str(value))


def _confirm_heir_phone(value: Any, ctx: FormContext) -> Confirmation | None:
    if value is not None and value == ctx.answers.get("phone"):
        return Confirmation("heir_phone.confirm_own", phone=format_phone_local(str(value)))
    return None


# ---------------------------------------------------------------------- domicile


def _regency_options(ctx: FormContext) -> Sequence[Option]:
    options = [Option(r.code, r.name, r.code) for r in ctx.areas.regencies]
    hint = ctx.areas.village(ctx.village_hint or "")
    district = ctx.areas.district(hint.district_code) if hint is not None else None
    if hint is not None and district is not None:
        label = ctx.t("village.from_link", village=hint.name)
        then = (("district", district.code), ("village", hint.code))
        options.insert(0, Option("hint", label, district.regency_code, then))
    return options


def _district_options(ctx: FormContext) -> Sequence[Option]:
    regency = str(ctx.answers.get("regency"))
    return [Option(d.code, d.name, d.code) for d in ctx.areas.districts_of(regency)]


def _district_params(ctx: FormContext) -> Mapping[str, Any]:
    regency = ctx.areas.regency(str(ctx.answers.get("regency")))
    return {"regency": regency.name if regency else ""}


def _village_options(ctx: FormContext) -> Sequence[Option]:
    district = str(ctx.answers.get("district"))
    return [Option(v.code, v.name, v.code) for v in ctx.areas.villages_of(district)]


def _find_village(code: str, ctx: FormContext) -> Option | None:
    # Any village of the branch: the list is paged and "did you mean" offers other districts.
    village = ctx.areas.village(code)
    return Option(village.code, village.name, village.code) if village else None


def _village_implies(value: Any, ctx: FormContext) -> Sequence[tuple[str, Any]]:
    village = ctx.areas.village(str(value))
    district = ctx.areas.district(village.district_code) if village else None
    if village is None or district is None:
        return ()
    return (("regency", district.regency_code), ("district", district.code))


def _clear_winner(matches: list[tuple[str, float]]) -> bool:
    """An exact name, or one small typo away with no close rival: take it without asking."""
    best = matches[0][1]
    if best >= 1.0:
        return True
    runner_up = matches[1][1] if len(matches) > 1 else 0.0
    return best >= 0.85 and best - runner_up >= 0.1


class DidYouMean(Exception):
    """A typed answer that could mean several options: the person picks one."""

    def __init__(self, key: str, options: Sequence[Option]) -> None:
        super().__init__(key)
        self.key = key
        self.options = tuple(options)


def _parse_village(text: str, ctx: FormContext) -> str:
    areas = ctx.areas
    district = str(ctx.answers.get("district"))
    pool = areas.villages_of(district)
    matches = area_data.match_names(text, [(v.code, v.name) for v in pool], limit=5)
    if matches and _clear_winner(matches):
        return matches[0][0]
    if not matches:
        regency = str(ctx.answers.get("regency"))
        others = [v for v in areas.villages_of_regency(regency) if v.district_code != district]
        matches = area_data.match_names(text, [(v.code, v.name) for v in others], limit=5)
    if not matches:
        found = areas.district(district)
        raise InvalidInput("village.error.not_found", district=found.name if found else "")
    options = []
    for code, _score in matches:
        village = areas.village(code)
        if village is None:
            continue
        label = village.name
        if village.district_code != district:
            other = areas.district(village.district_code)
            label = ctx.t(
                "village.in_district", village=village.name, district=other.name if other else ""
            )
        options.append(Option(code, label, code))
    raise DidYouMean("village.did_you_mean", options)


def _describe_village(value: Any, ctx: FormContext) -> str:
    village = ctx.areas.village(str(value))
    district = ctx.areas.district(village.district_code) if village else None
    regency = ctx.areas.regency(district.regency_code) if district else None
    if village is None or district is None or regency is None:
        return str(value)
    return ctx.t(
        f"village.describe.{village.kind}",
        village=village.name,
        district=district.name,
        regency=regency.name,
    )


def _place_params(ctx: FormContext) -> Mapping[str, Any]:
    district = ctx.areas.district(str(ctx.answers.get("district")))
    village = ctx.areas.village(str(ctx.answers.get("village")))
    kind = village.kind if village else "desa"
    pool = ctx.areas.villages_of(district.code) if district else ()
    # An example from the person's own kecamatan reads as meant for them.
    example = pool[len(pool) // 2].name if pool else ""
    return {
        "district": district.name if district else "",
        "village": village.name if village else "",
        "example": example,
        "unit": ctx.t("unit.lingkungan" if kind == "kelurahan" else "unit.banjar"),
    }


_LEVELS = ("regency", "district", "village")


def _areas_of(code: str, ctx: FormContext) -> dict[str, tuple[str, str]]:
    """Code and name of a village, its kecamatan and its regency ("" where unknown)."""
    found = {level: ("", "") for level in _LEVELS}
    village = ctx.areas.village(code)
    if village is None:
        return found
    found["village"] = (village.code, village.name)
    district = ctx.areas.district(village.district_code)
    if district is None:
        return found
    found["district"] = (district.code, district.name)
    regency = ctx.areas.regency(district.regency_code)
    if regency is not None:
        found["regency"] = (regency.code, regency.name)
    return found


def _area_columns(level: str) -> tuple[Column, ...]:
    """Code and name of the regency, district or village of the answered village."""

    def area(answers: Answers, ctx: FormContext) -> tuple[str, str]:
        # Looked up once per village for a whole export, not six times per row.
        key = ("areas", str(answers.get("village")))
        known = ctx.cache.get(key)
        if known is None:
            known = ctx.cache[key] = _areas_of(key[1], ctx)
        found: tuple[str, str] = known[level]
        return found

    def bind(part: int) -> Callable[[FormContext], Getter]:
        def bound(ctx: FormContext) -> Getter:
            # One table per level and part, shared by the export's rows: village -> cell.
            known: dict[str, str] = ctx.cache.setdefault(("area cells", level, part), {})

            def cell(answers: Answers) -> Any:
                village = str(answers.get("village"))
                found = known.get(village)
                if found is None:
                    found = known[village] = area(answers, ctx)[part]
                return found

            return cell

        return bound

    return (
        Column(f"{level}_code", lambda a, c: area(a, c)[0], bind(0)),
        Column(f"{level}_name", lambda a, c: area(a, c)[1], bind(1)),
    )


def _parse_place(text: str, _ctx: FormContext) -> str:
    return parse_place(text)


def _answered_village(answers: Answers) -> str | None:
    village = answers.get("village")
    return str(village) if village else None


def _desa_adat_options(ctx: FormContext) -> Sequence[Option]:
    return [
        Option(str(number), name, {"id": number, "name": name}) for number, name in ctx.desa_adat
    ]


def _parse_desa_adat(text: str, ctx: FormContext) -> dict[str, Any]:
    candidates = [(str(number), name) for number, name in ctx.desa_adat]
    matches = area_data.match_names(text, candidates, limit=1)
    if matches and matches[0][1] >= 0.8:
        number = int(matches[0][0])
        return {"id": number, "name": dict(ctx.desa_adat)[number]}
    return {"id": None, "name": parse_place(text)}


def _desa_adat_params(ctx: FormContext) -> Mapping[str, Any]:
    params = dict(_place_params(ctx))
    params["known"] = ctx.t(
        "desa_adat.known" if ctx.desa_adat else "desa_adat.none_known", village=params["village"]
    )
    return params


def _show_desa_adat(value: Any, _ctx: FormContext) -> str:
    return str(value.get("name") or "-") if isinstance(value, dict) else "-"


def _desa_adat_cell(answers: Answers, _ctx: FormContext) -> Any:
    value = answers.get("desa_adat")
    return value.get("name", "") if isinstance(value, dict) else ""


def _bind_desa_adat(_ctx: FormContext) -> Getter:
    return lambda answers: _desa_adat_cell(answers, _ctx)


def _desa_adat_id(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else None


# ---------------------------------------------------------------------- work and money


def _occupation_options(ctx: FormContext) -> Sequence[Option]:
    return [Option(code, ctx.t(f"occupation.{code}"), code) for code in OCCUPATIONS]


def _show_occupation(value: Any, ctx: FormContext) -> str:
    return ctx.t(f"occupation.{value}")


def _label_cell(key: str, show: Display) -> Column:
    """A column holding an answer as the summary words it (a job's name, not its code)."""

    def cell(answers: Answers, ctx: FormContext) -> Any:
        value = answers.get(key)
        return show(value, ctx) if value else ""

    def bind(ctx: FormContext) -> Getter:
        # The words of each code, translated once per export (the codes are a short list).
        words: dict[str, Any] = {}

        def fast(answers: Answers) -> Any:
            value = answers.get(key)
            if type(value) is not str or len(words) > 1000:
                return show(value, ctx) if value else ""
            found = words.get(value)
            if found is None:
                found = words[value] = show(value, ctx) if value else ""
            return found

        return fast

    return Column(key, cell, bind)


def _relationship_options(ctx: FormContext) -> Sequence[Option]:
    return [Option(code, ctx.t(f"relationship.{code}"), code) for code in RELATIONSHIPS]


def _show_relationship(value: Any, ctx: FormContext) -> str:
    return ctx.t(f"relationship.{value}")


def _has_heir(answers: Answers) -> bool:
    return bool(answers.get("heir_name"))


def _other_occupation(answers: Answers) -> bool:
    return answers.get("occupation") == OTHER_OCCUPATION


def _parse_occupation(text: str, _ctx: FormContext) -> str:
    return parse_occupation_text(text)


def _income_options(ctx: FormContext) -> Sequence[Option]:
    return [Option(str(amount), format_rupiah(amount), amount) for amount in ctx.income_options]


def _parse_income(text: str, ctx: FormContext) -> int:
    income = parse_rupiah(text)
    check_income(income, ctx.rates)
    return income


def _show_rupiah(value: Any, _ctx: FormContext) -> str:
    return format_rupiah(int(value))


def package(income: int, rates: Rates, *, with_jht: bool, months: int = 1) -> Contribution:
    """The contribution of JKK + JKM, with or without JHT, for an income."""
    programs = [Program.JKK, Program.JKM] + ([Program.JHT] if with_jht else [])
    return contribution_for(income, programs, months, rates)


def minimum_monthly(rates: Rates) -> int:
    """The cheapest monthly contribution (JKK + JKM at the lowest income): Rp16.800."""
    return package(rates.min_income, rates, with_jht=False).monthly


def contribution_of(answers: Answers, rates: Rates, months: int | None = None) -> Contribution:
    """The contribution an application's answers add up to (the one used everywhere)."""
    income = int(answers.get("income") or rates.min_income)
    programs = [Program(p) for p in answers.get("programs") or [Program.JKK, Program.JKM]]
    period = months if months is not None else int(answers.get("period") or 1)
    return contribution_for(income, programs, period, rates)


def change_period(answers: dict[str, Any], months: int) -> None:
    """Set the payment period of sent answers (a worker may change it after registering)."""
    if months not in PAYMENT_PERIODS:
        raise ValueError(f"payment period must be one of {PAYMENT_PERIODS}, got {months}")
    answers["period"] = months


def _income_of(ctx: FormContext) -> int:
    return int(ctx.answers.get("income") or ctx.rates.min_income)


def _programs_params(ctx: FormContext) -> Mapping[str, Any]:
    income = _income_of(ctx)
    basic = package(income, ctx.rates, with_jht=False)
    full = package(income, ctx.rates, with_jht=True)
    return {
        "income": format_rupiah(income),
        "jkk": format_rupiah(basic.jkk),
        "jkm": format_rupiah(basic.jkm),
        "jht": format_rupiah(full.jht),
        "basic": format_rupiah(basic.monthly),
        "full": format_rupiah(full.monthly),
    }


def _programs_options(ctx: FormContext) -> Sequence[Option]:
    income = _income_of(ctx)
    basic = package(income, ctx.rates, with_jht=False)
    full = package(income, ctx.rates, with_jht=True)
    return [
        Option(
            "basic",
            ctx.t("programs.basic", amount=format_rupiah(basic.monthly)),
            [Program.JKK.value, Program.JKM.value],
        ),
        Option(
            "jht",
            ctx.t("programs.full", amount=format_rupiah(full.monthly)),
            [Program.JKK.value, Program.JKM.value, Program.JHT.value],
        ),
    ]


def _show_programs(value: Any, _ctx: FormContext) -> str:
    return " + ".join(str(p).upper() for p in value)


def _period_params(ctx: FormContext) -> Mapping[str, Any]:
    return {"monthly": format_rupiah(contribution_of(ctx.answers, ctx.rates, 1).monthly)}


def _period_options(ctx: FormContext) -> Sequence[Option]:
    monthly = contribution_of(ctx.answers, ctx.rates, 1).monthly
    return [
        Option(
            str(months),
            ctx.t(f"period.option.{months}", amount=format_rupiah(monthly * months)),
            months,
        )
        for months in PAYMENT_PERIODS
    ]


def _show_period(value: Any, ctx: FormContext) -> str:
    return ctx.t(f"period.label.{int(value)}")


# ---------------------------------------------------------------------- email


def _parse_email(text: str, _ctx: FormContext) -> str:
    return parse_email(text)


def _confirm_email(value: Any, _ctx: FormContext) -> Confirmation | None:
    if value is None:
        return None
    local, _, domain = str(value).rpartition("@")
    meant = EMAIL_DOMAIN_TYPOS.get(domain)
    return Confirmation("email.confirm_typo", meant=f"{local}@{meant}") if meant else None


# ---------------------------------------------------------------------- contribution columns


def _row_contribution(answers: Answers, ctx: FormContext) -> Contribution:
    """The contribution of one export row, computed once for its five columns."""
    if "contribution" not in ctx.memo:
        ctx.memo["contribution"] = contribution_of(answers, ctx.rates)
    found: Contribution = ctx.memo["contribution"]
    return found


def _bind_contribution(attribute: str) -> Callable[[FormContext], Getter]:
    def bound(ctx: FormContext) -> Getter:
        # The five columns of a row share its contribution through the row's answers, and
        # rows alike (same income, programs and period) share one computation.
        shared: dict[Any, Any] = ctx.cache.setdefault("contribution cells", {"row": None})
        rates = ctx.rates

        def cell(answers: Answers) -> Any:
            if shared["row"] is not answers:
                programs = answers.get("programs")
                key = (
                    answers.get("income"),
                    tuple(programs) if type(programs) is list else programs,
                    answers.get("period"),
                )
                found = shared.get(key)
                if found is None:
                    found = contribution_of(answers, rates)
                    if len(shared) < 10_000:
                        shared[key] = found
                shared["row"], shared["found"] = answers, found
            return getattr(shared["found"], attribute)

        return cell

    return bound


def _contribution_columns() -> tuple[Column, ...]:
    def part(name: str, attribute: str) -> Column:
        return Column(
            name,
            lambda a, c: getattr(_row_contribution(a, c), attribute),
            _bind_contribution(attribute),
        )

    return (
        part("jkk", "jkk"),
        part("jkm", "jkm"),
        part("jht", "jht"),
        part("monthly_contribution", "monthly"),
        part("per_payment", "per_payment"),
    )


QUESTIONS: tuple[Question, ...] = (
    Question(
        "nik",
        1,
        Kind.TEXT,
        parse=_parse_nik,
        display=_show_nik,
        clears=("birth_date", "gender"),
        columns=(Column("nik", _nik_cell, _bind_nik),),
        indexed=Indexed("nik_hash", hashed=True, unique=True),
    ),
    Question(
        "full_name",
        2,
        Kind.TEXT,
        parse=_parse_name,
        display=_show_name,
        columns=_name_columns("full_name"),
    ),
    Question(
        "birth_date",
        3,
        Kind.TEXT,
        parse=_parse_birth_date,
        options=_nik_date_option,
        check=_check_birth_date,
        confirm=_confirm_birth_date,
        display=_show_birth_date,
        per_row=1,
        columns=(Column("birth_date", _birth_date_cell, _bind_birth_date),),
    ),
    Question(
        "gender",
        4,
        Kind.CHOICE,
        options=_gender_options,
        confirm=_confirm_gender,
        display=_show_gender,
        params=_gender_params,
        synonyms=GENDER_SYNONYMS,
        columns=(
            raw_column("gender"),
            Column("differs_from_nik", _mismatch_cell, _bind_mismatch),
        ),
    ),
    Question(
        "phone",
        5,
        Kind.PHONE,
        parse=_parse_mobile,
        display=_show_phone,
        contact=Contact.OWN,
        # A resident registered by a leader may have no phone of their own.
        skippable_when_assisted=True,
    ),
    Question(
        "regency",
        6,
        Kind.CHOICE,
        options=_regency_options,
        clears=("district", "village", "desa_adat"),
        in_summary=False,
        columns=_area_columns("regency"),
    ),
    Question(
        "district",
        6,
        Kind.CHOICE,
        options=_district_options,
        params=_district_params,
        clears=("village", "desa_adat"),
        in_summary=False,
        columns=_area_columns("district"),
    ),
    Question(
        "village",
        6,
        Kind.VILLAGE,
        parse=_parse_village,
        options=_village_options,
        find=_find_village,
        implies=_village_implies,
        display=_describe_village,
        params=_place_params,
        clears=("desa_adat",),
        page_size=8,
        columns=_area_columns("village"),
        indexed=Indexed("village_code"),
    ),
    Question(
        "banjar",
        6,
        Kind.TEXT,
        parse=_parse_place,
        params=_place_params,
        skippable=True,
    ),
    Question(
        "desa_adat",
        6,
        Kind.CHOICE,
        parse=_parse_desa_adat,
        options=_desa_adat_options,
        display=_show_desa_adat,
        params=_desa_adat_params,
        skippable=True,
        lookups=frozenset({Lookup.DESA_ADAT}),
        near=_answered_village,
        per_row=1,
        columns=(Column("desa_adat", _desa_adat_cell, _bind_desa_adat),),
        indexed=Indexed("desa_adat_id", value=_desa_adat_id),
    ),
    Question(
        "occupation",
        7,
        Kind.CHOICE,
        options=_occupation_options,
        display=_show_occupation,
        clears=("occupation_other",),
        synonyms=OCCUPATION_SYNONYMS,
        columns=(_label_cell("occupation", _show_occupation),),
        indexed=Indexed("occupation"),
    ),
    Question(
        "occupation_other",
        7,
        Kind.TEXT,
        parse=_parse_occupation,
        applies=_other_occupation,
    ),
    Question(
        "income",
        8,
        Kind.TEXT,
        parse=_parse_income,
        options=_income_options,
        display=_show_rupiah,
    ),
    Question(
        "programs",
        9,
        Kind.CHOICE,
        options=_programs_options,
        display=_show_programs,
        params=_programs_params,
        per_row=1,
        synonyms={"jht": "jht", "jkk jkm": "basic", "dasar": "basic"},
    ),
    Question(
        "period",
        10,
        Kind.CHOICE,
        options=_period_options,
        display=_show_period,
        params=_period_params,
        per_row=1,
        synonyms={"bulanan": "1", "tahunan": "12", "setahun": "12"},
    ),
    Question(
        "heir_name",
        11,
        Kind.TEXT,
        parse=_parse_name,
        display=_show_name,
        skippable=True,
        columns=_name_columns("heir_name"),
    ),
    Question(
        "heir_relationship",
        11,
        Kind.CHOICE,
        options=_relationship_options,
        display=_show_relationship,
        applies=_has_heir,
        synonyms=RELATIONSHIP_SYNONYMS,
        columns=(_label_cell("heir_relationship", _show_relationship),),
    ),
    Question(
        "heir_phone",
        11,
        Kind.PHONE,
        parse=_parse_any_phone,
        confirm=_confirm_heir_phone,
        display=_show_phone,
        skippable=True,
        applies=_has_heir,
        contact=Contact.ANYONE,
    ),
    Question(
        "email",
        12,
        Kind.TEXT,
        parse=_parse_email,
        confirm=_confirm_email,
        skippable=True,
    ),
)

# The registration form: what the conversation asks and the export writes.
# The version of the consent text (`consent.text` in the locales). Change it whenever that
# text changes: people with an unfinished registration are asked again before going on.
CONSENT_VERSION = "2026-11-v1"

REGISTRATION = Form(
    questions=QUESTIONS,
    leading_columns=("reference", "status", "submitted_at"),
    trailing_columns=_contribution_columns(),
)
