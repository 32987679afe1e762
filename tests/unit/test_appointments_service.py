"""Booking service on a real SQLite file: capacity, idempotency, ownership, personal data, retention."""

import datetime as dt
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from bot.appointments import reason_message, reason_texts, service
from bot.appointments.dates import WhenError
from bot.appointments.models import Appointment, AppointmentSeat
from bot.appointments.service import AppointmentError, InvalidInput, NotFound
from bot.appointments.slots import Calendar, Reason
from bot.config.settings import PROJECT_ROOT
from bot.config.ward import load_ward
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import Base

WARD = load_ward(PROJECT_ROOT / "settings" / "ward.yml")
VN = WARD.tz
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=VN)
SLOT = dt.datetime(2026, 11, 30, 9, 0, tzinfo=VN)  # Monday 09:00
CAPACITY = WARD.appointments.capacity_per_counter


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'ward.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


@pytest.fixture
def cal() -> Calendar:
    return Calendar(WARD)


def book(db: Database, cal: Calendar, who: str = "a", start: dt.datetime = SLOT, **kwargs: object):
    return service.book(
        db, cal, channel="web", external_id=who, procedure="khai_sinh", start=start, now=NOW, **kwargs
    )


def seats(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(AppointmentSeat))


def test_migration_matches_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    mine = [d for d in diff if "appointment" in repr(d)]
    assert mine == []


def test_book_and_list_my_appointments(db: Database, cal: Calendar) -> None:
    booking = book(db, cal)
    assert len(booking.code) == 6 and set(booking.code) <= set(service.CODE_ALPHABET)
    assert booking.counter == "ho_tich" and booking.status == "booked"
    assert booking.slot_start == SLOT.astimezone(dt.UTC) and booking.slot_start.tzinfo is dt.UTC
    assert service.my_appointments(db, "web", "a", NOW) == [booking]
    assert service.my_appointments(db, "web", "b", NOW) == []
    assert service.my_appointments(db, "telegram", "a", NOW) == []
    assert service.get_mine(db, "web", "a", booking.code.lower()[:3] + "-" + booking.code[3:]) == booking


def test_capacity_is_never_exceeded_and_cancel_frees_a_seat(db: Database, cal: Calendar) -> None:
    booked = [book(db, cal, who=f"c{i}") for i in range(CAPACITY)]
    with pytest.raises(AppointmentError) as caught:
        book(db, cal, who="late")
    assert caught.value.reason == "full"
    assert seats(db) == CAPACITY
    service.cancel(db, "web", "c0", booked[0].code, NOW)
    assert seats(db) == CAPACITY - 1
    assert book(db, cal, who="late").status == "booked"
    assert cal.check("khai_sinh", SLOT, NOW, service.occupancy(db)).reason is Reason.FULL


def test_refusals_carry_the_calendar_reason(db: Database, cal: Calendar) -> None:
    with pytest.raises(AppointmentError) as caught:
        book(db, cal, start=dt.datetime(2026, 11, 30, 12, 0, tzinfo=VN))
    assert caught.value.reason == "lunch_break"
    with pytest.raises(AppointmentError) as caught:
        book(db, cal, start=dt.datetime(2026, 11, 29, 9, 0, tzinfo=VN))
    assert caught.value.reason == "closed_day"
    assert seats(db) == 0


def test_double_pressed_confirm_books_once(db: Database, cal: Calendar) -> None:
    first = book(db, cal, idempotency_key="confirm-1")
    again = book(db, cal, idempotency_key="confirm-1")
    assert again == first
    other = book(db, cal, idempotency_key="confirm-2")
    assert other.code != first.code
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Appointment)) == 2
    # the same key from another citizen is another booking
    with pytest.raises(AppointmentError, match="full"):
        book(db, cal, who="b", idempotency_key="confirm-1")


def test_someone_elses_code_is_not_found_like_a_missing_one(db: Database, cal: Calendar) -> None:
    mine = book(db, cal, who="a")
    errors = []
    for code in (mine.code, "ZZZZZZ"):
        for action in (
            lambda code=code: service.cancel(db, "web", "b", code, NOW),
            lambda code=code: service.reschedule(
                db, cal, "web", "b", code, SLOT + dt.timedelta(hours=1), NOW
            ),
            lambda code=code: service.get_mine(db, "web", "b", code),
            lambda code=code: service.cancel(db, "telegram", "a", code, NOW),
        ):
            with pytest.raises(NotFound) as caught:
                action()
            errors.append((type(caught.value), caught.value.reason, str(caught.value)))
    assert len(set(errors)) == 1
    assert service.get_mine(db, "web", "a", mine.code).status == "booked"


def test_cancel_is_idempotent_and_only_for_booked(db: Database, cal: Calendar) -> None:
    booking = book(db, cal)
    assert service.cancel(db, "web", "a", booking.code, NOW).status == "cancelled"
    assert service.cancel(db, "web", "a", booking.code, NOW).status == "cancelled"
    assert service.my_appointments(db, "web", "a", NOW) == []
    served = book(db, cal, start=SLOT + dt.timedelta(hours=1))
    service.set_status(db, served.code, "arrived")
    with pytest.raises(AppointmentError, match="not_changeable"):
        service.cancel(db, "web", "a", served.code, NOW)


def test_reschedule_moves_the_seat(db: Database, cal: Calendar) -> None:
    booking = book(db, cal)
    later = SLOT + dt.timedelta(minutes=30)
    moved = service.reschedule(db, cal, "web", "a", booking.code, later, NOW)
    assert moved.code == booking.code and moved.slot_start == later.astimezone(dt.UTC)
    assert seats(db) == 1
    occupancy = service.occupancy(db)
    assert cal.check("khai_sinh", SLOT, NOW, occupancy).slot.taken == 0
    assert cal.check("khai_sinh", later, NOW, occupancy).slot.taken == 1
    # into a full slot: refused, the booking keeps its time
    for i in range(CAPACITY):
        book(db, cal, who=f"x{i}", start=SLOT)
    with pytest.raises(AppointmentError, match="full"):
        service.reschedule(db, cal, "web", "a", booking.code, SLOT, NOW)
    assert service.get_mine(db, "web", "a", booking.code).slot_start == later.astimezone(dt.UTC)
    with pytest.raises(AppointmentError, match="closed_day"):
        service.reschedule(db, cal, "web", "a", booking.code, dt.datetime(2026, 12, 6, 9, tzinfo=VN), NOW)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0912 345 678", "+84912345678"),
        ("0912.345.678", "+84912345678"),
        ("+84 912 345 678", "+84912345678"),
        ("84912345678", "+84912345678"),
        ("024 3825 1234", "+842438251234"),
    ],
)
def test_phone_numbers_become_e164(raw: str, e164: str) -> None:
    assert service.normalize_phone(raw) == e164


@pytest.mark.parametrize("raw", ["12345", "0912", "abc", "", "+1 202 555 01"])
def test_invalid_phone_numbers(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        service.normalize_phone(raw)
    assert caught.value.reason == "invalid_phone"


def test_names_are_trimmed_and_kept_as_text() -> None:
    assert service.clean_name("  Nguyễn   Văn  An ") == "Nguyễn Văn An"
    assert service.clean_name("Nguye\u0302\u0303n") == "Nguyễn"  # decomposed input is composed
    assert service.clean_name("<b>Lê</b> & Co") == "<b>Lê</b> & Co"
    assert service.clean_name("A" * 100) == "A" * 100
    for raw, reason in [
        ("A" * 101, "name_too_long"),
        ("An\x00", "invalid_name"),
        ("An\nBình", "invalid_name"),
        ("An\u200bBình", "invalid_name"),
        ("   ", "invalid_name"),
        ("123", "invalid_name"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            service.clean_name(raw)
        assert caught.value.reason == reason, raw


def test_personal_data_needs_consent(db: Database, cal: Calendar) -> None:
    with pytest.raises(InvalidInput, match="consent_required"):
        book(db, cal, full_name="Nguyễn Văn An", phone="0912345678")
    booking = book(db, cal, full_name=" Nguyễn Văn An ", phone="0912345678", note="Mang CCCD", consent=True)
    assert booking.full_name == "Nguyễn Văn An" and booking.phone == "+84912345678"
    with db.session() as session:
        row = session.scalar(select(Appointment))
        assert row.consent_at == NOW and row.note == "Mang CCCD"
    anonymous = book(db, cal, who="b")
    assert anonymous.full_name is None
    with pytest.raises(InvalidInput, match="invalid_phone"):
        book(db, cal, who="c", phone="123", consent=True)


def test_retention_anonymises_old_appointments(db: Database, cal: Calendar) -> None:
    then = dt.datetime(2026, 8, 3, 8, 0, tzinfo=VN)
    old = service.book(
        db, cal, channel="web", external_id="a", procedure="khai_sinh",
        start=dt.datetime(2026, 8, 5, 9, 0, tzinfo=VN), now=then,
        full_name="Trần Thị B", phone="0912345678", consent=True,
    )  # fmt: skip
    recent = book(db, cal, full_name="Trần Thị B", consent=True)
    assert service.anonymise_expired(db, NOW, days=90) == 1
    assert service.anonymise_expired(db, NOW, days=90) == 0
    with db.session() as session:
        rows = {row.code: row for row in session.scalars(select(Appointment))}
    gone = rows[old.code]
    assert (gone.full_name, gone.phone, gone.note, gone.external_id) == (None, None, None, None)
    assert gone.anonymised_at == NOW and gone.procedure == "khai_sinh"  # statistics stay
    assert rows[recent.code].full_name == "Trần Thị B"


def test_delete_my_data(db: Database, cal: Calendar) -> None:
    upcoming = book(db, cal, full_name="Lê Văn C", phone="0912345678", consent=True)
    book(db, cal, who="someone-else", full_name="Khác", consent=True)
    assert service.delete_my_data(db, "web", "a", NOW) == 1
    assert service.my_appointments(db, "web", "a", NOW, upcoming_only=False) == []
    assert seats(db) == 1  # the cancelled booking's seat is free again
    with db.session() as session:
        row = session.scalar(select(Appointment).where(Appointment.code == upcoming.code))
        assert row.status == "cancelled" and row.full_name is None and row.phone is None
        other = session.scalar(select(Appointment).where(Appointment.external_id == "someone-else"))
        assert other.full_name == "Khác"
    with pytest.raises(NotFound):
        service.get_mine(db, "web", "a", upcoming.code)


def test_every_reason_has_a_vietnamese_text() -> None:
    texts = reason_texts()
    codes = {r.value for r in Reason} | {"not_understood", "invalid_date", "invalid_time"}
    codes |= {"busy", "not_found", "not_changeable", "consent_required", "invalid_phone", "invalid_name"}
    codes |= {"name_too_long", "invalid_note"}
    assert codes <= set(texts)
    text = reason_message("holiday", "Quốc khánh", WARD.placeholders())
    assert "Quốc khánh" in text and "{" not in text
    assert "{" not in reason_message("closed_day", "", WARD.placeholders())
    assert WhenError("invalid_date", "30/2").reason in texts
