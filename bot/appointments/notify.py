"""Staff group notices: new, cancelled and moved bookings posted to the staff's Telegram group.

The group (STAFF_TELEGRAM_CHAT_ID) is not role-controlled, so a notice carries the code,
procedure, time and counter only: never a name or a phone number. Sent through the outbox
(kind "staff_notice"), so a notice waits out quiet hours and survives restarts. Installed as a
listener of bot.appointments.service: whichever channel booked, the group hears of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.appointments import service
from bot.appointments.service import Booking
from bot.outbox import service as outbox
from bot.services import Services
from bot.staff.tgtexts import text
from bot.storage.db import Database

log = logging.getLogger(__name__)

KIND = "staff_notice"
EVENTS = ("booked", "cancelled", "moved")


def notice(services: Services, event: str, booking: Booking) -> dict:
    """The chat API message of one event (no personal data)."""
    ward = services.ward
    local = booking.slot_start.astimezone(ward.tz)
    procedure = services.kb.procedures.get(booking.procedure)
    counters = {counter.id: counter.name for counter in ward.counters}
    values = {
        "code": booking.code,
        "procedure": procedure.title if procedure is not None else booking.procedure,
        "time": f"{local:%H:%M}",
        "date": f"{local:%d/%m/%Y}",
        "counter": counters.get(booking.counter, booking.counter),
    }
    return {"text": text(f"notice.{event}", **values), "buttons": []}


def notice_ref(event: str, booking: Booking) -> str:
    """One notice per event and slot: a double-fired hook does not post twice."""
    return f"{event}:{booking.code}@{booking.slot_start:%Y%m%d%H%M}"


def listener(services: Services, chat_id: str) -> Callable[[Database, str, Booking], None]:
    """The service listener that enqueues a notice to `chat_id` for every booking event."""

    def staff_notice(db: Database, event: str, booking: Booking) -> None:
        if event not in EVENTS:
            return
        message = notice(services, event, booking)
        outbox.enqueue(db, "telegram", chat_id, message, kind=KIND, ref=notice_ref(event, booking))
        log.info("staff notice queued: %s", event)

    return staff_notice


def install(services: Services, chat_id: str) -> None:
    """Register the group's listener (once: an earlier one, e.g. of a previous app, is replaced)."""
    service.listeners[:] = [f for f in service.listeners if getattr(f, "__name__", "") != "staff_notice"]
    if chat_id.strip():
        service.listeners.append(listener(services, chat_id.strip()))
