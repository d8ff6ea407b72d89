"""The progress card and final report say things as a person would."""

from __future__ import annotations

from datetime import timedelta

from bot.core.states import BroadcastState
from bot.db.models import Broadcast, utcnow
from bot.i18n import translator
from bot.services.delivery import Counts, default_progress, duration_text, final_report

t = translator("id")


def test_durations_leave_out_zero_minutes() -> None:
    assert duration_text("id", 1) == "1 detik"
    assert duration_text("id", 120) == "2 menit"
    assert duration_text("id", 125) == "2 menit 5 detik"


def test_a_finished_broadcast_reports_seconds_only_and_people() -> None:
    started = utcnow()
    broadcast = Broadcast(
        id=3,
        state=BroadcastState.DONE,
        started_at=started,
        finished_at=started + timedelta(seconds=1),
    )
    report = final_report(broadcast, Counts(total=2, sent=2), "id").text
    assert "selesai dalam 1 detik." in report and "0 menit" not in report
    assert "Memblokir bot: 0 orang" in report and "Belum pasti sampai: 0" in report


def test_a_cancelled_card_shows_what_went_out_and_no_time_left() -> None:
    broadcast = Broadcast(id=4, state=BroadcastState.CANCELLED)
    card = default_progress(broadcast, Counts(total=4, sent=1, skipped=3), "id").text
    assert "25%" in card and "100%" not in card
    assert "Sisa waktu: –" in card and "Perkiraan" not in card
    assert t("broadcast.progress.cancelled") in card
