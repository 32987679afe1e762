"""Booking at the one-stop desk from the chat: `booking_form`, its validation, list and cancel.

The form (domain.yml) asks, in order: the procedure (desk procedures only: those a ward
counter lists), the day, the time slot, the full name, the phone number, the consent to
keep name and phone for this appointment, and the confirmation. `validate_booking_form`
reads the citizen's words with bot.appointments (parse_when, Calendar) and explains every
refusal with the texts of faq/appointments.yml. Day and slot buttons carry the `when`
entity ("2026-12-01" or "2026-12-01T08:00") on a /book_appointment payload.

Every ask action and the closing actions end their reply with the meta message
(actions.common.send); the validation action only adds refusal texts before the ask.
Nothing personal is stored without consent; names and phone numbers are never logged
and are cleared from the conversation's slots once the form ends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import ActionAnswer
from actions.common import aspects_in, send
from actions.senders import channel_user
from bot.appointments import reason_message, service
from bot.appointments.dates import WhenError, parse_when
from bot.appointments.service import AppointmentError, Booking
from bot.appointments.slots import Calendar
from bot.config.ward import Ward
from bot.knowledge.answers import Reply, intent_payload
from bot.knowledge.kb import fill
from bot.outbox import service as outbox
from bot.services import Services, get_services
from bot.storage.db import utcnow

Domain = dict[str, Any]
BOOK, LIST, CANCEL = "appointment.book", "appointment.list", "appointment.cancel"
FORM = "booking_form"
PROCEDURE, DATE, TIME = "booking_procedure", "booking_date", "booking_time"
NAME, PHONE, CONSENT, CONFIRM = "full_name", "phone", "booking_consent", "booking_confirm"
RUN, LAST_KEY = "booking_run", "booking_key"
FORM_SLOTS = (PROCEDURE, DATE, TIME, NAME, PHONE, CONSENT, CONFIRM)
DAY_BUTTONS, TIME_BUTTONS = 6, 12
_ISO_WHEN = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}))?$")


# --- shared helpers -----------------------------------------------------------------


def _text(services: Services, key: str, **values: str) -> str:
    template = str(services.kb.messages["booking"][key])
    return fill(template, {**services.ward.placeholders(), **values}).strip()


def _reason(services: Services, reason: str, detail: str = "") -> str:
    return reason_message(reason, detail, services.ward.placeholders())


def _calendar(services: Services) -> Calendar:
    return Calendar(services.ward)


def _day_label(services: Services, day: dt.date) -> str:
    return f"{services.kb.messages['booking']['weekdays'][day.weekday()]} {day:%d/%m}"


def _when_label(services: Services, start: dt.datetime) -> str:
    local = start.astimezone(services.ward.tz)
    return f"{local:%H:%M} {_day_label(services, local.date())}/{local:%Y}"


def _procedure_title(services: Services, procedure: str) -> str:
    found = services.kb.procedures.get(procedure)
    return found.title if found else procedure


def _counter_name(services: Services, counter_id: str) -> str:
    return next((c.name for c in services.ward.counters if c.id == counter_id), counter_id)


def _start(services: Services, day: str | None, clock: str | None) -> dt.datetime | None:
    if not day or not clock:
        return None
    return dt.datetime.combine(
        dt.date.fromisoformat(day), dt.time.fromisoformat(clock), tzinfo=services.ward.tz
    )


def _entity(tracker: Tracker, name: str) -> str | None:
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == name and entity.get("value"):
            return str(entity["value"])
    return None


STOP_SURE = 0.6  # below this, a "stop" typed where a name or phone is asked is read as the answer


def _stop_intent(tracker: Tracker) -> tuple[bool, float]:
    intent = tracker.latest_message.get("intent") or {}
    return intent.get("name") == "stop", float(intent.get("confidence") or 0.0)


def _stopping(tracker: Tracker) -> bool:
    """The citizen leaves the form ("thôi", "hủy", /huy); a name the classifier took for "stop"
    with low confidence ("Phạm Thị Dung") is not a stop."""
    stop, confidence = _stop_intent(tracker)
    return stop and (confidence >= STOP_SURE or tracker.get_slot("requested_slot") not in (NAME, PHONE))


def _cleared() -> list[EventType]:
    """The form's slots emptied (name and phone leave the conversation) and no booking to repeat."""
    return [SlotSet(slot, None) for slot in (*FORM_SLOTS, RUN, LAST_KEY)]


# --- the form's validation ------------------------------------------------------------


QUESTION_CONFIDENCE = 0.6


def _is_question(tracker: Tracker) -> bool:
    """A confident question about one aspect of a procedure, not an answer to the form.

    Names and phone numbers are never classified as a procedure with an aspect,
    so requiring both keeps answers like "Phạm Thị Dung" out.
    """
    intent = tracker.latest_message.get("intent") or {}
    catalog = get_services().kb.catalog
    return (
        catalog.procedure_for_intent(intent.get("name")) is not None
        and float(intent.get("confidence") or 0) >= QUESTION_CONFIDENCE
        and bool(aspects_in(tracker))
    )


def _answer_question(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    _, replies, _ = ActionAnswer().compose(tracker)
    for reply in replies:
        dispatcher.utter_message(text=reply.text)  # no buttons: the form's question follows
    dispatcher.utter_message(text=_text(get_services(), "after_question"))
    requested = tracker.get_slot("requested_slot")
    return [SlotSet(str(requested), None)] if requested else []


class ValidateBookingForm(FormValidationAction):
    """Extracts the procedure, day and slot (custom mappings) and validates every answer."""

    def name(self) -> str:
        return "validate_booking_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        if _stopping(tracker):
            return []  # nothing extracted: the form rejects and the stop rule runs
        if _is_question(tracker):  # "cần mang gì?" mid-form: answer it, then ask the same slot again
            return _answer_question(dispatcher, tracker)
        if _stop_intent(tracker)[0]:  # an unsure "stop" answering the name or phone: the answer
            requested = str(tracker.get_slot("requested_slot"))
            validate = getattr(self, f"validate_{requested}")
            answer = await validate(tracker.latest_message.get("text") or "", dispatcher, tracker, domain)
            return [SlotSet(slot, value) for slot, value in answer.items()]
        events = await super().run(dispatcher, tracker, domain)
        if tracker.get_slot(RUN) is None:  # the form's first turn: a new run id for idempotency
            events.insert(0, SlotSet(RUN, uuid.uuid4().hex))
        return events

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[str]:
        if tracker.get_slot(CONSENT) is False and CONSENT in domain_slots:  # refused: the form ends
            return domain_slots[: domain_slots.index(CONSENT) + 1]
        return domain_slots

    # extraction (custom mappings) ----------------------------------------------------

    async def extract_booking_procedure(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        requested = tracker.get_slot("requested_slot")
        if requested not in (None, PROCEDURE) or tracker.get_slot(PROCEDURE):
            return {}
        procedure = _entity(tracker, "procedure")
        if procedure is None:
            intent = tracker.get_intent_of_latest_message() or ""
            procedure = get_services().kb.catalog.procedure_for_intent(intent)
        if procedure:
            return {PROCEDURE: procedure}
        # asked and not understood: "" is refused by the validation, which asks again
        return {PROCEDURE: ""} if requested == PROCEDURE else {}

    async def extract_booking_date(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != DATE:
            return {}
        return {DATE: _entity(tracker, "when") or tracker.latest_message.get("text") or ""}

    async def extract_booking_time(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != TIME:
            return {}
        return {TIME: _entity(tracker, "when") or tracker.latest_message.get("text") or ""}

    # validation ------------------------------------------------------------------------

    async def validate_booking_procedure(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        services = get_services()
        if not value:
            dispatcher.utter_message(text=_text(services, "pick_procedure"))
            return {PROCEDURE: None}
        if _calendar(services).counter_for(str(value)) is None:
            dispatcher.utter_message(text=_reason(services, "unknown_procedure"))
            return {PROCEDURE: None}
        return {PROCEDURE: str(value)}

    async def validate_booking_date(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        services = get_services()
        procedure = tracker.get_slot(PROCEDURE)
        now = utcnow()
        try:
            day, clock, week = await _read_when(services, str(value or ""), now)
        except WhenError as exc:
            dispatcher.utter_message(text=_reason(services, exc.reason, exc.detail))
            return {DATE: None}
        if day is None:
            dispatcher.utter_message(text=_text(services, "need_day"))
            return {DATE: None}
        calendar = _calendar(services)
        occupancy = service.occupancy(services.db)
        if week:  # "tuần sau": the first day of that week with a free slot
            days = [day + dt.timedelta(days=i) for i in range(7)]
            free = [d for d in days if (await _check_day(calendar, procedure, d, now, occupancy)).ok]
            if free:
                dispatcher.utter_message(text=_text(services, "week_day", day=_day_label(services, free[0])))
                day = free[0]
        verdict = await _check_day(calendar, procedure, day, now, occupancy)
        if not verdict.ok:
            assert verdict.reason is not None
            dispatcher.utter_message(text=_reason(services, verdict.reason.value, verdict.detail))
            return {DATE: None}
        result: dict[str, Any] = {DATE: day.isoformat()}
        if clock is not None:  # "mai 9h": the slot too, when it is bookable
            start = dt.datetime.combine(day, clock, tzinfo=services.ward.tz)
            check = await asyncio.to_thread(calendar.check, procedure, start, now, occupancy)
            if check.ok:
                result[TIME] = f"{clock:%H:%M}"
            else:
                assert check.reason is not None
                dispatcher.utter_message(text=_reason(services, check.reason.value, check.detail))
        return result

    async def validate_booking_time(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        services = get_services()
        procedure = tracker.get_slot(PROCEDURE)
        now = utcnow()
        day_text = tracker.get_slot(DATE)
        try:
            day, clock, _week = await _read_when(services, str(value or ""), now)
        except WhenError as exc:
            dispatcher.utter_message(text=_reason(services, exc.reason, exc.detail))
            return {TIME: None}
        if clock is None:
            dispatcher.utter_message(text=_text(services, "need_time"))
            return {TIME: None}
        day = day or (dt.date.fromisoformat(day_text) if day_text else None)
        if day is None:
            return {TIME: None, DATE: None}
        start = dt.datetime.combine(day, clock, tzinfo=services.ward.tz)
        calendar = _calendar(services)
        verdict = await asyncio.to_thread(
            calendar.check, procedure, start, now, service.occupancy(services.db)
        )
        if not verdict.ok:
            assert verdict.reason is not None
            dispatcher.utter_message(text=_reason(services, verdict.reason.value, verdict.detail))
            return {TIME: None}
        return {TIME: f"{clock:%H:%M}", DATE: day.isoformat()}

    async def validate_full_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        try:
            return {NAME: service.clean_name(str(value or ""))}
        except service.InvalidInput as exc:
            dispatcher.utter_message(text=_reason(get_services(), exc.reason, exc.detail))
            return {NAME: None}

    async def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        try:
            return {PHONE: service.normalize_phone(str(value or ""))}
        except service.InvalidInput as exc:
            dispatcher.utter_message(text=_reason(get_services(), exc.reason, exc.detail))
            return {PHONE: None}

    async def validate_booking_consent(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        return {CONSENT: bool(value)}

    async def validate_booking_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        return {CONFIRM: bool(value)}


async def _read_when(
    services: Services, text: str, now: dt.datetime
) -> tuple[dt.date | None, dt.time | None, bool]:
    """(day, time, a whole week) from a button's ISO value or the citizen's words."""
    match = _ISO_WHEN.match(text.strip())
    if match:
        day = dt.date.fromisoformat(match.group(1))
        clock = dt.time.fromisoformat(match.group(2)) if match.group(2) else None
        return day, clock, False
    when = parse_when(text, now, services.ward.tz)
    return when.date, when.time, when.precision == "week"


async def _check_day(calendar: Calendar, procedure: str, day: dt.date, now: dt.datetime, occupancy: Any):
    return await asyncio.to_thread(calendar.check_day, procedure, day, now, occupancy)


# --- the form's questions ---------------------------------------------------------------


class _Ask(Action):
    slot = ""

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        reply = await self.question(services, tracker)
        send(dispatcher, tracker, BOOK, reply)
        return []

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        return Reply(_text(services, f"ask_{self.slot}"))


class ActionAskBookingProcedure(_Ask):
    slot = PROCEDURE

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        buttons = [
            {
                "title": _procedure_title(services, procedure),
                "payload": intent_payload("book_appointment", procedure=procedure),
            }
            for counter in services.ward.counters
            for procedure in counter.procedures
        ]
        return Reply(_text(services, "ask_procedure"), buttons)


class ActionAskBookingDate(_Ask):
    slot = DATE

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        procedure = tracker.get_slot(PROCEDURE)
        days = await asyncio.to_thread(
            _calendar(services).next_free_days,
            procedure,
            utcnow(),
            DAY_BUTTONS,
            service.occupancy(services.db),
        )
        if not days:
            return Reply(_text(services, "no_free_day"))
        buttons = [
            {
                "title": _day_label(services, d),
                "payload": intent_payload("book_appointment", when=d.isoformat()),
            }
            for d in days
        ]
        return Reply(_text(services, "ask_date"), buttons)


class ActionAskBookingTime(_Ask):
    slot = TIME

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        day = dt.date.fromisoformat(tracker.get_slot(DATE))
        slots = await asyncio.to_thread(
            _calendar(services).open_slots,
            day,
            tracker.get_slot(PROCEDURE),
            utcnow(),
            service.occupancy(services.db),
        )
        buttons = [
            {
                "title": f"{slot.start:%H:%M}",
                "payload": intent_payload("book_appointment", when=f"{day.isoformat()}T{slot.start:%H:%M}"),
            }
            for slot in slots[:TIME_BUTTONS]
        ]
        return Reply(_text(services, "ask_time", day=_day_label(services, day)), buttons)


class ActionAskFullName(_Ask):
    slot = NAME


class ActionAskPhone(_Ask):
    slot = PHONE


def _yes_no(services: Services, key: str) -> list[dict[str, str]]:
    labels = services.kb.messages["booking"][key]
    return [
        {"title": labels["accept"], "payload": "/affirm"},
        {"title": labels["refuse"], "payload": "/deny"},
    ]


class ActionAskBookingConsent(_Ask):
    slot = CONSENT

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        return Reply(_text(services, "ask_consent"), _yes_no(services, "consent_buttons"))


class ActionAskBookingConfirm(_Ask):
    slot = CONFIRM

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        procedure = tracker.get_slot(PROCEDURE)
        start = _start(services, tracker.get_slot(DATE), tracker.get_slot(TIME))
        counter = _calendar(services).counter_for(procedure)
        text = _text(
            services,
            "ask_confirm",
            procedure=_procedure_title(services, procedure),
            when=_when_label(services, start) if start else "",
            counter=counter.name if counter else "",
            full_name=str(tracker.get_slot(NAME) or ""),
            phone=str(tracker.get_slot(PHONE) or ""),
        )
        return Reply(text, _yes_no(services, "confirm_buttons"))


# --- the end of the form ------------------------------------------------------------------


def _booked_replies(services: Services, booking: Booking) -> list[Reply]:
    when = _when_label(services, booking.slot_start)
    text = _text(
        services,
        "booked",
        code=booking.code,
        procedure=_procedure_title(services, booking.procedure),
        when=when,
        counter=_counter_name(services, booking.counter),
    )
    procedure = services.kb.procedures.get(booking.procedure)
    ho_so = procedure.aspects.get("ho_so") if procedure else None
    if ho_so:
        text += "\n\n" + _text(services, "bring", ho_so=fill(ho_so, services.ward.placeholders()))
    return [Reply(text)]


class ActionSubmitBooking(Action):
    """After the form: book on confirm (idempotent per form run), or say nothing was stored.

    Also runs for a second press of "Xác nhận" right after (rule): the same booking is shown.
    """

    def name(self) -> str:
        return "action_submit_booking"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        channel, external_id = channel_user(tracker)
        run = tracker.get_slot(RUN)
        if tracker.get_slot(CONFIRM) is None:  # a second "Xác nhận" after the booking
            return await self._again(dispatcher, tracker, services, channel, external_id)
        if not tracker.get_slot(CONSENT):
            send(dispatcher, tracker, BOOK, Reply(_text(services, "refused")))
            return _cleared()
        if not tracker.get_slot(CONFIRM):
            send(dispatcher, tracker, BOOK, Reply(_text(services, "cancelled_form")))
            return _cleared()
        start = _start(services, tracker.get_slot(DATE), tracker.get_slot(TIME))
        try:
            assert start is not None and run
            booking = await asyncio.to_thread(
                service.book,
                services.db,
                _calendar(services),
                channel=channel,
                external_id=external_id,
                procedure=tracker.get_slot(PROCEDURE),
                start=start,
                idempotency_key=run,
                full_name=tracker.get_slot(NAME),
                phone=tracker.get_slot(PHONE),
                consent=True,
            )
        except AppointmentError as exc:
            text = _text(services, "failed") + " " + _reason(services, exc.reason, exc.detail)
            send(dispatcher, tracker, BOOK, Reply(text, [_book_button(services)]))
            return _cleared()
        await asyncio.to_thread(_queue_reminders, services, channel, external_id, booking)
        send(dispatcher, tracker, BOOK, *_booked_replies(services, booking))
        return [*_cleared(), SlotSet(LAST_KEY, run)]

    async def _again(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        services: Services,
        channel: str,
        external_id: str,
    ) -> list[EventType]:
        key = tracker.get_slot(LAST_KEY)
        booking = (
            await asyncio.to_thread(service._by_key, services.db, channel, external_id, key) if key else None
        )
        if booking is None:
            send(
                dispatcher, tracker, BOOK, Reply(_text(services, "cancelled_form"), [_book_button(services)])
            )
            return []
        text = _text(
            services, "already_booked", code=booking.code, when=_when_label(services, booking.slot_start)
        )
        send(dispatcher, tracker, BOOK, Reply(text))
        return []


def _book_button(services: Services) -> dict[str, str]:
    return {"title": _text(services, "book_button"), "payload": intent_payload("book_appointment")}


class ActionBookingStop(Action):
    """ "thôi" / "hủy" inside the form: leave it (the rule deactivates the loop), nothing stored."""

    def name(self) -> str:
        return "action_booking_stop"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        send(dispatcher, tracker, BOOK, Reply(_text(get_services(), "stopped")))
        return _cleared()


# --- list and cancel ------------------------------------------------------------------------


def _list_lines(services: Services, bookings: list[Booking]) -> list[str]:
    return [
        _text(
            services,
            "list_item",
            code=b.code,
            procedure=_procedure_title(services, b.procedure),
            when=_when_label(services, b.slot_start),
            counter=_counter_name(services, b.counter),
        )
        for b in bookings
    ]


def _cancel_buttons(services: Services, bookings: list[Booking]) -> list[dict[str, str]]:
    return [
        {
            "title": _text(services, "cancel_button", code=b.code),
            "payload": intent_payload("cancel_appointment", code=b.code),
        }
        for b in bookings
    ]


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
            send(dispatcher, tracker, LIST, Reply(_text(services, "list_empty"), [_book_button(services)]))
            return []
        text = "\n".join([_text(services, "list_header"), *_list_lines(services, mine)])
        send(dispatcher, tracker, LIST, Reply(text, _cancel_buttons(services, mine)))
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
        code = _entity(tracker, "code")
        if code:
            try:
                booking = await asyncio.to_thread(service.cancel, services.db, channel, external_id, code)
            except AppointmentError as exc:
                send(dispatcher, tracker, CANCEL, Reply(_reason(services, exc.reason, exc.detail)))
                return []
            await asyncio.to_thread(_cancel_reminders, services, booking)
            when = _when_label(services, booking.slot_start)
            send(
                dispatcher, tracker, CANCEL, Reply(_text(services, "cancelled", code=booking.code, when=when))
            )
            return []
        mine = await asyncio.to_thread(service.my_appointments, services.db, channel, external_id)
        if not mine:
            send(dispatcher, tracker, CANCEL, Reply(_text(services, "list_empty"), [_book_button(services)]))
            return []
        text = "\n".join([_text(services, "cancel_pick"), *_list_lines(services, mine)])
        send(dispatcher, tracker, CANCEL, Reply(text, _cancel_buttons(services, mine)))
        return []


REMINDER_KIND = "reminder"
REMINDERS = ("day_before", "hours_before")


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


def _queue_reminders(services: Services, channel: str, external_id: str, booking: Booking) -> None:
    """Queue the booking's reminders in the outbox (idempotent on kind and ref)."""
    values = {
        "code": booking.code,
        "procedure": _procedure_title(services, booking.procedure),
        "when": _when_label(services, booking.slot_start),
        "counter": _counter_name(services, booking.counter),
    }
    button = {
        "title": _text(services, "my_appointments_button"),
        "payload": intent_payload("list_appointments"),
    }
    for name, at in reminder_times(services.ward, booking.slot_start, utcnow()).items():
        message = {"text": _text(services, f"reminder_{name}", **values), "buttons": [button]}
        outbox.enqueue(
            services.db,
            channel,
            external_id,
            message,
            kind=REMINDER_KIND,
            ref=f"{booking.code}:{name}",
            not_before=at,
        )


def _cancel_reminders(services: Services, booking: Booking) -> None:
    """A cancelled appointment is not reminded: its queued reminders are cancelled."""
    for name in REMINDERS:
        outbox.cancel(services.db, REMINDER_KIND, f"{booking.code}:{name}")
