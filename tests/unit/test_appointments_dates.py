"""Vietnamese date/time phrases, with and without diacritics, against a fixed now."""

import datetime as dt
from zoneinfo import ZoneInfo

import dateparser
import pytest

from bot.appointments.dates import When, WhenError, parse_when
from nlu.normalize import fold

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=VN)  # Friday 27/11/2026, 10:00
D = dt.date
T = dt.time

CASES = [
    # phrase, date, time, part of day
    ("hôm nay", D(2026, 11, 27), None, None),
    ("mai", D(2026, 11, 28), None, None),
    ("ngày mai", D(2026, 11, 28), None, None),
    ("ngày kia", D(2026, 11, 29), None, None),
    ("mốt", D(2026, 11, 29), None, None),
    ("ngày mốt", D(2026, 11, 29), None, None),
    ("sáng nay", D(2026, 11, 27), None, "sang"),
    ("thứ hai", D(2026, 11, 30), None, None),
    ("thứ ba", D(2026, 12, 1), None, None),
    ("thứ tư", D(2026, 12, 2), None, None),
    ("thứ năm", D(2026, 12, 3), None, None),
    ("thứ sáu", D(2026, 12, 4), None, None),  # today is Friday: the next one
    ("thứ bảy", D(2026, 11, 28), None, None),
    ("thứ 2", D(2026, 11, 30), None, None),
    ("thứ 7", D(2026, 11, 28), None, None),
    ("chủ nhật", D(2026, 11, 29), None, None),
    ("cn", D(2026, 11, 29), None, None),
    ("t5", D(2026, 12, 3), None, None),
    ("T2", D(2026, 11, 30), None, None),
    ("ngày thứ hai", D(2026, 11, 30), None, None),
    ("thứ hai tuần sau", D(2026, 11, 30), None, None),
    ("thứ năm tuần sau", D(2026, 12, 3), None, None),
    ("thứ 6 tuần tới", D(2026, 12, 4), None, None),
    ("15/12", D(2026, 12, 15), None, None),
    ("15-12-2026", D(2026, 12, 15), None, None),
    ("15/12/2026", D(2026, 12, 15), None, None),
    ("15.12.26", D(2026, 12, 15), None, None),
    ("15/1", D(2027, 1, 15), None, None),  # January already long gone: next year
    ("ngày 15 tháng 12", D(2026, 12, 15), None, None),
    ("ngày 3", D(2026, 12, 3), None, None),  # the 3rd of this month has passed
    ("3 ngày nữa", D(2026, 11, 30), None, None),
    ("sáng thứ năm", D(2026, 12, 3), None, "sang"),
    ("chiều mai", D(2026, 11, 28), None, "chieu"),
    ("trưa mai", D(2026, 11, 28), None, "trua"),
    ("tối mai", D(2026, 11, 28), None, "toi"),
    ("2 giờ chiều", None, T(14, 0), "chieu"),
    ("hai giờ chiều mai", D(2026, 11, 28), T(14, 0), "chieu"),
    ("14h30", None, T(14, 30), None),
    ("14h", None, T(14, 0), None),
    ("9h", None, T(9, 0), None),
    ("9g15", None, T(9, 15), None),
    ("9 giờ rưỡi", None, T(9, 30), None),
    ("9 rưỡi", None, T(9, 30), None),
    ("9 giờ kém 15", None, T(8, 45), None),
    ("8:30", None, T(8, 30), None),
    ("2 giờ", None, T(14, 0), None),  # the desk never opens at 2 a.m.
    ("thứ năm 9h", D(2026, 12, 3), T(9, 0), None),
    ("15/12 lúc 14h30", D(2026, 12, 15), T(14, 30), None),
    ("vào sáng thứ 6 tuần sau lúc 8h30", D(2026, 12, 4), T(8, 30), "sang"),
    ("tôi muốn đặt lịch chiều mai", D(2026, 11, 28), None, "chieu"),
]


@pytest.mark.parametrize(("phrase", "day", "clock", "part"), CASES)
@pytest.mark.parametrize("accents", [True, False], ids=["with-diacritics", "folded"])
def test_phrases(phrase: str, day: dt.date, clock: dt.time, part: str, accents: bool) -> None:
    text = phrase if accents else fold(phrase)
    when = parse_when(text, NOW, VN)
    assert (when.date, when.time, when.part_of_day) == (day, clock, part)
    assert when.precision == "day"
    assert not when.past


def test_next_week_is_the_week_from_its_monday() -> None:
    for text in ("tuần sau", "tuan sau", "tuần tới"):
        assert parse_when(text, NOW, VN) == When(date=D(2026, 11, 30), precision="week")


def test_combines_into_a_local_moment() -> None:
    when = parse_when("chiều thứ hai 2 giờ", NOW, VN)
    assert when.local_datetime(VN) == dt.datetime(2026, 11, 30, 14, 0, tzinfo=VN)
    assert parse_when("mai", NOW, VN).local_datetime(VN) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("30/2", "invalid_date"),
        ("32/13", "invalid_date"),
        ("31/4/2027", "invalid_date"),
        ("0/5", "invalid_date"),
        ("ngày 32", "invalid_date"),
        ("30 tháng 2", "invalid_date"),
        ("25h", "invalid_time"),
        ("9h75", "invalid_time"),
        ("tôi muốn đặt lịch", "not_understood"),
        ("", "not_understood"),
        ("mai táng phí", "not_understood"),
        ("sang tên xe", "not_understood"),
        ("tháng sau", "not_understood"),
        ("tháng 12", "not_understood"),
        ("thứ 8", "not_understood"),
        ("ok", "not_understood"),
    ],
)
def test_impossible_or_unreadable(text: str, reason: str) -> None:
    with pytest.raises(WhenError) as caught:
        parse_when(text, NOW, VN)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("text", "past"),
    [
        ("hôm qua", True),
        ("20/11", True),  # a week ago: flagged, not moved to next year
        ("1/11/2026", True),
        ("8h", False),  # no date: cannot be past
        ("hôm nay 8h", True),
        ("hôm nay 14h", False),
        ("hôm nay", False),
    ],
)
def test_past_dates_are_flagged(text: str, past: bool) -> None:
    assert parse_when(text, NOW, VN).past is past


def test_now_is_read_in_the_ward_time_zone() -> None:
    utc_now = dt.datetime(2026, 11, 27, 18, 0, tzinfo=dt.UTC)  # already Saturday 01:00 in Vietnam
    assert parse_when("mai", utc_now, VN).date == D(2026, 11, 29)
    with pytest.raises(ValueError, match="aware"):
        parse_when("mai", dt.datetime(2026, 11, 27), VN)


def test_words_that_fold_into_other_words() -> None:
    assert parse_when("một giờ chiều", NOW, VN).time == T(13, 0)
    with pytest.raises(WhenError):
        parse_when("tôi", NOW, VN)  # "tôi" (I) is not "tối" (evening)


def test_dateparser_still_behaves_as_the_module_docstring_says() -> None:
    """If an upgrade of dateparser changes these, revisit what dates.py hand-writes."""
    base = {"RELATIVE_BASE": NOW.replace(tzinfo=None), "PREFER_DATES_FROM": "future", "DATE_ORDER": "DMY"}

    def parse(text: str) -> dt.datetime | None:
        return dateparser.parse(text, languages=["vi"], settings=base)

    assert parse("ngày mai").date() == D(2026, 11, 28)
    assert parse("thu hai").date() == D(2026, 11, 30)
    for unread in ("mai", "mốt", "ngày kia", "chiều mai", "14h30", "2 giờ chiều", "thứ hai tuần sau"):
        assert parse(unread) is None, unread
    assert parse("t5").date() != D(2026, 12, 3)  # misread as a day of the month
