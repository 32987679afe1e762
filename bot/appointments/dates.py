"""Understand when a citizen wants to come: "chiều mai", "sáng thứ năm", "15/12 lúc 9h30".

A thin layer over `dateparser` (languages=["vi"]). What dateparser 1.5 does with
Vietnamese, checked against a fixed "now" (see tests/unit/test_appointments_dates.py):

- reads by itself, used as is: "hôm nay", "ngày mai", "hôm qua" (with or without
  diacritics) and bare weekday names "thứ hai" … "thứ bảy", "thứ 2" … "thứ 7",
  "chủ nhật", "cn" (the next such day, strictly after today);
- does not read (returns None), so written here: "mai" alone, "ngày kia"/"mốt",
  "nay" ("sáng nay"), "hôm kia", "ngày thứ hai", "thứ hai tuần sau/tuần này",
  "3 ngày nữa", any part of day ("sáng thứ năm", "chiều mai") and every Vietnamese
  time ("2 giờ chiều", "14h30", "9h", "9 giờ rưỡi", "9 giờ kém 15");
- misreads, so written here: "t5" (read as the 5th of the month), "32/13" (read as
  13/11/2032), "ngày 15" (a past 15th even when asked for future dates), "tuần sau"
  (today + 7; a booking wants the next calendar week, so we return its Monday with
  precision "week"), "8:30" (moved to tomorrow when 8:30 has passed; we want a
  time of day, not a date);
- a month or year alone ("tháng sau", "tháng 12", "năm sau") gets today's day of the
  month from dateparser; we refuse it ("not_understood") rather than invent a day;
- numeric dates ("15/12", "15-12-2026", "ngày 15 tháng 12") are parsed here so that
  impossible dates ("30/2", "32/13") give a reason instead of None or a wrong date.

Rules worth knowing:
- a day and month without a year is this year, or next year when this year's date
  is more than 30 days gone ("15/1" in late November is next January; "20/11" in
  late November is a past date and is flagged);
- an hour from 1 to 6 with no part of day is the afternoon ("2 giờ" = 14:00): the
  desk is never open at 2 a.m.; with "chiều"/"tối" any hour below 12 gets +12, with
  "trưa" 1–2 become 13–14;
- the text is folded (nlu.normalize.fold) so diacritics are optional; the few words
  that fold into another word ("tối"/"tôi", "mốt"/"một") are read as the date word
  only when written without diacritics or with the date word's own diacritics; a bare
  "sang" in a text written with diacritics is the preposition ("dời lịch sang thứ 6").

`parse_when(text, now, tz)` returns a `When` or raises `WhenError` whose `reason`
is a stable code ("not_understood", "invalid_date", "invalid_time").
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

import dateparser

from nlu.normalize import fold, nfc

PartOfDay = Literal["sang", "trua", "chieu", "toi"]
Precision = Literal["day", "week"]

DEFAULT_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
_YEAR_ROLLOVER_DAYS = 30


class WhenError(ValueError):
    """The text names no usable date or time; `reason` is a stable code for a message."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class When:
    """What the citizen asked for, in the ward's local time."""

    date: dt.date | None
    time: dt.time | None = None
    part_of_day: PartOfDay | None = None
    precision: Precision = "day"  # "week": any day of the week starting at `date`
    past: bool = False

    def local_datetime(self, tz: dt.tzinfo = DEFAULT_TZ) -> dt.datetime | None:
        """The moment asked for, when both a date and a time were given."""
        if self.date is None or self.time is None:
            return None
        return dt.datetime.combine(self.date, self.time, tzinfo=tz)


# --- words -----------------------------------------------------------------

_NUMBER_WORDS = {
    "mot": 1,
    "hai": 2,
    "ba": 3,
    "bon": 4,
    "tu": 4,
    "nam": 5,
    "sau": 6,
    "bay": 7,
    "tam": 8,
    "chin": 9,
    "muoi": 10,
    "muoi mot": 11,
    "muoi hai": 12,
}
_WEEKDAY_WORDS = {"hai": 0, "ba": 1, "tu": 2, "nam": 3, "sau": 4, "bay": 5}
_NUM = r"(?:muoi mot|muoi hai|muoi|mot|hai|ba|bon|tu|nam|sau|bay|tam|chin|\d{1,2})"

# Times. Matched on folded text; each pattern's groups: hour, minute/"ruoi"/kém.
_TIME_PATTERNS = (
    # 14h30, 9g15, 9 giờ 15 (phút), 9 giờ kém 15, 9 giờ rưỡi, 9h, 9 giờ
    re.compile(
        rf"(?<![\w/:.-])(?P<h>{_NUM})\s*(?:h|g|gio)"
        r"(?:\s*(?:(?P<m>\d{1,2})(?:\s*(?:p|ph|phut))?|(?P<half>ruoi)|kem\s*(?P<to>\d{1,2})(?:\s*(?:p|phut))?))?"
        r"(?![\w/])"
    ),
    # 8:30, 14:05
    re.compile(r"(?<![\w/:.-])(?P<h>\d{1,2}):(?P<m>\d{2})(?![\w/:])"),
    # 9 rưỡi
    re.compile(rf"(?<![\w/:.-])(?P<h>{_NUM})\s+(?P<half>ruoi)\b"),
)
_PART_OF_DAY = re.compile(r"\b(?:buoi\s+)?(sang|trua|chieu|toi)\b(?!\s+ten)")  # not "sang tên"
_PART_DIACRITICS = {"sang": "sáng", "trua": "trưa", "chieu": "chiều", "toi": "tối"}

# Dates.
_NUMERIC_DATE = re.compile(
    r"(?<![\w/:.-])(?P<d>\d{1,2})\s*[/.-]\s*(?P<m>\d{1,2})(?:\s*[/.-]\s*(?P<y>\d{4}|\d{2}))?(?![\w/:.-])"
)
_WORDY_DATE = re.compile(
    r"\b(?:ngay\s+)?(?P<d>\d{1,2})\s+thang\s+(?P<m>\d{1,2})(?:\s+(?:nam\s+)?(?P<y>\d{4}))?\b"
)
_DAY_OF_MONTH = re.compile(r"\bngay\s+(?P<d>\d{1,2})\b(?!\s*(?:[/.-]|thang))")
_WEEKDAY = re.compile(
    r"\b(?:ngay\s+)?(?:thu\s*(?P<word>hai|ba|tu|nam|sau|bay|[2-7])|t(?P<short>[2-7])|(?P<sun>chu\s*nhat|cn))"
    r"(?:\s+(?P<week>tuan\s+(?:sau|toi|nay)))?\b"
)
_NEXT_WEEK = re.compile(r"\btuan\s+(?:sau|toi)\b")
_IN_DAYS = re.compile(r"\b(?:sau\s+(?P<a>\d{1,2})\s+ngay|(?P<b>\d{1,2})\s+ngay\s+(?:nua|toi))\b")
_RELATIVE = (
    (re.compile(r"\b(?:ngay\s+kia|ngay\s+mot|mot)\b"), 2, "mốt"),
    (re.compile(r"\bhom\s+kia\b"), -2, ""),
    (re.compile(r"(?<!ngay )\bmai\b(?!\s+tang)"), 1, ""),  # "ngày mai" is dateparser's
    (re.compile(r"(?<!hom )\bnay\b"), 0, ""),  # "hôm nay" is dateparser's
)
_FILLERS = re.compile(r"\b(?:vao|luc|khoang|tam|buoi|nhe|nha|a|oi|duoc|khong)\b")


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBER_WORDS[word]


def _accept(original: str, folded: str, span: tuple[int, int], wanted: str) -> bool:
    """A word that folds into another word counts only without diacritics or with its own."""
    written = original[span[0] : span[1]]
    return written == folded[span[0] : span[1]] or wanted in written


# --- parsing ----------------------------------------------------------------


def parse_when(text: str, now: dt.datetime, tz: dt.tzinfo = DEFAULT_TZ) -> When:
    """Read a date and/or time from a citizen's words, relative to `now` (aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local_now = now.astimezone(tz)
    original = " ".join(nfc(text).lower().split())
    folded = fold(original)  # one letter per letter: spans of `folded` are spans of `original`
    if len(folded) != len(original):  # defensive: never expected
        original = folded

    part, folded, original = _take_part_of_day(original, folded)
    clock, folded, original = _take_time(folded, original)
    time = _apply_part(clock, part)
    day, precision = _take_date(folded, original, local_now.date())
    if day is None and time is None and part is None:
        raise WhenError("not_understood")
    past = False
    if day is not None:
        if precision == "week":
            past = day + dt.timedelta(days=6) < local_now.date()
        else:
            past = day < local_now.date() or (
                day == local_now.date() and time is not None and time < local_now.time()
            )
    return When(date=day, time=time, part_of_day=part, precision=precision, past=past)


def _blank(text: str, span: tuple[int, int]) -> str:
    return text[: span[0]] + " " * (span[1] - span[0]) + text[span[1] :]


def _take_part_of_day(original: str, folded: str) -> tuple[PartOfDay | None, str, str]:
    for match in _PART_OF_DAY.finditer(folded):
        word = match.group(1)
        written = original[match.start(1) : match.end(1)]
        if not _accept(original, folded, match.span(1), _PART_DIACRITICS[word]):
            continue
        if word == "sang" and written == "sang" and original != folded:
            continue  # someone who writes diacritics means "sang" (to): "dời lịch sang thứ 6"
        if word == "toi" and written != "tối":
            # without diacritics a bare "toi" is far more often "tôi" (I)
            context = folded[match.start() : match.end() + 5]
            if not (match.group(0).startswith("buoi") or re.match(r"toi\s+(?:nay|mai)\b", context)):
                continue
        return word, _blank(folded, match.span()), _blank(original, match.span())  # type: ignore[return-value]
    return None, folded, original


def _take_time(folded: str, original: str) -> tuple[tuple[int, int] | None, str, str]:
    for pattern in _TIME_PATTERNS:
        match = pattern.search(folded)
        if match is None:
            continue
        groups = match.groupdict()
        hour = _number(groups["h"])
        minute = 0
        if groups.get("m"):
            minute = int(groups["m"])
        elif groups.get("half"):
            minute = 30
        elif groups.get("to"):
            hour, minute = hour - 1, 60 - int(groups["to"])
            if not 0 < int(groups["to"]) < 60:
                raise WhenError("invalid_time", match.group(0).strip())
        if not (0 <= hour <= 24 and 0 <= minute <= 59) or (hour == 24 and minute):
            raise WhenError("invalid_time", match.group(0).strip())
        return (hour % 24, minute), _blank(folded, match.span()), _blank(original, match.span())
    return None, folded, original


def _apply_part(clock: tuple[int, int] | None, part: PartOfDay | None) -> dt.time | None:
    if clock is None:
        return None
    hour, minute = clock
    afternoon = (
        (part in ("chieu", "toi") and hour < 12)
        or (part == "trua" and 1 <= hour <= 2)
        or (part is None and 1 <= hour <= 6)
    )
    if afternoon:
        hour += 12
    return dt.time(hour, minute)


def _take_date(folded: str, original: str, today: dt.date) -> tuple[dt.date | None, Precision]:
    for pattern in (_NUMERIC_DATE, _WORDY_DATE):
        match = pattern.search(folded)
        if match:
            return _calendar_date(match, today), "day"
    match = _DAY_OF_MONTH.search(folded)
    if match:
        return _day_of_month(int(match.group("d")), today), "day"
    match = _WEEKDAY.search(folded)
    if match:
        return _weekday(match, today), "day"
    match = _IN_DAYS.search(folded)
    if match:
        return today + dt.timedelta(days=int(match.group("a") or match.group("b"))), "day"
    for pattern, offset, diacritics in _RELATIVE:
        match = pattern.search(folded)
        if match and ("mot" not in match.group(0) or _accept(original, folded, match.span(), diacritics)):
            return today + dt.timedelta(days=offset), "day"
    if _NEXT_WEEK.search(folded):
        return _monday(today) + dt.timedelta(days=7), "week"
    return _dateparser(folded, today), "day"


def _calendar_date(match: re.Match[str], today: dt.date) -> dt.date:
    day, month, year_text = int(match.group("d")), int(match.group("m")), match.group("y")
    text = match.group(0).strip()
    if year_text is not None:
        year = int(year_text) + (2000 if len(year_text) == 2 else 0)
        return _make_date(year, month, day, text)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise WhenError("invalid_date", text)
    candidate = _make_date(today.year, month, day, text, leap_ok=True)
    if candidate is None or (today - candidate).days > _YEAR_ROLLOVER_DAYS:
        return _make_date(today.year + 1, month, day, text)
    return candidate


def _make_date(year: int, month: int, day: int, text: str, leap_ok: bool = False) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        if leap_ok and (month, day) == (2, 29):  # 29/2 in a non-leap year: try the next year
            return None
        raise WhenError("invalid_date", text) from None


def _day_of_month(day: int, today: dt.date) -> dt.date:
    if not 1 <= day <= 31:
        raise WhenError("invalid_date", f"ngày {day}")
    year, month = today.year, today.month
    for _ in range(3):  # this month if still ahead, else the next month that has that day
        try:
            candidate = dt.date(year, month, day)
            if candidate >= today:
                return candidate
        except ValueError:
            pass
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise WhenError("invalid_date", f"ngày {day}")


def _weekday(match: re.Match[str], today: dt.date) -> dt.date:
    if match.group("sun"):
        index, canonical = 6, "chủ nhật"
    else:
        token = match.group("word") or match.group("short")
        index = int(token) - 2 if token.isdigit() else _WEEKDAY_WORDS[token]
        canonical = f"thứ {index + 2}"
    week = match.group("week")
    if week:
        monday = _monday(today) + dt.timedelta(days=0 if week.endswith("nay") else 7)
        return monday + dt.timedelta(days=index)
    found = _dateparser(canonical, today)  # dateparser's convention: the next such day after today
    if found is None or found.weekday() != index:  # pragma: no cover - guards a dateparser change
        return today + dt.timedelta(days=(index - today.weekday() - 1) % 7 + 1)
    return found


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _dateparser(text: str, today: dt.date) -> dt.date | None:
    text = " ".join(_FILLERS.sub(" ", text).split())
    if re.search(r"\b(?:thang|nam)\b", text):
        return None  # "tháng sau", "tháng 12": dateparser invents a day (today's day of month)
    if not text or not re.search(r"[a-z]", text):
        return None
    settings = {
        "RELATIVE_BASE": dt.datetime.combine(today, dt.time(12)),
        "PREFER_DATES_FROM": "future",
        "DATE_ORDER": "DMY",
        "STRICT_PARSING": False,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = dateparser.parse(text, languages=["vi"], settings=settings)
    return found.date() if found else None
