"""Booking through the chat API in integration tests: a whole booking, the rows it stored."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from bot.appointments import service
from bot.appointments.models import Appointment
from bot.appointments.slots import Calendar
from bot.config.settings import PROJECT_ROOT
from bot.config.ward import load_ward
from bot.knowledge.kb import KnowledgeBase
from bot.outbox.models import OutboxMessage
from bot.storage.db import Database, utcnow
from tests.support.appserver import AppServer
from tests.support.chat import buttons, say, text_of

WARD = load_ward(PROJECT_ROOT / "settings" / "ward.yml")
KB = KnowledgeBase(PROJECT_ROOT / "faq")
TEXTS = KB.messages["booking"]
PROCEDURE = "khai_sinh"


def rows(db: Database, sender: str, channel: str = "web") -> list[Appointment]:
    with db.session() as session:
        query = select(Appointment).where(Appointment.channel == channel, Appointment.external_id == sender)
        return list(session.scalars(query.order_by(Appointment.slot_start)))


def row_by_code(db: Database, code: str) -> Appointment:
    with db.session() as session:
        return session.scalars(select(Appointment).where(Appointment.code == code)).one()


def reminders(db: Database, code: str) -> dict[str, tuple[str, dt.datetime]]:
    """ref → (status, not_before) of the appointment's reminder rows in the outbox."""
    with db.session() as session:
        query = select(OutboxMessage.ref, OutboxMessage.status, OutboxMessage.not_before).where(
            OutboxMessage.kind == "reminder", OutboxMessage.ref.startswith(f"{code}:")
        )
        return {ref: (status, at) for ref, status, at in session.execute(query)}


def reminder_message(db: Database, code: str) -> dict[str, Any]:
    with db.session() as session:
        query = select(OutboxMessage.message).where(
            OutboxMessage.kind == "reminder", OutboxMessage.ref.startswith(f"{code}:")
        )
        return session.scalars(query).first()


def free_days(db: Database, count: int = 3, procedure: str = PROCEDURE) -> list[dt.date]:
    return Calendar(WARD).next_free_days(procedure, utcnow(), count, service.occupancy(db))


def book_by_chat(app: AppServer, db: Database, sender: str) -> Appointment:
    """A whole booking through the chat: procedure button, day button, first slot, name, phone."""
    say(app, sender, payload=f'/book_appointment{{"procedure": "{PROCEDURE}"}}')
    day = free_days(db)[-1]
    body = say(app, sender, f"{day:%d/%m}")
    body = say(app, sender, payload=next(iter(buttons(body).values())))
    assert "họ và tên" in text_of(body), text_of(body)
    say(app, sender, "Nguyễn Văn An")
    body = say(app, sender, "0912 345 678")
    body = say(app, sender, payload=buttons(body)["Đồng ý"])
    body = say(app, sender, payload=buttons(body)["Xác nhận"])
    [row] = [r for r in rows(db, sender) if r.code in text_of(body)]
    return row


def book_directly(db: Database, sender: str, day: dt.date) -> service.Booking:
    """A booking stored by the service (no chat, no reminders): the first open slot of the day."""
    calendar = Calendar(WARD)
    slot = calendar.open_slots(day, PROCEDURE, utcnow(), service.occupancy(db))[0]
    return service.book(
        db, calendar, channel="web", external_id=sender, procedure=PROCEDURE, start=slot.start
    )
