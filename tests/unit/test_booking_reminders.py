"""When a booking's reminders are due (actions/reminders.py reminder_times)."""

from __future__ import annotations

import datetime as dt

from actions.reminders import reminder_times
from bot.config.settings import PROJECT_ROOT
from bot.config.ward import load_ward

WARD = load_ward(PROJECT_ROOT / "settings" / "ward.yml")


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=WARD.tz)


def test_day_before_at_the_ward_hour_and_hours_before() -> None:
    times = reminder_times(WARD, local(2026, 12, 3, 9, 0), local(2026, 11, 30, 10, 0))
    assert times == {
        "day_before": local(2026, 12, 2, WARD.appointments.reminder_hour_day_before).astimezone(dt.UTC),
        "hours_before": local(2026, 12, 3, 9 - WARD.appointments.reminder_hours_before).astimezone(dt.UTC),
    }


def test_reminders_already_past_are_left_out() -> None:
    late = local(2026, 12, 2, 21, 0)  # booked the evening before
    assert set(reminder_times(WARD, local(2026, 12, 3, 9, 0), late)) == {"hours_before"}
    assert reminder_times(WARD, local(2026, 12, 3, 9, 0), local(2026, 12, 3, 8, 0)) == {}
