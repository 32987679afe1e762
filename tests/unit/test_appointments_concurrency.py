"""Many citizens confirming the same slot at the same moment never overbook it.

Real threads, each with its own engine (as separate worker processes would have),
released together by a barrier, against a real SQLite file and a real PostgreSQL
server (DATABASE_URL_POSTGRES when set, else a throwaway cluster from
tests/support/postgres.py; skipped, saying why, only when PostgreSQL is not installed).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.appointments import service
from bot.appointments.models import Appointment, AppointmentSeat
from bot.appointments.service import AppointmentError
from bot.appointments.slots import Calendar
from bot.config.settings import PROJECT_ROOT
from bot.config.ward import AppointmentRules, load_ward
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from tests.support.postgres import _postgres_server_url, _postgres_url  # noqa: F401 - fixtures

WARD = load_ward(PROJECT_ROOT / "settings" / "ward.yml")
VN = WARD.tz
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=VN)
SLOT = dt.datetime(2026, 11, 30, 9, 0, tzinfo=VN)


def calendar(capacity: int) -> Calendar:
    rules = AppointmentRules(capacity_per_counter=capacity)
    return Calendar(WARD.model_copy(update={"appointments": rules}))


def race(url: str, citizens: list[str], cal: Calendar, key: str | None = None) -> Counter[str]:
    """Every citizen (one thread and one engine each) books SLOT at once; outcome counts."""
    outcomes: list[str] = []
    codes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(citizens))

    def attempt(who: str) -> None:
        database = Database(url)
        try:
            start.wait()
            booking = service.book(
                database, cal, channel="web", external_id=who, procedure="khai_sinh",
                start=SLOT, now=NOW, idempotency_key=key,
            )  # fmt: skip
            result = "booked"
            with lock:
                codes.append(booking.code)
        except AppointmentError as exc:
            result = exc.reason
        except Exception as exc:  # noqa: BLE001 - any other failure is a test failure, reported below
            result = f"error: {type(exc).__name__}: {exc}"
        finally:
            database.dispose()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt, args=(who,)) for who in citizens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(outcomes) == len(citizens), "a booking thread hung"
    counts = Counter(outcomes)
    counts["distinct_codes"] = len(set(codes))
    return counts


def stored(url: str) -> tuple[int, int, int]:
    """(appointments booked, seats taken for SLOT, distinct seat numbers)."""
    database = Database(url)
    with database.session() as session:
        booked = session.scalar(
            select(func.count()).select_from(Appointment).where(Appointment.status == "booked")
        )
        seats = session.scalars(
            select(AppointmentSeat.seat_no).where(AppointmentSeat.slot_start == SLOT.astimezone(dt.UTC))
        ).all()
    database.dispose()
    return booked, len(seats), len(set(seats))


def check_no_overbooking(url: str, threads: int, capacity: int) -> None:
    counts = race(url, [f"citizen-{i}" for i in range(threads)], calendar(capacity))
    assert counts["booked"] == capacity, counts
    assert counts["full"] == threads - capacity, counts
    assert counts["distinct_codes"] == capacity
    assert stored(url) == (capacity, capacity, capacity)


def check_double_confirm(url: str, threads: int) -> None:
    counts = race(url, ["same-citizen"] * threads, calendar(5), key="confirm-abc")
    assert counts["booked"] == threads, counts  # every press gets the booking ...
    assert counts["distinct_codes"] == 1  # ... and it is one booking
    assert stored(url)[:2] == (1, 1)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ward.db'}"
    upgrade(url)
    return url


@pytest.mark.parametrize(("threads", "capacity"), [(20, 2), (24, 5), (8, 1)])
def test_sqlite_same_slot_never_exceeds_capacity(sqlite_url: str, threads: int, capacity: int) -> None:
    check_no_overbooking(sqlite_url, threads, capacity)


def test_sqlite_double_pressed_confirm_at_once_books_once(sqlite_url: str) -> None:
    check_double_confirm(sqlite_url, 8)


def test_postgres_same_slot_never_exceeds_capacity(postgres_url: str) -> None:
    upgrade(postgres_url)
    check_no_overbooking(postgres_url, 24, 3)


def test_postgres_double_pressed_confirm_at_once_books_once(postgres_url: str) -> None:
    upgrade(postgres_url)
    check_double_confirm(postgres_url, 8)
