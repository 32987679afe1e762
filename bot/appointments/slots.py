"""The desk's calendar: which slots exist, which are open, and why a wish is refused.

Pure: no database. Occupancy (how many seats of a slot are taken) comes in as a
callable, which `bot.appointments.service` backs with the seat table.

- Working days and hours come from the ward settings (`office_hours` periods), so
  the lunch break between two periods never holds a slot; a slot must end by the
  end of its period.
- Public holidays come from the `holidays` package (`country_holidays("VN")`, Vietnamese
  names, lunar Tết and substitute days included); the ward's own `closures` are added.
- Lead time (no booking closer than N hours ahead) and horizon (no booking more than N
  days ahead) come from `appointments` in the ward settings, as do slot length and the
  capacity of one slot at one counter.
- Each procedure is handled by the counter that lists it; a procedure no counter
  lists cannot be booked ("unknown_procedure").

Refusals carry a stable `Reason` code (texts in faq/appointments.yml) and a detail
(the holiday's name, the closure's reason, the nearest slot start).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import holidays

from bot.config.ward import WEEKDAYS, Counter, Ward

# (counter id, first slot start UTC, end UTC) → {slot start UTC: seats taken}
Occupancy = Callable[[str, dt.datetime, dt.datetime], Mapping[dt.datetime, int]]


def no_occupancy(_counter: str, _start: dt.datetime, _end: dt.datetime) -> Mapping[dt.datetime, int]:
    return {}


class Reason(StrEnum):
    UNKNOWN_PROCEDURE = "unknown_procedure"
    PAST = "past"
    TOO_SOON = "too_soon"
    BEYOND_HORIZON = "beyond_horizon"
    HOLIDAY = "holiday"
    WARD_CLOSURE = "ward_closure"
    CLOSED_DAY = "closed_day"
    OUTSIDE_HOURS = "outside_hours"
    LUNCH_BREAK = "lunch_break"
    NOT_SLOT_START = "not_slot_start"
    FULL = "full"


@dataclass(frozen=True)
class Slot:
    start: dt.datetime  # aware, ward time zone
    end: dt.datetime
    counter: str
    capacity: int
    taken: int = 0

    @property
    def free(self) -> int:
        return max(self.capacity - self.taken, 0)

    @property
    def start_utc(self) -> dt.datetime:
        return self.start.astimezone(dt.UTC)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: Reason | None = None
    detail: str = ""
    slot: Slot | None = None

    @classmethod
    def refuse(cls, reason: Reason, detail: str = "") -> Verdict:
        return cls(ok=False, reason=reason, detail=detail)


@lru_cache(maxsize=16)
def _vn_holidays(year: int) -> dict[dt.date, str]:
    return dict(holidays.country_holidays("VN", years=year, language="vi").items())


class Calendar:
    """The ward's booking calendar, computed from its settings."""

    def __init__(self, ward: Ward) -> None:
        self.ward = ward
        self.tz = ward.tz
        self.rules = ward.appointments
        self._closures = {closure.date: closure.reason for closure in ward.closures}
        self._counters = {p: counter for counter in ward.counters for p in counter.procedures}

    # --- days -----------------------------------------------------------------

    def counter_for(self, procedure: str) -> Counter | None:
        return self._counters.get(procedure)

    def holiday(self, day: dt.date) -> str | None:
        """The public holiday's Vietnamese name, if `day` is one."""
        return _vn_holidays(day.year).get(day)

    def day_closed(self, day: dt.date) -> Verdict | None:
        """Why the desk is shut all day, or None when it opens."""
        name = self.holiday(day)
        if name:
            return Verdict.refuse(Reason.HOLIDAY, name)
        if day in self._closures:
            return Verdict.refuse(Reason.WARD_CLOSURE, self._closures[day])
        if not self.ward.office_hours.get(WEEKDAYS[day.weekday()]):
            return Verdict.refuse(Reason.CLOSED_DAY)
        return None

    def today(self, now: dt.datetime) -> dt.date:
        return now.astimezone(self.tz).date()

    def last_day(self, now: dt.datetime) -> dt.date:
        return self.today(now) + dt.timedelta(days=self.rules.horizon_days)

    def earliest_start(self, now: dt.datetime) -> dt.datetime:
        return now.astimezone(self.tz) + dt.timedelta(hours=self.rules.lead_time_hours)

    # --- slots ----------------------------------------------------------------

    def slot_starts(self, day: dt.date) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Every slot of a working day (lunch break excluded), ignoring holidays."""
        step = dt.timedelta(minutes=self.rules.slot_minutes)
        for period in self.ward.office_hours.get(WEEKDAYS[day.weekday()], []):
            start = dt.datetime.combine(day, period.start, tzinfo=self.tz)
            end = dt.datetime.combine(day, period.end, tzinfo=self.tz)
            while start + step <= end:
                yield start, start + step
                start += step

    def day_slots(
        self,
        day: dt.date,
        procedure: str,
        now: dt.datetime,
        occupancy: Occupancy = no_occupancy,
    ) -> list[Slot]:
        """Bookable slots of one day (open day, within lead time and horizon), full ones included."""
        counter = self.counter_for(procedure)
        if counter is None or self.day_closed(day) or day > self.last_day(now):
            return []
        earliest = self.earliest_start(now)
        spans = [(start, end) for start, end in self.slot_starts(day) if start >= earliest]
        if not spans:
            return []
        taken = occupancy(counter.id, spans[0][0].astimezone(dt.UTC), spans[-1][1].astimezone(dt.UTC))
        capacity = self.rules.capacity_per_counter
        return [
            Slot(start, end, counter.id, capacity, taken.get(start.astimezone(dt.UTC), 0))
            for start, end in spans
        ]

    def open_slots(
        self,
        day: dt.date,
        procedure: str,
        now: dt.datetime,
        occupancy: Occupancy = no_occupancy,
        part_of_day: str | None = None,
    ) -> list[Slot]:
        """Slots of `day` with a free seat; `part_of_day` "sang"/"trua"/"chieu"/"toi" narrows them."""
        slots = [slot for slot in self.day_slots(day, procedure, now, occupancy) if slot.free]
        return [slot for slot in slots if _in_part(slot.start.time(), part_of_day)]

    def next_free_days(
        self, procedure: str, now: dt.datetime, count: int, occupancy: Occupancy = no_occupancy
    ) -> list[dt.date]:
        """The next `count` days with a free slot, within the horizon (for day buttons)."""
        days: list[dt.date] = []
        day = self.today(now)
        while len(days) < count and day <= self.last_day(now):
            if self.open_slots(day, procedure, now, occupancy):
                days.append(day)
            day += dt.timedelta(days=1)
        return days

    def next_free_slots(
        self,
        procedure: str,
        now: dt.datetime,
        count: int,
        occupancy: Occupancy = no_occupancy,
        start_day: dt.date | None = None,
        part_of_day: str | None = None,
    ) -> list[Slot]:
        """The next `count` free slots from `start_day` (default today), for time buttons."""
        found: list[Slot] = []
        day = max(start_day or self.today(now), self.today(now))
        while len(found) < count and day <= self.last_day(now):
            found.extend(self.open_slots(day, procedure, now, occupancy, part_of_day)[: count - len(found)])
            day += dt.timedelta(days=1)
        return found

    # --- validation -------------------------------------------------------------

    def check_day(
        self, procedure: str, day: dt.date, now: dt.datetime, occupancy: Occupancy = no_occupancy
    ) -> Verdict:
        """Can `procedure` be booked on `day` at all? ok, or the first reason why not."""
        if self.counter_for(procedure) is None:
            return Verdict.refuse(Reason.UNKNOWN_PROCEDURE, procedure)
        if day < self.today(now):
            return Verdict.refuse(Reason.PAST)
        if day > self.last_day(now):
            return Verdict.refuse(Reason.BEYOND_HORIZON, f"{self.last_day(now):%d/%m/%Y}")
        closed = self.day_closed(day)
        if closed:
            return closed
        slots = self.day_slots(day, procedure, now, occupancy)
        if not slots:
            return Verdict.refuse(Reason.TOO_SOON, str(self.rules.lead_time_hours))
        if not any(slot.free for slot in slots):
            return Verdict.refuse(Reason.FULL)
        return Verdict(ok=True)

    def check(
        self, procedure: str, start: dt.datetime, now: dt.datetime, occupancy: Occupancy = no_occupancy
    ) -> Verdict:
        """Can `procedure` be booked at `start` (aware)? ok with the slot, or the first reason why not."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        start = start.astimezone(self.tz)
        counter = self.counter_for(procedure)
        if counter is None:
            return Verdict.refuse(Reason.UNKNOWN_PROCEDURE, procedure)
        if start < now:
            return Verdict.refuse(Reason.PAST)
        day = start.date()
        if day > self.last_day(now):
            return Verdict.refuse(Reason.BEYOND_HORIZON, f"{self.last_day(now):%d/%m/%Y}")
        closed = self.day_closed(day)
        if closed:
            return closed
        periods = self.ward.office_hours[WEEKDAYS[day.weekday()]]
        clock = start.time().replace(tzinfo=None)
        if not any(p.start <= clock < p.end for p in periods):
            between = [(a.end, b.start) for a, b in itertools.pairwise(periods)]
            for end, begin in between:
                if end <= clock < begin:
                    return Verdict.refuse(Reason.LUNCH_BREAK, f"{end:%H:%M}–{begin:%H:%M}")
            hours = ", ".join(f"{p.start:%H:%M}–{p.end:%H:%M}" for p in periods)
            return Verdict.refuse(Reason.OUTSIDE_HOURS, hours)
        spans = dict(self.slot_starts(day))
        if start not in spans:
            nearest = min(spans, key=lambda s: abs(s - start), default=None)
            return Verdict.refuse(Reason.NOT_SLOT_START, f"{nearest:%H:%M}" if nearest else "")
        if start < self.earliest_start(now):
            return Verdict.refuse(Reason.TOO_SOON, str(self.rules.lead_time_hours))
        start_utc, end_utc = start.astimezone(dt.UTC), spans[start].astimezone(dt.UTC)
        taken = occupancy(counter.id, start_utc, end_utc).get(start_utc, 0)
        slot = Slot(start, spans[start], counter.id, self.rules.capacity_per_counter, taken)
        if not slot.free:
            return Verdict(ok=False, reason=Reason.FULL, slot=slot)
        return Verdict(ok=True, slot=slot)


def _in_part(clock: dt.time, part: str | None) -> bool:
    if part is None:
        return True
    if part == "sang":
        return clock < dt.time(12, 0)
    if part == "trua":
        return dt.time(11, 0) <= clock < dt.time(14, 0)
    if part == "chieu":
        return dt.time(12, 0) <= clock < dt.time(18, 0)
    return clock >= dt.time(18, 0)  # "toi"
