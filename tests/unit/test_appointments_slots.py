"""The desk's calendar from the sample ward: hours, lunch break, holidays, lead time, horizon, capacity."""

import datetime as dt

import pytest

from bot.appointments.slots import Calendar, Reason
from bot.config.settings import PROJECT_ROOT
from bot.config.ward import load_ward

WARD = load_ward(PROJECT_ROOT / "settings" / "ward.yml")
VN = WARD.tz
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=VN)  # Friday 10:00
PROC = "khai_sinh"  # counter ho_tich


@pytest.fixture
def cal() -> Calendar:
    return Calendar(WARD)


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=VN)


def full(counter: str, start: dt.datetime, end: dt.datetime) -> dict[dt.datetime, int]:
    """Every slot taken to capacity."""
    step = dt.timedelta(minutes=WARD.appointments.slot_minutes)
    taken, slot = {}, start
    while slot < end:
        taken[slot] = WARD.appointments.capacity_per_counter
        slot += step
    return taken


def test_counter_for_procedure(cal: Calendar) -> None:
    assert cal.counter_for("khai_sinh").id == "ho_tich"
    assert cal.counter_for("can_cuoc.cap_doi").id == "cong_an"
    assert cal.counter_for("vneid.quen_mat_khau") is None
    assert cal.check("vneid.quen_mat_khau", at(2026, 11, 30, 9, 0), NOW).reason is Reason.UNKNOWN_PROCEDURE


def test_working_day_slots_skip_the_lunch_break(cal: Calendar) -> None:
    monday = [start.time() for start, _ in cal.slot_starts(dt.date(2026, 11, 30))]
    assert len(monday) == 8 + 7
    assert monday[0] == dt.time(7, 30) and monday[7] == dt.time(11, 0) and monday[8] == dt.time(13, 30)
    assert monday[-1] == dt.time(16, 30)
    assert not any(dt.time(11, 30) <= clock < dt.time(13, 30) for clock in monday)
    saturday = list(cal.slot_starts(dt.date(2026, 11, 28)))
    assert len(saturday) == 8
    assert list(cal.slot_starts(dt.date(2026, 11, 29))) == []  # Sunday


def test_open_slots_respect_lead_time_and_part_of_day(cal: Calendar) -> None:
    today = cal.open_slots(dt.date(2026, 11, 27), PROC, NOW)
    assert today[0].start == at(2026, 11, 27, 13, 30)  # 10:00 + 2 h lead time; 12:00 is lunch
    afternoon = cal.open_slots(dt.date(2026, 11, 30), PROC, NOW, part_of_day="chieu")
    assert [s.start.hour for s in afternoon][:2] == [13, 14] and len(afternoon) == 7
    morning = cal.open_slots(dt.date(2026, 11, 30), PROC, NOW, part_of_day="sang")
    assert len(morning) == 8 and all(s.start.hour < 12 for s in morning)
    assert morning[0].counter == "ho_tich" and morning[0].free == WARD.appointments.capacity_per_counter


@pytest.mark.parametrize(
    ("start", "reason", "detail"),
    [
        (at(2026, 11, 30, 9, 0), None, ""),
        (at(2026, 11, 27, 9, 0), Reason.PAST, ""),
        (at(2026, 11, 27, 11, 0), Reason.TOO_SOON, "2"),
        (at(2026, 11, 27, 13, 30), None, ""),
        (at(2026, 11, 29, 9, 0), Reason.CLOSED_DAY, ""),  # Sunday
        (at(2026, 11, 28, 14, 0), Reason.OUTSIDE_HOURS, "07:30–11:30"),  # Saturday afternoon
        (at(2026, 11, 30, 6, 30), Reason.OUTSIDE_HOURS, "07:30–11:30, 13:30–17:00"),
        (at(2026, 11, 30, 17, 0), Reason.OUTSIDE_HOURS, "07:30–11:30, 13:30–17:00"),
        (at(2026, 11, 30, 12, 0), Reason.LUNCH_BREAK, "11:30–13:30"),
        (at(2026, 11, 30, 11, 30), Reason.LUNCH_BREAK, "11:30–13:30"),
        (at(2026, 11, 30, 9, 10), Reason.NOT_SLOT_START, "09:00"),
        (at(2026, 12, 11, 16, 30), None, ""),  # last day of the 14-day horizon
        (at(2026, 12, 12, 8, 0), Reason.BEYOND_HORIZON, "11/12/2026"),
    ],
)
def test_check_a_requested_time(
    cal: Calendar, start: dt.datetime, reason: Reason | None, detail: str
) -> None:
    verdict = cal.check(PROC, start, NOW)
    assert verdict.reason is reason
    assert verdict.ok is (reason is None)
    assert verdict.detail == detail
    if verdict.ok:
        assert verdict.slot.start == start and verdict.slot.counter == "ho_tich"


def test_ward_closure_with_its_reason() -> None:
    cal = Calendar(WARD)
    now = at(2026, 12, 28, 8, 0)
    verdict = cal.check(PROC, at(2026, 12, 31, 9, 0), now)
    assert verdict.reason is Reason.WARD_CLOSURE and "Tổng kết" in verdict.detail
    assert cal.check_day(PROC, dt.date(2026, 12, 31), now).reason is Reason.WARD_CLOSURE


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (dt.date(2027, 2, 5), "Giao thừa"),
        (dt.date(2027, 2, 6), "Tết Nguyên Đán"),
        (dt.date(2027, 2, 8), "Mùng ba Tết"),
        (dt.date(2027, 2, 10), "Mùng năm Tết"),
        (dt.date(2027, 1, 1), "Tết Dương lịch"),
    ],
)
def test_tet_2027_is_closed(cal: Calendar, day: dt.date, name: str) -> None:
    now = at(2027, 1, 1, 8, 0) if day.month == 1 else at(2027, 1, 30, 8, 0)
    verdict = cal.check_day(PROC, day, now)
    assert verdict.reason is Reason.HOLIDAY and name in verdict.detail
    assert cal.open_slots(day, PROC, now) == []
    assert day not in cal.next_free_days(PROC, now, 10)


def test_national_day_2_9_is_closed(cal: Calendar) -> None:
    now = at(2027, 8, 25, 8, 0)
    verdict = cal.check(PROC, at(2027, 9, 2, 9, 0), now)  # a Thursday
    assert verdict.reason is Reason.HOLIDAY and verdict.detail == "Quốc khánh"
    assert cal.check_day(PROC, dt.date(2027, 9, 3), now).reason is Reason.HOLIDAY
    assert cal.check_day(PROC, dt.date(2027, 9, 6), now).ok


def test_capacity(cal: Calendar) -> None:
    start = at(2026, 11, 30, 9, 0)
    capacity = WARD.appointments.capacity_per_counter
    one_left = {start.astimezone(dt.UTC): capacity - 1}
    verdict = cal.check(PROC, start, NOW, lambda *_: one_left)
    assert verdict.ok and verdict.slot.free == 1
    full_slot = {start.astimezone(dt.UTC): capacity}
    verdict = cal.check(PROC, start, NOW, lambda *_: full_slot)
    assert verdict.reason is Reason.FULL and verdict.slot.free == 0
    assert start not in [s.start for s in cal.open_slots(start.date(), PROC, NOW, lambda *_: full_slot)]


def test_full_day_and_next_free_days(cal: Calendar) -> None:
    monday = dt.date(2026, 11, 30)

    def occupancy(counter: str, start: dt.datetime, end: dt.datetime) -> dict[dt.datetime, int]:
        return full(counter, start, end) if start.astimezone(VN).date() == monday else {}

    assert cal.check_day(PROC, monday, NOW, occupancy).reason is Reason.FULL
    # Friday afternoon, Saturday, (Sunday closed, Monday full), Tuesday
    assert cal.next_free_days(PROC, NOW, 3, occupancy) == [
        dt.date(2026, 11, 27),
        dt.date(2026, 11, 28),
        dt.date(2026, 12, 1),
    ]
    slots = cal.next_free_slots(PROC, NOW, 20, occupancy)
    assert len(slots) == 20 and slots[0].start == at(2026, 11, 27, 13, 30)
    assert not any(s.start.date() == monday for s in slots)
    assert [s.start for s in cal.next_free_slots(PROC, NOW, 2, start_day=dt.date(2026, 12, 1))] == [
        at(2026, 12, 1, 7, 30),
        at(2026, 12, 1, 8, 0),
    ]


def test_check_day_reasons(cal: Calendar) -> None:
    assert cal.check_day(PROC, dt.date(2026, 11, 26), NOW).reason is Reason.PAST
    assert cal.check_day(PROC, dt.date(2026, 12, 12), NOW).reason is Reason.BEYOND_HORIZON
    assert cal.check_day(PROC, dt.date(2026, 11, 29), NOW).reason is Reason.CLOSED_DAY
    late = at(2026, 11, 27, 15, 30)  # Friday: nothing left after the 2 h lead time
    assert cal.check_day(PROC, dt.date(2026, 11, 27), late).reason is Reason.TOO_SOON
    assert cal.check_day(PROC, dt.date(2026, 11, 27), NOW).ok


def test_horizon_limits_next_free_days(cal: Calendar) -> None:
    days = cal.next_free_days(PROC, NOW, 100)
    assert days[-1] == dt.date(2026, 12, 11)
    assert dt.date(2026, 11, 29) not in days and dt.date(2026, 12, 6) not in days  # Sundays
