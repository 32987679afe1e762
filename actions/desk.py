"""What the booking, appointment and reminder actions share: slot names, texts and labels.

It imports no other action module, so booking, appointments, reminders and privacy can all use
it without importing one another in a circle.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from bot.appointments import reason_message
from bot.appointments.service import Booking
from bot.appointments.slots import Calendar
from bot.knowledge.answers import Reply, intent_payload
from bot.knowledge.kb import fill
from bot.services import Services

Domain = dict[str, Any]
BOOK, LIST, CANCEL = "appointment.book", "appointment.list", "appointment.cancel"
RESCHEDULE = "appointment.reschedule"
MOVE_FORM = "reschedule_form"
PROCEDURE, DATE, TIME = "booking_procedure", "booking_date", "booking_time"
NAME, PHONE, CONSENT, CONFIRM = "full_name", "phone", "booking_consent", "booking_confirm"
WISH, PART, FAILURES, CONTINUE = "booking_wish", "booking_part", "booking_failures", "booking_continue"
CODE, MOVE_CONFIRM = "reschedule_code", "reschedule_confirm"
RUN, LAST_KEY = "booking_run", "booking_key"
FORM_SLOTS = (PROCEDURE, DATE, TIME, NAME, PHONE, CONSENT, CONFIRM, WISH, PART, FAILURES, CONTINUE)
MOVE_SLOTS = (CODE, MOVE_CONFIRM, PROCEDURE, DATE, TIME, WISH, PART, FAILURES, CONTINUE)


def text(services: Services, key: str, **values: str) -> str:
    template = str(services.kb.messages["booking"][key])
    return fill(template, {**services.ward.placeholders(), **values}).strip()


def reason(services: Services, reason: str, detail: str = "") -> str:
    return reason_message(reason, detail, services.ward.placeholders())


def calendar(services: Services) -> Calendar:
    return Calendar(services.ward)


def day_label(services: Services, day: dt.date) -> str:
    return f"{services.kb.messages['booking']['weekdays'][day.weekday()]} {day:%d/%m}"


def when_label(services: Services, start: dt.datetime) -> str:
    local = start.astimezone(services.ward.tz)
    return f"{local:%H:%M} {day_label(services, local.date())}/{local:%Y}"


def procedure_title(services: Services, procedure: str) -> str:
    found = services.kb.procedures.get(procedure)
    return found.title if found else procedure


def counter_name(services: Services, counter_id: str) -> str:
    return next((c.name for c in services.ward.counters if c.id == counter_id), counter_id)


def slot_start(services: Services, day: str | None, clock: str | None) -> dt.datetime | None:
    if not day or not clock:
        return None
    return dt.datetime.combine(
        dt.date.fromisoformat(day), dt.time.fromisoformat(clock), tzinfo=services.ward.tz
    )


def entity(tracker: Tracker, name: str) -> str | None:
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == name and entity.get("value"):
            return str(entity["value"])
    return None


def booking_cleared() -> list[EventType]:
    """The form's slots emptied (name and phone leave the conversation) and no booking to repeat."""
    return [SlotSet(slot, None) for slot in (*FORM_SLOTS, RUN, LAST_KEY)]


def reschedule_cleared() -> list[EventType]:
    return [SlotSet(slot, None) for slot in MOVE_SLOTS]


def book_button(services: Services) -> dict[str, str]:
    return {"title": text(services, "book_button"), "payload": intent_payload("book_appointment")}


def nothing_booked(services: Services) -> Reply:
    """The citizen has no upcoming appointment: say so and offer to book one."""
    return Reply(text(services, "list_empty"), [book_button(services)])


def list_lines(services: Services, bookings: list[Booking]) -> list[str]:
    return [
        text(
            services,
            "list_item",
            code=b.code,
            procedure=procedure_title(services, b.procedure),
            when=when_label(services, b.slot_start),
            counter=counter_name(services, b.counter),
        )
        for b in bookings
    ]


def move_buttons(services: Services, bookings: list[Booking]) -> list[dict[str, str]]:
    return [
        {
            "title": text(services, "move_button", code=b.code),
            "payload": intent_payload("reschedule_appointment", code=b.code),
        }
        for b in bookings
    ]
