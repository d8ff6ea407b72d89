"""The status workflow: every allowed and refused change, what each needs, the payment calendar."""

from __future__ import annotations

from datetime import date

import pytest

from bot.core.errors import InvalidInput
from bot.core.states import APPLICATION_TRANSITIONS, ApplicationStatus
from bot.core.workflow import (
    MAX_NOTE,
    Refused,
    add_months,
    next_due,
    normalise_kpj,
    plan_change,
    reminder_due,
    steps_to,
)

S = ApplicationStatus
TODAY = date(2026, 12, 4)
ALLOWED = {
    (S.SUBMITTED, S.VERIFIED),
    (S.SUBMITTED, S.REJECTED),
    (S.SUBMITTED, S.CANCELLED),
    (S.VERIFIED, S.REGISTERED),
    (S.VERIFIED, S.REJECTED),
    (S.VERIFIED, S.CANCELLED),
}
NEEDS = {
    S.REGISTERED: {"kpj": "12345678901", "covered_from": TODAY},
    S.REJECTED: {"note": "NIK tidak cocok"},
}


def test_the_transitions_table_is_the_documented_workflow() -> None:
    table = {(a, b) for a, targets in APPLICATION_TRANSITIONS.items() for b in targets}
    assert table == ALLOWED


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_every_change_is_allowed_or_refused_as_the_graph_says(current: S, target: S) -> None:
    """Allowed changes go through; every other one is refused naming both statuses."""
    shortcut = (current, target) == (S.SUBMITTED, S.REGISTERED)
    if (current, target) in ALLOWED or shortcut:
        change = plan_change(current, target, today=TODAY, **NEEDS.get(target, {}))  # type: ignore[arg-type]
        assert change.target is target
    else:
        with pytest.raises(Refused) as refused:
            plan_change(current, target, today=TODAY, **NEEDS.get(target, {}))  # type: ignore[arg-type]
        assert (refused.value.current, refused.value.target) == (current, target)
        assert refused.value.key == "workflow.error.transition"


def test_registering_a_submitted_application_passes_through_verified() -> None:
    assert steps_to("submitted", S.REGISTERED) == (S.VERIFIED, S.REGISTERED)
    assert steps_to("verified", S.REGISTERED) == (S.REGISTERED,)
    with pytest.raises(Refused):
        steps_to("draft", S.VERIFIED)
    with pytest.raises(Refused):
        steps_to("nonsense", S.VERIFIED)


def test_registration_needs_a_valid_kpj_number_and_a_cover_start() -> None:
    change = plan_change(
        "verified", S.REGISTERED, today=TODAY, kpj="123 4567-8901", covered_from=TODAY
    )
    assert change.kpj == "12345678901" and change.covered_from == TODAY
    for kpj in (None, "", "1234567890", "123456789012", "1234567890A"):
        with pytest.raises(InvalidInput) as bad:
            plan_change("verified", S.REGISTERED, today=TODAY, kpj=kpj, covered_from=TODAY)
        assert bad.value.key == "workflow.error.kpj" and bad.value.params == {"digits": 11}
    with pytest.raises(InvalidInput, match=r"^workflow\.error\.cover_date$"):
        plan_change("verified", S.REGISTERED, today=TODAY, kpj="12345678901")
    for far in (date(2025, 11, 1), date(2027, 6, 1)):
        with pytest.raises(InvalidInput, match=r"^workflow\.error\.cover_date$"):
            plan_change("verified", S.REGISTERED, today=TODAY, kpj="12345678901", covered_from=far)


def test_the_kpj_length_is_a_setting_not_a_constant_of_the_check() -> None:
    assert normalise_kpj("1234567890123", digits=13) == "1234567890123"
    with pytest.raises(InvalidInput) as bad:
        normalise_kpj("12345678901", digits=13)
    assert bad.value.params == {"digits": 13}


def test_a_rejection_needs_a_reason_of_sensible_length() -> None:
    assert plan_change("submitted", S.REJECTED, today=TODAY, note="  NIK   salah ").note == (
        "NIK salah"
    )
    for note in (None, "", "  ", "ab"):
        with pytest.raises(InvalidInput, match=r"^workflow\.error\.reason$"):
            plan_change("submitted", S.REJECTED, today=TODAY, note=note)
    with pytest.raises(InvalidInput) as bad:
        plan_change("submitted", S.REJECTED, today=TODAY, note="x" * (MAX_NOTE + 1))
    assert bad.value.key == "workflow.error.reason_long"


def test_months_are_added_to_the_last_day_when_the_day_does_not_exist() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2027, 12, 31), 2) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 15), 3) == date(2027, 2, 15)


def test_payments_fall_due_each_period_after_cover_starts() -> None:
    start = date(2026, 12, 1)
    assert next_due(start, 3, date(2026, 12, 4)) == date(2027, 3, 1)
    assert next_due(start, 3, date(2027, 3, 1)) == date(2027, 3, 1)
    assert next_due(start, 3, date(2027, 3, 2)) == date(2027, 6, 1)
    assert next_due(start, 1, date(2026, 12, 4)) == date(2027, 1, 1)
    assert next_due(start, 12, date(2027, 1, 1)) == date(2027, 12, 1)


def test_a_reminder_is_due_in_the_days_before_a_payment_only() -> None:
    start = date(2026, 12, 1)
    assert reminder_due(start, 1, date(2026, 12, 28), 3) is None
    assert reminder_due(start, 1, date(2026, 12, 29), 3) == date(2027, 1, 1)
    assert reminder_due(start, 1, date(2027, 1, 1), 3) == date(2027, 1, 1)
    assert reminder_due(start, 1, date(2027, 1, 2), 3) is None
