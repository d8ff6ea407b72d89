"""Indonesian phone numbers: typed or shared as a Telegram contact, stored as E.164 (+628…)."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from bot.core.errors import InvalidInput

REGION = "ID"
COUNTRY_CODE = 62
# A mobile number has 10–13 digits with the leading 0, i.e. 9–12 after the country code.
MOBILE_NATIONAL_LENGTHS = range(9, 13)

# Only what people put around digits; phonenumbers alone would also turn letters into digits
# ("0812-FLOWERS") and accept extensions, which nobody means here.
_ALLOWED = re.compile(r"\+?[0-9\-(). /]+", re.ASCII)
# Between two digits of a number: what `_ALLOWED` lets people put there (any whitespace counts,
# since `normalise_phone` turns every run of it into one space).
_GAP = r"[\s\-()./]*"


def _digits(text: str) -> str:
    return _GAP.join(text)


# Anything `normalise_phone` could read as a mobile number, found inside a longer text (to keep
# it out of logs): 0, 62, +62 or 0062, then 8 and the rest of a mobile number's digits.
_COUNTRY = _digits(str(COUNTRY_CODE))
PHONE_IN_TEXT = re.compile(
    rf"(?<![0-9])(?:\+{_GAP}{_COUNTRY}|0{_GAP}0{_GAP}{_COUNTRY}|{_COUNTRY}|0){_GAP}(?:0{_GAP})?8"
    rf"(?:{_GAP}[0-9]){{{MOBILE_NATIONAL_LENGTHS.start - 1},{MOBILE_NATIONAL_LENGTHS.stop - 2}}}"
    r"(?![0-9])"
)


def normalise_phone(text: str, *, mobile_only: bool = True) -> str:
    """Return a typed or shared Indonesian number as E.164, or raise InvalidInput."""
    cleaned = " ".join(text.split())
    if not cleaned:
        raise InvalidInput("phone.error.empty")
    if not _ALLOWED.fullmatch(cleaned):
        raise InvalidInput("phone.error.format")
    if cleaned.startswith("00"):
        # "0062 812…": the international prefix typed instead of "+".
        cleaned = "+" + cleaned[2:]
    elif cleaned.startswith("62"):
        # A Telegram contact or "62812…": the country code without "+". Numbers written the
        # local way start with 0, so this is never a local number, though phonenumbers would
        # read a short one as a North Sumatran landline (062x).
        cleaned = "+" + cleaned
    try:
        number = phonenumbers.parse(cleaned, REGION)
    except NumberParseException:
        raise InvalidInput("phone.error.format") from None
    if number.country_code != COUNTRY_CODE:
        raise InvalidInput("phone.error.foreign")
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput("phone.error.invalid")
    if mobile_only and not _is_mobile(number):
        raise InvalidInput("phone.error.not_mobile")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _is_mobile(number: phonenumbers.PhoneNumber) -> bool:
    """Tell whether a valid Indonesian number is a mobile one (08…, 10–13 digits)."""
    national = str(number.national_number)
    return (
        phonenumbers.number_type(number) == PhoneNumberType.MOBILE
        and national.startswith("8")
        and len(national) in MOBILE_NATIONAL_LENGTHS
    )


def mask_phone(e164: str) -> str:
    """Hide the middle digits of an E.164 number: +62812****7890."""
    shown_start, shown_end = 6, 4
    if len(e164) <= shown_start + shown_end:
        # Too short to leave anything hidden between the shown parts: show the country only.
        return e164[:3] + "*" * max(len(e164) - 3, 0)
    return e164[:shown_start] + "*" * (len(e164) - shown_start - shown_end) + e164[-shown_end:]


def format_phone_local(e164: str) -> str:
    """Write an E.164 number the way Indonesians do: 0812-3456-7890."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException as error:
        raise ValueError(f"not an E.164 number: {e164!r}") from error
    return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
