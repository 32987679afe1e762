"""Appointment tables: the booking itself and the seats that make overbooking impossible.

`appointment_seats` holds one row per taken seat of a slot at a counter, with a unique
constraint on (counter, slot_start, seat_no); the service only hands out seat numbers
1..capacity, so the database itself refuses a (capacity+1)-th booking of a slot however
many citizens confirm at the same moment (see bot/appointments/service.py).

Personal fields (full_name, phone, note) are filled only with consent (consent_at) and
are cleared, together with the link to the channel user, when the appointment is
anonymised (anonymised_at).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base

STATUSES = ("booked", "arrived", "served", "no_show", "cancelled")


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", "idempotency_key"),
        CheckConstraint("status IN ('booked', 'arrived', 'served', 'no_show', 'cancelled')", name="status"),
        Index("ix_appointments_citizen", "channel", "external_id"),
        Index("ix_appointments_slot", "counter", "slot_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(64))  # None once anonymised
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    procedure: Mapped[str] = mapped_column(String(64))
    counter: Mapped[str] = mapped_column(String(32))
    slot_start: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), default="booked")
    full_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    note: Mapped[str | None] = mapped_column(Text)
    consent_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    anonymised_at: Mapped[dt.datetime | None]
    confirmed_at: Mapped[dt.datetime | None]  # "Tôi sẽ đến" under a reminder; cleared by a move


class AppointmentSeat(Base):
    """One taken seat of a slot at a counter; deleted when the appointment is cancelled or moved."""

    __tablename__ = "appointment_seats"
    __table_args__ = (UniqueConstraint("counter", "slot_start", "seat_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    counter: Mapped[str] = mapped_column(String(32))
    slot_start: Mapped[dt.datetime]
    seat_no: Mapped[int]
    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), unique=True
    )
