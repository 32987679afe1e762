"""Booking at the one-stop desk through /api/chat with the real Rasa server: form, list, cancel."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.appointments import service
from bot.appointments.models import Appointment
from bot.appointments.slots import Calendar
from bot.config.settings import PROJECT_ROOT
from bot.config.ward import load_ward
from bot.outbox.models import OutboxMessage
from bot.storage.db import Database, utcnow
from tests.support.appserver import AppServer
from tests.support.chat import buttons, say, text_of, user

pytestmark = pytest.mark.integration
WARD = load_ward(PROJECT_ROOT / "settings" / "ward.yml")
PROCEDURE = "khai_sinh"


def rows(db: Database, sender: str) -> list[Appointment]:
    with db.session() as session:
        query = select(Appointment).where(Appointment.channel == "web", Appointment.external_id == sender)
        return list(session.scalars(query))


def reminders(db: Database, code: str) -> dict[str, str]:
    """ref → status of the booking's reminder rows in the outbox."""
    with db.session() as session:
        query = select(OutboxMessage.ref, OutboxMessage.status).where(
            OutboxMessage.kind == "reminder", OutboxMessage.ref.startswith(f"{code}:")
        )
        return {ref: status for ref, status in session.execute(query)}


def free_day(db: Database) -> str:
    """A day with a free slot, from the ward's calendar, as the citizen types it ("03/12")."""
    days = Calendar(WARD).next_free_days(PROCEDURE, utcnow(), 2, service.occupancy(db))
    return f"{days[-1]:%d/%m}"


def up_to_name(app: AppServer, db: Database, sender: str) -> dict[str, Any]:
    """Procedure by the knowledge-base button, a typed free day, the first slot button."""
    body = say(app, sender, "đặt lịch hẹn")
    assert body["topic"] == "appointment.book"
    assert f'/book_appointment{{"procedure": "{PROCEDURE}"}}' in buttons(body).values()
    body = say(app, sender, payload=f'/book_appointment{{"procedure": "{PROCEDURE}"}}')
    assert body["topic"] == "appointment.book" and buttons(body)  # day buttons
    body = say(app, sender, free_day(db))
    assert body["topic"] == "appointment.book"
    slots = buttons(body)
    assert slots, text_of(body)
    return say(app, sender, payload=next(iter(slots.values())))


def test_happy_path_double_confirm_list_and_cancel(app: AppServer, db: Database) -> None:
    sender = user()
    body = up_to_name(app, db, sender)
    assert body["topic"] == "appointment.book" and "họ và tên" in text_of(body)
    body = say(app, sender, "Nguyễn Văn An")
    assert "số điện thoại" in text_of(body)
    body = say(app, sender, "0912 345 678")
    assert "đồng ý" in text_of(body).lower()
    assert rows(db, sender) == []  # nothing before consent and confirmation
    body = say(app, sender, payload=buttons(body)["Đồng ý"])
    assert "Nguyễn Văn An" in text_of(body) and "+84912345678" in text_of(body)
    confirm = buttons(body)["Xác nhận"]
    body = say(app, sender, payload=confirm)
    assert body["topic"] == "appointment.book"
    [row] = rows(db, sender)
    assert row.status == "booked" and row.procedure == PROCEDURE
    assert row.full_name == "Nguyễn Văn An" and row.phone == "+84912345678" and row.consent_at
    assert row.code in text_of(body) and "Giấy tờ cần mang theo" in text_of(body)

    queued = reminders(db, row.code)
    assert f"{row.code}:hours_before" in queued and set(queued.values()) == {"queued"}
    assert set(queued) <= {f"{row.code}:day_before", f"{row.code}:hours_before"}

    again = say(app, sender, payload=confirm)  # a double press books nothing more
    assert len(rows(db, sender)) == 1 and row.code in text_of(again)

    body = say(app, sender, "lịch hẹn của tôi")
    assert body["topic"] == "appointment.list" and row.code in text_of(body)
    cancel = buttons(body)[f"Hủy {row.code}"]

    stranger = user()  # another citizen neither sees nor cancels it
    body = say(app, stranger, "xem lịch hẹn")
    assert body["topic"] == "appointment.list" and row.code not in text_of(body)
    body = say(app, stranger, payload=cancel)
    assert body["topic"] == "appointment.cancel"
    assert rows(db, sender)[0].status == "booked"

    body = say(app, sender, payload=cancel)
    assert body["topic"] == "appointment.cancel" and row.code in text_of(body)
    assert rows(db, sender)[0].status == "cancelled"
    assert set(reminders(db, row.code).values()) == {"cancelled"}
    body = say(app, sender, "lịch hẹn của tôi")
    assert row.code not in text_of(body)


def test_consent_refused_stores_nothing(app: AppServer, db: Database) -> None:
    sender = user()
    up_to_name(app, db, sender)
    body = say(app, sender, "Phạm Thị Dung")  # a name the classifier reads as a weak "stop"
    assert "số điện thoại" in text_of(body), text_of(body)
    body = say(app, sender, "0987654321")
    body = say(app, sender, payload=buttons(body)["Không đồng ý"])
    assert body["topic"] == "appointment.book" and "không lưu" in text_of(body)
    assert rows(db, sender) == []


def test_impossible_date_and_invalid_phone_are_asked_again(app: AppServer, db: Database) -> None:
    sender = user()
    say(app, sender, payload=f'/book_appointment{{"procedure": "{PROCEDURE}"}}')
    body = say(app, sender, "30/2")
    assert body["topic"] == "appointment.book"
    assert "30/2 không có trên lịch" in text_of(body) and buttons(body)  # the reason, days offered again
    day = free_day(db)
    body = say(app, sender, day)
    first = next(iter(buttons(body)))  # "14:30" typed the Vietnamese way: "14h30"
    hour, minute = first.split(":")
    body = say(app, sender, f"{int(hour)}h{minute}")
    assert "họ và tên" in text_of(body), text_of(body)
    body = say(app, sender, "Lê Văn Cường")
    body = say(app, sender, "12345")
    assert "Số điện thoại chưa đúng" in text_of(body) and "số điện thoại" in text_of(body)
    body = say(app, sender, "thôi")
    assert body["topic"] == "appointment.book" and "dừng đặt lịch" in text_of(body)
    assert rows(db, sender) == []
    body = say(app, sender, "lịch hẹn của tôi")  # the form is over: a normal turn
    assert body["topic"] == "appointment.list"


def test_a_question_mid_form_is_answered_and_the_form_goes_on(app: AppServer, db: Database) -> None:
    sender = user()
    body = up_to_name(app, db, sender)
    assert "họ và tên" in text_of(body)
    body = say(app, sender, "làm căn cước cần mang những giấy tờ gì")
    answer = text_of(body)
    assert "CẤP THẺ CĂN CƯỚC" in answer.upper() or "căn cước" in answer.lower()
    assert "tiếp tục đặt lịch" in answer and "họ và tên" in answer  # answered, then the form re-asks
    body = say(app, sender, "Trần Thị Bình")
    assert "số điện thoại" in text_of(body)
