"""The desk's view of appointments: one day's queue, search, daily summary, CSV export.

Reads the appointments core's table (bot.appointments.models); status changes go through
bot.appointments.service.set_status. Names and phone numbers are handed out only for roles
that may see them (`personal=True`); callers write the audit row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter as Tally
from dataclasses import dataclass

import phonenumbers
from sqlalchemy import select

from bot.appointments.models import STATUSES, Appointment
from bot.appointments.service import InvalidInput, normalize_code, normalize_phone
from bot.storage.db import Database

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Row:
    """One appointment as a desk page shows it; name and phone are None unless allowed."""

    code: str
    procedure: str
    counter: str
    start: dt.datetime  # ward local time
    status: str
    full_name: str | None
    phone: str | None  # national format, e.g. "0912 345 678"


@dataclass(frozen=True)
class Filters:
    day: dt.date
    counter: str = ""
    procedure: str = ""
    status: str = ""

    def describe(self) -> str:
        """For the audit log: the date and the filters (never personal data)."""
        named = (("counter", self.counter), ("procedure", self.procedure), ("status", self.status))
        return " ".join([self.day.isoformat()] + [f"{key}={value}" for key, value in named if value])


def day_bounds(day: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def national_phone(e164: str | None) -> str | None:
    if not e164:
        return None
    try:
        number = phonenumbers.parse(e164, "VN")
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def _row(app: Appointment, tz: dt.tzinfo, personal: bool) -> Row:
    return Row(
        code=app.code,
        procedure=app.procedure,
        counter=app.counter,
        start=app.slot_start.astimezone(tz),
        status=app.status,
        full_name=app.full_name if personal else None,
        phone=national_phone(app.phone) if personal else None,
    )


def day_queue(db: Database, filters: Filters, tz: dt.tzinfo, personal: bool) -> list[Row]:
    """The appointments of one day (ward time), in slot order, filtered."""
    start, end = day_bounds(filters.day, tz)
    query = select(Appointment).where(Appointment.slot_start >= start, Appointment.slot_start < end)
    if filters.counter:
        query = query.where(Appointment.counter == filters.counter)
    if filters.procedure:
        query = query.where(Appointment.procedure == filters.procedure)
    if filters.status:
        query = query.where(Appointment.status == filters.status)
    query = query.order_by(Appointment.slot_start, Appointment.counter, Appointment.code)
    with db.session() as session:
        return [_row(app, tz, personal) for app in session.scalars(query)]


def search(db: Database, text: str, tz: dt.tzinfo, personal: bool, limit: int = 50) -> tuple[str, list[Row]]:
    """By appointment code, or (for roles that see personal data) by phone number.

    Returns the kind of search ("code", "phone" or "" when the text is neither) and the rows,
    latest first.
    """
    text = text.strip()
    kind, query = "", None
    if personal and sum(ch.isdigit() for ch in text) >= 9:
        try:
            phone = normalize_phone(text)
        except InvalidInput:
            phone = ""
        if phone:
            kind, query = "phone", select(Appointment).where(Appointment.phone == phone)
    code = normalize_code(text)
    if query is None and 1 <= len(code) <= 12:
        kind, query = "code", select(Appointment).where(Appointment.code == code)
    if query is None:
        return kind, []
    with db.session() as session:
        rows = session.scalars(query.order_by(Appointment.slot_start.desc()).limit(limit))
        return kind, [_row(app, tz, personal) for app in rows]


@dataclass(frozen=True)
class Summary:
    first: dt.date
    last: dt.date
    total: int
    by_status: dict[str, int]
    by_procedure: dict[str, dict[str, int]]  # procedure → status → count (and "total")


def summary(db: Database, first: dt.date, last: dt.date, tz: dt.tzinfo) -> Summary:
    """Counts by status and by procedure for the days first..last (ward time); no personal data."""
    start, _ = day_bounds(first, tz)
    _, end = day_bounds(last, tz)
    with db.session() as session:
        pairs = session.execute(
            select(Appointment.procedure, Appointment.status).where(
                Appointment.slot_start >= start, Appointment.slot_start < end
            )
        ).all()
    by_status = {status: 0 for status in STATUSES}
    tally: dict[str, Tally[str]] = {}
    for procedure, status in pairs:
        by_status[status] = by_status.get(status, 0) + 1
        tally.setdefault(procedure, Tally())[status] += 1
    by_procedure = {
        procedure: {**{s: counts.get(s, 0) for s in STATUSES}, "total": sum(counts.values())}
        for procedure, counts in sorted(tally.items())
    }
    return Summary(first, last, len(pairs), by_status, by_procedure)


# --- CSV -----------------------------------------------------------------------------------


def safe_cell(value: object) -> str:
    """A spreadsheet cell that cannot run as a formula (=HYPERLINK(...), +cmd, @SUM ...)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(
    rows: list[Row],
    headers: list[str],
    personal: bool,
    procedure_name: dict[str, str],
    counter_name: dict[str, str],
    status_name: dict[str, str],
) -> bytes:
    """UTF-8 with a BOM (Excel then reads Vietnamese correctly), CRLF lines, formulas neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in headers])
    for row in rows:
        cells = [
            row.start.strftime("%d/%m/%Y"),
            row.start.strftime("%H:%M"),
            row.code,
            procedure_name.get(row.procedure, row.procedure),
            counter_name.get(row.counter, row.counter),
            status_name.get(row.status, row.status),
        ]
        if personal:
            cells += [row.full_name or "", row.phone or ""]
        writer.writerow([safe_cell(cell) for cell in cells])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
