"""The citizen's own appointments: list, cancel, confirm attendance, and moving one (`reschedule_form`).

Moving reuses the booking form's day and slot questions and validation, hence
ValidateRescheduleForm extends actions.booking.ValidateBookingForm. Only the citizen's own codes
are acted on: anyone else's gets the same "not found", no hint.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions import desk
from actions.booking import ValidateBookingForm
from actions.common import send
from actions.desk import (
    CANCEL,
    CODE,
    CONTINUE,
    DATE,
    LIST,
    MOVE_CONFIRM,
    PROCEDURE,
    RESCHEDULE,
    TIME,
    Domain,
    reschedule_cleared,
)
from actions.reminders import cancel_reminders, queue_reminders
from actions.senders import channel_user
from bot.appointments import service
from bot.appointments.service import AppointmentError, Booking
from bot.knowledge.answers import Reply, intent_payload
from bot.services import Services, get_services
from bot.storage.db import utcnow
from nlu.normalize import fold

NO_APPOINTMENT, NOT_FOUND = "-", "?"  # reschedule_code when there is nothing to move (ends the form)
_CODE_TEXT = re.compile(r"^\s*([A-Za-z0-9]{3}[\s-]?[A-Za-z0-9]{3})\s*$")
# "dời lịch sang thứ 6", "doi hen qua chieu mai": the preposition, not "sáng" (folded text)
_MOVE_TO = re.compile(r"(?:^|\b(?:lich|hen|gio|ngay)\s+)(?:sang|qua)\s+(?=\S)")


class ValidateRescheduleForm(ValidateBookingForm):
    """Moving an appointment: which one (own appointments only), then the booking form's day and
    slot questions with the same extraction and validation, then the confirmation."""

    def name(self) -> str:
        return "validate_reschedule_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[str]:
        if tracker.get_slot(CODE) in (NO_APPOINTMENT, NOT_FOUND):  # nothing to move: the form ends
            return [CODE]
        return await super().required_slots(domain_slots, dispatcher, tracker, domain)

    def when_text(self, text: str) -> str:
        folded = fold(text)
        match = _MOVE_TO.search(folded)
        if match is None:
            return text
        keep = folded[match.start() : match.end()].split()[:-1]  # "lich sang " → "lich "
        cut = match.start() + (len(" ".join(keep)) + 1 if keep else 0)
        if len(folded) != len(text) or text[cut : match.end()].strip().lower() not in ("sang", "qua"):
            return text  # "sáng" written with its diacritics is the morning
        return text[:cut] + text[match.end() :]  # fold keeps offsets: one letter per letter

    async def extract_reschedule_code(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        requested = tracker.get_slot("requested_slot")
        if requested not in (None, CODE) or tracker.get_slot(CODE):
            return {}
        code = desk.entity(tracker, "code")
        typed = _CODE_TEXT.match(tracker.latest_message.get("text") or "")
        if code is None and requested == CODE and typed:
            code = typed.group(1)
        if code:
            return {CODE: code}
        if requested == CODE:
            return {CODE: ""}  # not a code: refused, the list shown again
        services = get_services()
        channel, external_id = channel_user(tracker)
        mine = await asyncio.to_thread(service.my_appointments, services.db, channel, external_id)
        if not mine:
            return {CODE: NO_APPOINTMENT}
        return {CODE: mine[0].code} if len(mine) == 1 else {}

    async def validate_reschedule_code(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        services = get_services()
        if value in (NO_APPOINTMENT, NOT_FOUND):
            return {CODE: value}
        if not value:
            dispatcher.utter_message(text=desk.text(services, "reschedule_pick_again"))
            return {CODE: None}
        channel, external_id = channel_user(tracker)
        try:
            booking = await asyncio.to_thread(service.get_mine, services.db, channel, external_id, str(value))
            if booking.status != "booked":
                raise AppointmentError("not_changeable", booking.status)
            if booking.slot_start < utcnow():
                raise AppointmentError("past")
        except AppointmentError as exc:  # another citizen's code is "not found" too: no hint
            dispatcher.utter_message(text=desk.reason(services, exc.reason, exc.detail))
            return {CODE: NOT_FOUND}
        return {
            CODE: booking.code,
            PROCEDURE: booking.procedure,
            **await self._wish(booking.procedure, dispatcher, tracker, domain),
        }

    async def validate_reschedule_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        return {MOVE_CONFIRM: bool(value)}


# --- list and cancel ------------------------------------------------------------------------


def _cancel_buttons(services: Services, bookings: list[Booking]) -> list[dict[str, str]]:
    return [
        {
            "title": desk.text(services, "cancel_button", code=b.code),
            "payload": intent_payload("cancel_appointment", code=b.code),
        }
        for b in bookings
    ]


def _list_buttons(services: Services, bookings: list[Booking]) -> list[dict[str, str]]:
    """ "Đổi lịch <code>" and "Hủy <code>" for each appointment."""
    moves, cancels = desk.move_buttons(services, bookings), _cancel_buttons(services, bookings)
    return [button for pair in zip(moves, cancels, strict=True) for button in pair]


class ActionListAppointments(Action):
    """The citizen's own upcoming appointments, with a cancel button for each."""

    def name(self) -> str:
        return "action_list_appointments"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        channel, external_id = channel_user(tracker)
        mine = await asyncio.to_thread(service.my_appointments, services.db, channel, external_id)
        if not mine:
            send(dispatcher, tracker, LIST, desk.nothing_booked(services))
            return []
        text = "\n".join([desk.text(services, "list_header"), *desk.list_lines(services, mine)])
        send(dispatcher, tracker, LIST, Reply(text, _list_buttons(services, mine)))
        return []


class ActionCancelAppointment(Action):
    """Cancel one of the citizen's own appointments, chosen by a button of their list."""

    def name(self) -> str:
        return "action_cancel_appointment"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        channel, external_id = channel_user(tracker)
        code = desk.entity(tracker, "code")
        if code:
            try:
                booking = await asyncio.to_thread(service.cancel, services.db, channel, external_id, code)
            except AppointmentError as exc:
                send(dispatcher, tracker, CANCEL, Reply(desk.reason(services, exc.reason, exc.detail)))
                return []
            await asyncio.to_thread(cancel_reminders, services, booking.code)
            when = desk.when_label(services, booking.slot_start)
            send(
                dispatcher,
                tracker,
                CANCEL,
                Reply(desk.text(services, "cancelled", code=booking.code, when=when)),
            )
            return []
        mine = await asyncio.to_thread(service.my_appointments, services.db, channel, external_id)
        if not mine:
            send(dispatcher, tracker, CANCEL, desk.nothing_booked(services))
            return []
        text = "\n".join([desk.text(services, "cancel_pick"), *desk.list_lines(services, mine)])
        send(dispatcher, tracker, CANCEL, Reply(text, _cancel_buttons(services, mine)))
        return []


# --- moving an appointment ------------------------------------------------------------------


class ActionSubmitReschedule(Action):
    """After reschedule_form: move the appointment and its reminders, or say it stays as it is."""

    def name(self) -> str:
        return "action_submit_reschedule"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        channel, external_id = channel_user(tracker)
        code = tracker.get_slot(CODE)
        if code == NOT_FOUND:  # the reason was given by the validation: nothing more to say
            send(dispatcher, tracker, RESCHEDULE)
        elif code == NO_APPOINTMENT or not code:
            send(dispatcher, tracker, RESCHEDULE, desk.nothing_booked(services))
        elif tracker.get_slot(CONTINUE) is False:
            send(dispatcher, tracker, RESCHEDULE, Reply(desk.text(services, "reschedule_stopped")))
        elif not tracker.get_slot(MOVE_CONFIRM):
            send(dispatcher, tracker, RESCHEDULE, Reply(desk.text(services, "reschedule_kept", code=code)))
        else:
            await self._move(dispatcher, tracker, services, channel, external_id, str(code))
        return reschedule_cleared()

    async def _move(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        services: Services,
        channel: str,
        external_id: str,
        code: str,
    ) -> None:
        start = desk.slot_start(services, tracker.get_slot(DATE), tracker.get_slot(TIME))
        try:
            assert start is not None
            booking = await asyncio.to_thread(
                service.reschedule, services.db, desk.calendar(services), channel, external_id, code, start
            )
        except AppointmentError as exc:
            text = (
                desk.text(services, "reschedule_failed") + " " + desk.reason(services, exc.reason, exc.detail)
            )
            again = {
                "title": desk.text(services, "move_button", code=code),
                "payload": intent_payload("reschedule_appointment", code=code),
            }
            send(dispatcher, tracker, RESCHEDULE, Reply(text, [again]))
            return
        await asyncio.to_thread(cancel_reminders, services, booking.code)
        await asyncio.to_thread(queue_reminders, services, channel, external_id, booking, moved=True)
        text = desk.text(
            services,
            "rescheduled",
            code=booking.code,
            procedure=desk.procedure_title(services, booking.procedure),
            when=desk.when_label(services, booking.slot_start),
            counter=desk.counter_name(services, booking.counter),
        )
        send(dispatcher, tracker, RESCHEDULE, Reply(text))


class ActionRescheduleStop(Action):
    """ "thôi" inside reschedule_form: leave it, the appointment stays as it is."""

    def name(self) -> str:
        return "action_reschedule_stop"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        send(dispatcher, tracker, RESCHEDULE, Reply(desk.text(get_services(), "reschedule_stopped")))
        return reschedule_cleared()


class ActionConfirmAppointment(Action):
    """ "Tôi sẽ đến" under a reminder (or typed): recorded (`confirmed_at`) and answered."""

    def name(self) -> str:
        return "action_confirm_appointment"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        channel, external_id = channel_user(tracker)
        code = desk.entity(tracker, "code")
        if code is None:
            mine = await asyncio.to_thread(service.my_appointments, services.db, channel, external_id)
            if len(mine) != 1:  # none or several: the list, with its buttons
                await ActionListAppointments().run(dispatcher, tracker, domain)
                return []
            code = mine[0].code
        try:
            booking = await asyncio.to_thread(
                service.confirm_attendance, services.db, channel, external_id, code
            )
        except AppointmentError as exc:  # past, cancelled or someone else's: "not found", no hint
            send(dispatcher, tracker, LIST, Reply(desk.reason(services, exc.reason, exc.detail)))
            return []
        when = desk.when_label(services, booking.slot_start)
        text = desk.text(services, "attendance_confirmed", code=booking.code, when=when)
        send(dispatcher, tracker, LIST, Reply(text, desk.move_buttons(services, [booking])))
        return []
