"""A booking's reminders: when they are due, and their outbox rows queued or cancelled.

Its own module because booking, moving, cancelling and deleting one's data (actions.privacy) all
change reminders, and the outbox, not the chat turn, sends them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from actions import desk
from bot.appointments.service import Booking
from bot.config.ward import Ward
from bot.knowledge.answers import intent_payload
from bot.outbox import service as outbox
from bot.outbox.models import OutboxMessage
from bot.services import Services
from bot.storage.db import utcnow

REMINDER_KIND = "reminder"


def reminder_times(ward: Ward, slot_start: dt.datetime, now: dt.datetime) -> dict[str, dt.datetime]:
    """When each reminder of a booking is due (aware UTC); reminders already past are left out.

    day_before: at `reminder_hour_day_before` (ward time) the day before the appointment;
    hours_before: `reminder_hours_before` hours before it.
    """
    rules = ward.appointments
    local = slot_start.astimezone(ward.tz)
    day_before = dt.datetime.combine(
        local.date() - dt.timedelta(days=1), dt.time(rules.reminder_hour_day_before), tzinfo=ward.tz
    )
    times = {
        "day_before": day_before.astimezone(dt.UTC),
        "hours_before": (local - dt.timedelta(hours=rules.reminder_hours_before)).astimezone(dt.UTC),
    }
    return {name: at for name, at in times.items() if at > now}


def _reminder_buttons(services: Services, code: str) -> list[dict[str, str]]:
    """Under a reminder: "I will come", "move", "cancel" for that appointment."""
    return [
        {
            "title": desk.text(services, "confirm_button"),
            "payload": intent_payload("confirm_appointment", code=code),
        },
        {
            "title": desk.text(services, "move_button", code=code),
            "payload": intent_payload("reschedule_appointment", code=code),
        },
        {
            "title": desk.text(services, "cancel_button", code=code),
            "payload": intent_payload("cancel_appointment", code=code),
        },
    ]


def queue_reminders(
    services: Services, channel: str, external_id: str, booking: Booking, *, moved: bool = False
) -> None:
    """Queue the booking's reminders in the outbox (idempotent on kind and ref).

    Refs are "<code>:<name>"; after a move "<code>:<name>:<when moved>", so that the rows of the
    new time are new rows (the old ones were cancelled and stay as they are).
    """
    values = {
        "code": booking.code,
        "procedure": desk.procedure_title(services, booking.procedure),
        "when": desk.when_label(services, booking.slot_start),
        "counter": desk.counter_name(services, booking.counter),
    }
    suffix = f":{utcnow():%Y%m%d%H%M%S}" if moved else ""
    for name, at in reminder_times(services.ward, booking.slot_start, utcnow()).items():
        message = {
            "text": desk.text(services, f"reminder_{name}", **values),
            "buttons": _reminder_buttons(services, booking.code),
        }
        outbox.enqueue(
            services.db,
            channel,
            external_id,
            message,
            kind=REMINDER_KIND,
            ref=f"{booking.code}:{name}{suffix}",
            not_before=at,
        )


def cancel_reminders(services: Services, code: str) -> None:
    """A cancelled or moved appointment is not reminded at the old time: its queued rows are cancelled."""
    with services.db.session() as session:
        refs = set(
            session.scalars(
                select(OutboxMessage.ref).where(
                    OutboxMessage.kind == REMINDER_KIND,
                    OutboxMessage.ref.startswith(f"{code}:"),
                    OutboxMessage.status == "queued",
                )
            )
        )
    for ref in sorted(r for r in refs if r):
        outbox.cancel(services.db, REMINDER_KIND, ref)
