"""Booking, listing, cancelling and rescheduling appointments; retention of personal data.

No overbooking, enforced by the database
-----------------------------------------
A booking claims a *seat*: a row of `appointment_seats` with a unique constraint on
(counter, slot_start, seat_no), where seat_no is one of 1..capacity. The appointment and
its seat are inserted in one transaction; if two citizens pick the same seat at the same
moment, the database lets one commit and refuses the other with an IntegrityError, and
the loser retries with the seats that are still free (or gets "full"). Nothing depends
on locking behaviour or isolation level, so the same code is correct on SQLite (where a
writer waits on busy_timeout; WAL) and PostgreSQL (READ COMMITTED: the second insert of
a key waits for the first transaction and fails when it commits). We preferred this over
SELECT … FOR UPDATE / BEGIN IMMEDIATE: those lock something that must already exist (a
slot row) or the whole SQLite file, need dialect-specific code, and a forgotten lock
silently overbooks, whereas a unique constraint cannot be forgotten by a later caller.
Cancelling or moving an appointment deletes its seat, freeing it for someone else.

Idempotent confirm: `book(..., idempotency_key=...)` stores the key with a unique
constraint on (channel, external_id, idempotency_key); a second call with the same key
(a double-pressed "Xác nhận" button, a retried webhook) returns the first booking.

Own appointments only: every lookup by code also filters on the citizen's channel and
external id, so another citizen's code raises the same NotFound as a code that does not
exist.

Personal data (name, phone, note) is stored only with consent and anonymised
`appointments.retention_days` (ward file, default RETENTION_DAYS = 90) days after the
appointment by `anonymise_expired` (run daily by bot/scheduler.py) or at the citizen's request
(`delete_my_data`).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import secrets
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import phonenumbers
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from bot.appointments.models import Appointment, AppointmentSeat
from bot.appointments.slots import Calendar, Occupancy, Reason
from bot.storage.db import Database, utcnow

log = logging.getLogger(__name__)

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
CODE_LENGTH = 6
NAME_MAX = 100
NOTE_MAX = 500
RETENTION_DAYS = 90
_ATTEMPTS = 30


class AppointmentError(Exception):
    """A refusal the citizen is told about; `reason` is a stable code (faq/appointments.yml)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class NotFound(AppointmentError):
    def __init__(self) -> None:
        super().__init__("not_found")


class InvalidInput(AppointmentError):
    """Bad personal data: invalid_phone, invalid_name, name_too_long, invalid_note, consent_required."""


@dataclass(frozen=True)
class Booking:
    """What the citizen (and the form) sees of an appointment."""

    code: str
    procedure: str
    counter: str
    slot_start: dt.datetime  # aware UTC
    status: str
    full_name: str | None = None
    phone: str | None = None

    @classmethod
    def of(cls, row: Appointment) -> Booking:
        return cls(row.code, row.procedure, row.counter, row.slot_start, row.status, row.full_name, row.phone)


# --- listeners (e.g. staff group notices: bot/appointments/notify.py) -------------

# Called after a booking is created ("booked"), cancelled ("cancelled") or moved ("moved"),
# whichever channel did it; a failing listener never undoes or breaks the booking.
Listener = Callable[[Database, str, "Booking"], object]
listeners: list[Listener] = []


def _notify(db: Database, event: str, booking: Booking) -> None:
    for listener in list(listeners):
        try:
            listener(db, event, booking)
        except Exception as exc:  # noqa: BLE001 - bookkeeping must not break a booking
            log.warning("appointment listener failed: %s", type(exc).__name__)


# --- personal data ----------------------------------------------------------------


def normalize_phone(raw: str, region: str = "VN") -> str:
    """A phone number in E.164 ("0912 345 678" → "+84912345678"), or InvalidInput."""
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        raise InvalidInput("invalid_phone") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput("invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _has_control(text: str, allowed: str = "") -> bool:
    categories = ((ch, unicodedata.category(ch)) for ch in text if ch not in allowed)
    return any(category.startswith("C") or category in ("Zl", "Zp") for _, category in categories)


def clean_name(raw: str) -> str:
    """A full name as typed, NFC, trimmed, inner runs of spaces collapsed; stored as plain text."""
    name = unicodedata.normalize("NFC", raw)
    if _has_control(name):
        raise InvalidInput("invalid_name")
    name = " ".join(name.split())
    if not any(ch.isalpha() for ch in name):
        raise InvalidInput("invalid_name")
    if len(name) > NAME_MAX:
        raise InvalidInput("name_too_long", str(NAME_MAX))
    return name


def clean_note(raw: str | None) -> str | None:
    if raw is None:
        return None
    note = unicodedata.normalize("NFC", raw).strip()
    if _has_control(note, allowed="\n") or len(note) > NOTE_MAX:
        raise InvalidInput("invalid_note", str(NOTE_MAX))
    return note or None


# --- codes ------------------------------------------------------------------------


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str:
    """What a citizen types back ("abc-234", " ABC 234 ") in stored form."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


# --- occupancy --------------------------------------------------------------------


def occupancy(db: Database) -> Occupancy:
    """Seats taken per slot start (UTC), read from the seat table, for `Calendar`."""

    def taken(counter: str, start: dt.datetime, end: dt.datetime) -> Mapping[dt.datetime, int]:
        with db.session() as session:
            rows = session.execute(
                select(AppointmentSeat.slot_start, func.count())
                .where(
                    AppointmentSeat.counter == counter,
                    AppointmentSeat.slot_start >= start,
                    AppointmentSeat.slot_start < end,
                )
                .group_by(AppointmentSeat.slot_start)
            ).all()
        return {slot_start: count for slot_start, count in rows}

    return taken


def _claim_seat(
    session: Session, counter: str, slot_start: dt.datetime, capacity: int, appointment_id: int
) -> None:
    """Insert a seat row for a free seat number; the unique constraint settles races."""
    taken = set(
        session.scalars(
            select(AppointmentSeat.seat_no).where(
                AppointmentSeat.counter == counter, AppointmentSeat.slot_start == slot_start
            )
        )
    )
    free = [seat for seat in range(1, capacity + 1) if seat not in taken]
    if not free:
        raise AppointmentError(Reason.FULL.value)
    # a random free seat: concurrent bookers of one slot rarely collide on the same row
    seat = AppointmentSeat(
        counter=counter, slot_start=slot_start, seat_no=random.choice(free), appointment_id=appointment_id
    )
    session.add(seat)
    session.flush()


def _retrying(attempt: int, exc: Exception) -> None:
    if attempt + 1 >= _ATTEMPTS:
        log.warning("booking gave up after %d attempts: %s", _ATTEMPTS, type(exc).__name__)
        raise AppointmentError("busy") from exc
    time.sleep(random.uniform(0.005, 0.05) * (1 + attempt // 5))


# --- booking ----------------------------------------------------------------------


def book(
    db: Database,
    calendar: Calendar,
    *,
    channel: str,
    external_id: str,
    procedure: str,
    start: dt.datetime,
    now: dt.datetime | None = None,
    idempotency_key: str | None = None,
    full_name: str | None = None,
    phone: str | None = None,
    note: str | None = None,
    consent: bool = False,
) -> Booking:
    """Book `procedure` at `start` (aware) for this citizen; raises AppointmentError with a reason."""
    now = now or utcnow()
    personal = (full_name, phone, note)
    if any(value is not None for value in personal) and not consent:
        raise InvalidInput("consent_required")
    name = clean_name(full_name) if full_name is not None else None
    e164 = normalize_phone(phone) if phone is not None else None
    cleaned_note = clean_note(note)

    if idempotency_key is not None:
        existing = _by_key(db, channel, external_id, idempotency_key)
        if existing is not None:
            return existing
    verdict = calendar.check(procedure, start, now, occupancy(db))
    if not verdict.ok:
        assert verdict.reason is not None
        raise AppointmentError(verdict.reason.value, verdict.detail)
    assert verdict.slot is not None
    slot = verdict.slot
    for attempt in range(_ATTEMPTS):
        try:
            with db.session() as session:
                row = Appointment(
                    code=new_code(),
                    channel=channel,
                    external_id=external_id,
                    idempotency_key=idempotency_key,
                    procedure=procedure,
                    counter=slot.counter,
                    slot_start=slot.start_utc,
                    status="booked",
                    full_name=name,
                    phone=e164,
                    note=cleaned_note,
                    consent_at=now if consent else None,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                _claim_seat(session, slot.counter, slot.start_utc, slot.capacity, row.id)
                booking = Booking.of(row)
            log.info("appointment booked: counter=%s slot=%s", slot.counter, slot.start_utc.isoformat())
            _notify(db, "booked", booking)
            return booking
        except (IntegrityError, OperationalError) as exc:  # lost a race (seat, key or code): look again
            if idempotency_key is not None:
                existing = _by_key(db, channel, external_id, idempotency_key)
                if existing is not None:
                    return existing
            _retrying(attempt, exc)
    raise AssertionError("unreachable")  # pragma: no cover


def _by_key(db: Database, channel: str, external_id: str, key: str) -> Booking | None:
    with db.session() as session:
        row = session.scalar(
            select(Appointment).where(
                Appointment.channel == channel,
                Appointment.external_id == external_id,
                Appointment.idempotency_key == key,
            )
        )
        return Booking.of(row) if row else None


def booking_for_key(db: Database, channel: str, external_id: str, key: str) -> Booking | None:
    """The citizen's booking made with this idempotency key (one run of the chat form), if any."""
    return _by_key(db, channel, external_id, key)


def _own(session: Session, channel: str, external_id: str, code: str) -> Appointment:
    """The citizen's own appointment by code; someone else's code is NotFound too."""
    row = session.scalar(
        select(Appointment).where(
            Appointment.code == normalize_code(code),
            Appointment.channel == channel,
            Appointment.external_id == external_id,
        )
    )
    if row is None:
        raise NotFound()
    return row


def get_mine(db: Database, channel: str, external_id: str, code: str) -> Booking:
    with db.session() as session:
        return Booking.of(_own(session, channel, external_id, code))


def my_appointments(
    db: Database, channel: str, external_id: str, now: dt.datetime | None = None, upcoming_only: bool = True
) -> list[Booking]:
    """The citizen's appointments, soonest first; by default only booked ones still ahead."""
    query = select(Appointment).where(Appointment.channel == channel, Appointment.external_id == external_id)
    if upcoming_only:
        query = query.where(Appointment.status == "booked", Appointment.slot_start >= (now or utcnow()))
    with db.session() as session:
        return [Booking.of(row) for row in session.scalars(query.order_by(Appointment.slot_start))]


def cancel(
    db: Database, channel: str, external_id: str, code: str, now: dt.datetime | None = None
) -> Booking:
    """Cancel the citizen's own booking and free its seat; cancelling twice is harmless."""
    now = now or utcnow()
    with db.session() as session:
        row = _own(session, channel, external_id, code)
        if row.status == "cancelled":
            return Booking.of(row)
        if row.status != "booked":
            raise AppointmentError("not_changeable", row.status)
        if row.slot_start < now:
            raise AppointmentError(Reason.PAST.value)
        row.status = "cancelled"
        row.updated_at = now
        session.execute(delete(AppointmentSeat).where(AppointmentSeat.appointment_id == row.id))
        log.info("appointment cancelled")
        booking = Booking.of(row)
    _notify(db, "cancelled", booking)
    return booking


def reschedule(
    db: Database,
    calendar: Calendar,
    channel: str,
    external_id: str,
    code: str,
    start: dt.datetime,
    now: dt.datetime | None = None,
) -> Booking:
    """Move the citizen's own booking to `start`: the new seat is claimed before the old one is freed."""
    now = now or utcnow()
    current = get_mine(db, channel, external_id, code)
    if current.status != "booked":
        raise AppointmentError("not_changeable", current.status)
    if current.slot_start < now:
        raise AppointmentError(Reason.PAST.value)
    if start.astimezone(dt.UTC) == current.slot_start:
        return current
    verdict = calendar.check(current.procedure, start, now, occupancy(db))
    if not verdict.ok:
        assert verdict.reason is not None
        raise AppointmentError(verdict.reason.value, verdict.detail)
    assert verdict.slot is not None
    slot = verdict.slot
    for attempt in range(_ATTEMPTS):
        try:
            with db.session() as session:
                row = _own(session, channel, external_id, code)
                if row.status != "booked":
                    raise AppointmentError("not_changeable", row.status)
                session.execute(delete(AppointmentSeat).where(AppointmentSeat.appointment_id == row.id))
                _claim_seat(session, slot.counter, slot.start_utc, slot.capacity, row.id)
                row.counter, row.slot_start, row.updated_at = slot.counter, slot.start_utc, now
                row.confirmed_at = None  # a confirmation was for the old time
                booking = Booking.of(row)
            log.info("appointment moved: counter=%s slot=%s", slot.counter, slot.start_utc.isoformat())
            _notify(db, "moved", booking)
            return booking
        except (IntegrityError, OperationalError) as exc:
            _retrying(attempt, exc)
    raise AssertionError("unreachable")  # pragma: no cover


def confirm_attendance(
    db: Database, channel: str, external_id: str, code: str, now: dt.datetime | None = None
) -> Booking:
    """The citizen says they will come ("Tôi sẽ đến" under a reminder): `confirmed_at` is recorded.

    Only their own upcoming booked appointment; anything else is NotFound (no hint)."""
    now = now or utcnow()
    with db.session() as session:
        row = _own(session, channel, external_id, code)
        if row.status != "booked" or row.slot_start < now:
            raise NotFound()
        row.confirmed_at = row.confirmed_at or now
        row.updated_at = now
        log.info("appointment attendance confirmed")
        return Booking.of(row)


def set_status(db: Database, code: str, status: str, now: dt.datetime | None = None) -> Booking:
    """Desk staff: mark arrived / served / no_show (the seat stays taken)."""
    if status not in ("arrived", "served", "no_show"):
        raise ValueError(f"status {status!r} is not set by the desk")
    with db.session() as session:
        row = session.scalar(select(Appointment).where(Appointment.code == normalize_code(code)))
        if row is None or row.status == "cancelled":
            raise NotFound()
        row.status, row.updated_at = status, now or utcnow()
        return Booking.of(row)


# --- retention --------------------------------------------------------------------

_PERSONAL_CLEARED = {
    "full_name": None,
    "phone": None,
    "note": None,
    "external_id": None,
    "idempotency_key": None,
}


def anonymise_expired(db: Database, now: dt.datetime | None = None, days: int = RETENTION_DAYS) -> int:
    """Clear personal data of appointments more than `days` days past; returns how many."""
    now = now or utcnow()
    with db.session() as session:
        result = session.execute(
            update(Appointment)
            .where(Appointment.slot_start < now - dt.timedelta(days=days))
            .where(Appointment.anonymised_at.is_(None))
            .values(**_PERSONAL_CLEARED, anonymised_at=now, updated_at=now)
        )
        count = result.rowcount or 0
    if count:
        log.info("anonymised %d appointments older than %d days", count, days)
    return count


def delete_my_data(db: Database, channel: str, external_id: str, now: dt.datetime | None = None) -> int:
    """At the citizen's request: cancel their upcoming bookings and anonymise all of them."""
    now = now or utcnow()
    with db.session() as session:
        mine = (Appointment.channel == channel, Appointment.external_id == external_id)
        upcoming = select(Appointment.id).where(
            *mine, Appointment.status == "booked", Appointment.slot_start >= now
        )
        ids = list(session.scalars(upcoming))
        if ids:
            session.execute(delete(AppointmentSeat).where(AppointmentSeat.appointment_id.in_(ids)))
            session.execute(
                update(Appointment).where(Appointment.id.in_(ids)).values(status="cancelled", updated_at=now)
            )
        result = session.execute(
            update(Appointment).where(*mine).values(**_PERSONAL_CLEARED, anonymised_at=now, updated_at=now)
        )
        count = result.rowcount or 0
    log.info("citizen data deleted: %d appointments anonymised, %d cancelled", count, len(ids))
    return count
