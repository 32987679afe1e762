"""The booking form (`booking_form`): reading and checking every answer, its questions, the booking.

The ask actions serve reschedule_form too, which reuses the day and slot questions and, through
actions.appointments.ValidateRescheduleForm, their validation. Every ask and closing action ends
with the meta message (actions.common.send); the validation only adds refusals before the ask.
Names and phone numbers are never logged and leave the slots when the form ends (docs/booking.md).
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

from actions import desk
from actions.answers import ActionAnswer
from actions.common import aspects_in, send
from actions.desk import (
    BOOK,
    CODE,
    CONFIRM,
    CONSENT,
    CONTINUE,
    DATE,
    FAILURES,
    LAST_KEY,
    MOVE_CONFIRM,
    MOVE_FORM,
    NAME,
    PART,
    PHONE,
    PROCEDURE,
    RESCHEDULE,
    RUN,
    TIME,
    WISH,
    Domain,
    booking_cleared,
)
from actions.reminders import queue_reminders
from actions.senders import channel_user
from bot.appointments import service
from bot.appointments.dates import WhenError, parse_when
from bot.appointments.service import AppointmentError, Booking
from bot.appointments.slots import Calendar
from bot.knowledge.answers import Reply, intent_payload
from bot.knowledge.kb import fill
from bot.services import Services, get_services
from bot.storage.db import utcnow

MAX_FAILURES = 2  # failed answers to one question before the form explains and asks to go on
PARTS = ("sang", "chieu")  # parts of day that narrow the slot buttons (morning, afternoon)
DAY_BUTTONS, TIME_BUTTONS = 6, 12
_ISO_WHEN = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}))?$")


STOP_SURE = 0.6  # below this, a "stop" typed where a name or phone is asked is read as the answer


def _stop_intent(tracker: Tracker) -> tuple[bool, float]:
    intent = tracker.latest_message.get("intent") or {}
    return intent.get("name") == "stop", float(intent.get("confidence") or 0.0)


def _stopping(tracker: Tracker) -> bool:
    """The citizen leaves the form ("thôi", "hủy", /huy); a name the classifier took for "stop"
    with low confidence ("Phạm Thị Dung") is not a stop."""
    stop, confidence = _stop_intent(tracker)
    return stop and (confidence >= STOP_SURE or tracker.get_slot("requested_slot") not in (NAME, PHONE))


def _form_topic(tracker: Tracker) -> str:
    loop = tracker.active_loop.get("name") if tracker.active_loop else None
    return RESCHEDULE if loop == MOVE_FORM else BOOK


def _says_when(text: str) -> bool:
    """The words name a day, a time or a part of day ("sáng thứ 5", "mai 9h", "chiều")."""
    if not text or text.startswith("/"):
        return False
    try:
        parse_when(text, utcnow(), get_services().ward.tz)
    except WhenError:
        return False
    return True


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
    dispatcher.utter_message(text=desk.text(get_services(), "after_question"))
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
        if tracker.get_slot(RUN) is None and self.name() == "validate_booking_form":
            events.insert(0, SlotSet(RUN, uuid.uuid4().hex))  # the form's first turn: a new run id
        return events

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[str]:
        slots = [slot for slot in domain_slots if slot != CONTINUE]
        if tracker.get_slot(CONTINUE) is False:  # "no" to "go on?": the form ends, nothing stored
            return [CONTINUE]
        if (tracker.get_slot(FAILURES) or 0) >= MAX_FAILURES:  # two failed answers: "go on?" first
            return [CONTINUE, *slots]
        if tracker.get_slot(CONSENT) is False and CONSENT in slots:  # refused: the form ends
            return slots[: slots.index(CONSENT) + 1]
        return slots

    async def get_validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        """The slots' validation, then the count of failed answers to the question asked."""
        wish = tracker.slots_to_validate().get(WISH)
        events = await super().get_validation_events(dispatcher, tracker, domain)
        if wish and not any(e.get("name") == WISH for e in events):  # not read yet: kept for later
            events.append(SlotSet(WISH, wish))  # (the SDK drops slots that are not required)
        requested = tracker.get_slot("requested_slot")
        answers = [e.get("value") for e in events if e.get("event") == "slot" and e.get("name") == requested]
        if requested in (CONTINUE, None) or not answers:
            return events
        if requested == TIME and any(e.get("name") == PART and e.get("value") for e in events):
            return events  # "chiều" when the slot is asked: a narrowing, not a failed answer
        if answers[-1] is not None:  # answered: the count starts again at the next question
            return [*events, SlotSet(FAILURES, None)] if tracker.get_slot(FAILURES) else events
        failures = int(tracker.get_slot(FAILURES) or 0) + 1
        if failures >= MAX_FAILURES:
            dispatcher.utter_message(text=desk.text(get_services(), f"explain_{requested}"))
        return [*events, SlotSet(FAILURES, failures)]

    # extraction (custom mappings) ----------------------------------------------------

    async def extract_booking_procedure(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        requested = tracker.get_slot("requested_slot")
        if requested not in (None, PROCEDURE) or tracker.get_slot(PROCEDURE):
            return {}
        # "cho tôi hẹn làm khai sinh": the `procedure` entity (nlu.entities.PhraseEntityExtractor)
        procedure = desk.entity(tracker, "procedure")
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
        requested = tracker.get_slot("requested_slot")
        if requested == DATE:
            return {
                DATE: desk.entity(tracker, "when") or self.when_text(tracker.latest_message.get("text") or "")
            }
        if requested is None and not tracker.get_slot(DATE):  # the request itself: "… sáng thứ 5"
            said = desk.entity(tracker, "when") or self.when_text(tracker.latest_message.get("text") or "")
            if _ISO_WHEN.match(said) or _says_when(said):
                return {WISH: said}  # read once the procedure is known (validate_booking_procedure)
        return {}

    async def extract_booking_time(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != TIME:
            return {}
        return {TIME: desk.entity(tracker, "when") or tracker.latest_message.get("text") or ""}

    def when_text(self, text: str) -> str:
        """The words as the date parser reads them (moving an appointment drops "sang"/"qua")."""
        return text

    # validation ------------------------------------------------------------------------

    async def validate_booking_procedure(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        services = get_services()
        if not value:
            dispatcher.utter_message(text=desk.text(services, "pick_procedure"))
            return {PROCEDURE: None}
        if desk.calendar(services).counter_for(str(value)) is None:
            dispatcher.utter_message(text=desk.reason(services, "unknown_procedure"))
            return {PROCEDURE: None}
        return {PROCEDURE: str(value), **await self._wish(str(value), dispatcher, tracker, domain)}

    async def _wish(
        self, procedure: str, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        """The day said with the request, validated now that the procedure is known."""
        wish = tracker.get_slot(WISH)
        if not wish or tracker.get_slot(DATE):
            return {}
        tracker.slots[PROCEDURE] = procedure  # what validate_booking_date reads
        return {WISH: None, **await self.validate_booking_date(wish, dispatcher, tracker, domain)}

    async def validate_booking_date(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        services = get_services()
        procedure = tracker.get_slot(PROCEDURE)
        now = utcnow()
        try:
            day, clock, week, part = await _read_when(services, str(value or ""), now)
        except WhenError as exc:
            dispatcher.utter_message(text=desk.reason(services, exc.reason, exc.detail))
            return {DATE: None}
        part_slot = {PART: part} if part in PARTS else {}
        if day is None:
            dispatcher.utter_message(text=desk.text(services, "need_day"))
            return {DATE: None, **part_slot}
        calendar = desk.calendar(services)
        occupancy = service.occupancy(services.db)
        if week:  # "tuần sau": the first day of that week with a free slot
            days = [day + dt.timedelta(days=i) for i in range(7)]
            free = [d for d in days if (await _check_day(calendar, procedure, d, now, occupancy)).ok]
            if free:
                dispatcher.utter_message(
                    text=desk.text(services, "week_day", day=desk.day_label(services, free[0]))
                )
                day = free[0]
        verdict = await _check_day(calendar, procedure, day, now, occupancy)
        if not verdict.ok:
            assert verdict.reason is not None
            dispatcher.utter_message(text=desk.reason(services, verdict.reason.value, verdict.detail))
            return {DATE: None, **part_slot}
        result: dict[str, Any] = {DATE: day.isoformat(), **part_slot}
        if clock is not None:  # "mai 9h": the slot too, when it is bookable
            start = dt.datetime.combine(day, clock, tzinfo=services.ward.tz)
            check = await asyncio.to_thread(calendar.check, procedure, start, now, occupancy)
            if check.ok:
                result[TIME] = f"{clock:%H:%M}"
            else:
                assert check.reason is not None
                dispatcher.utter_message(text=desk.reason(services, check.reason.value, check.detail))
        return result

    async def validate_booking_time(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        services = get_services()
        procedure = tracker.get_slot(PROCEDURE)
        now = utcnow()
        day_text = tracker.get_slot(DATE)
        try:
            day, clock, _week, part = await _read_when(services, str(value or ""), now)
        except WhenError as exc:
            dispatcher.utter_message(text=desk.reason(services, exc.reason, exc.detail))
            return {TIME: None}
        if clock is None and part in PARTS and day is None:  # "chiều": the afternoon's slots
            return {TIME: None, PART: part, FAILURES: None}
        if clock is None:
            dispatcher.utter_message(text=desk.text(services, "need_time"))
            return {TIME: None}
        day = day or (dt.date.fromisoformat(day_text) if day_text else None)
        if day is None:
            return {TIME: None, DATE: None}
        start = dt.datetime.combine(day, clock, tzinfo=services.ward.tz)
        calendar = desk.calendar(services)
        verdict = await asyncio.to_thread(
            calendar.check, procedure, start, now, service.occupancy(services.db)
        )
        if not verdict.ok:
            assert verdict.reason is not None
            dispatcher.utter_message(text=desk.reason(services, verdict.reason.value, verdict.detail))
            return {TIME: None}
        return {TIME: f"{clock:%H:%M}", DATE: day.isoformat()}

    async def validate_full_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        try:
            return {NAME: service.clean_name(str(value or ""))}
        except service.InvalidInput as exc:
            dispatcher.utter_message(text=desk.reason(get_services(), exc.reason, exc.detail))
            return {NAME: None}

    async def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        try:
            return {PHONE: service.normalize_phone(str(value or ""))}
        except service.InvalidInput as exc:
            dispatcher.utter_message(text=desk.reason(get_services(), exc.reason, exc.detail))
            return {PHONE: None}

    async def validate_booking_consent(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        return {CONSENT: bool(value)}

    async def validate_booking_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        return {CONFIRM: bool(value)}

    async def validate_booking_continue(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        if value:  # go on: the same question again, the count from zero
            return {CONTINUE: None, FAILURES: None}
        return {CONTINUE: False}


async def _read_when(
    services: Services, text: str, now: dt.datetime
) -> tuple[dt.date | None, dt.time | None, bool, str | None]:
    """(day, time, a whole week, part of day) from a button's ISO value or the citizen's words."""
    match = _ISO_WHEN.match(text.strip())
    if match:
        day = dt.date.fromisoformat(match.group(1))
        clock = dt.time.fromisoformat(match.group(2)) if match.group(2) else None
        return day, clock, False, None
    when = parse_when(text, now, services.ward.tz)
    return when.date, when.time, when.precision == "week", when.part_of_day


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
        send(dispatcher, tracker, _form_topic(tracker), reply, **self.marks(services))
        return []

    def marks(self, services: Services) -> dict[str, Any]:
        """Channel hints next to the meta message (e.g. Telegram's share-contact keyboard)."""
        return {}

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        return Reply(desk.text(services, f"ask_{self.slot}"))


class ActionAskBookingProcedure(_Ask):
    slot = PROCEDURE

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        buttons = [
            {
                "title": desk.procedure_title(services, procedure),
                "payload": intent_payload("book_appointment", procedure=procedure),
            }
            for counter in services.ward.counters
            for procedure in counter.procedures
        ]
        return Reply(desk.text(services, "ask_procedure"), buttons)


class ActionAskBookingDate(_Ask):
    slot = DATE

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        procedure = tracker.get_slot(PROCEDURE)
        days = await asyncio.to_thread(
            desk.calendar(services).next_free_days,
            procedure,
            utcnow(),
            DAY_BUTTONS,
            service.occupancy(services.db),
        )
        if not days:
            return Reply(desk.text(services, "no_free_day"))
        buttons = [
            {
                "title": desk.day_label(services, d),
                "payload": intent_payload("book_appointment", when=d.isoformat()),
            }
            for d in days
        ]
        return Reply(desk.text(services, "ask_date"), buttons)


class ActionAskBookingTime(_Ask):
    slot = TIME

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        day = dt.date.fromisoformat(tracker.get_slot(DATE))
        slots = await asyncio.to_thread(
            desk.calendar(services).open_slots,
            day,
            tracker.get_slot(PROCEDURE),
            utcnow(),
            service.occupancy(services.db),
        )
        part = tracker.get_slot(PART)
        wanted = (
            [slot for slot in slots if (slot.start.hour < 12) == (part == "sang")] if part in PARTS else []
        )
        buttons = [
            {
                "title": f"{slot.start:%H:%M}",
                "payload": intent_payload("book_appointment", when=f"{day.isoformat()}T{slot.start:%H:%M}"),
            }
            for slot in (wanted or slots)[:TIME_BUTTONS]
        ]
        key = f"ask_time_{part}" if wanted else "ask_time"
        return Reply(desk.text(services, key, day=desk.day_label(services, day)), buttons)


class ActionAskFullName(_Ask):
    slot = NAME


class ActionAskPhone(_Ask):
    """The phone question; on Telegram it comes with a "share my number" keyboard."""

    slot = PHONE

    def marks(self, services: Services) -> dict[str, Any]:
        return {"request_contact": desk.text(services, "share_contact_button")}


def _yes_no(services: Services, key: str) -> list[dict[str, str]]:
    labels = services.kb.messages["booking"][key]
    return [
        {"title": labels["accept"], "payload": "/affirm"},
        {"title": labels["refuse"], "payload": "/deny"},
    ]


class ActionAskBookingConsent(_Ask):
    slot = CONSENT

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        return Reply(desk.text(services, "ask_consent"), _yes_no(services, "consent_buttons"))


class ActionAskBookingContinue(_Ask):
    """After two failed answers (the explanation was just sent): go on or stop?"""

    slot = CONTINUE

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        return Reply(desk.text(services, "ask_continue"), _yes_no(services, "continue_buttons"))


class ActionAskRescheduleCode(_Ask):
    """Which appointment to move: the citizen's own upcoming ones, a button each."""

    slot = CODE

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        channel, external_id = channel_user(tracker)
        mine = await asyncio.to_thread(service.my_appointments, services.db, channel, external_id)
        text = "\n".join([desk.text(services, "reschedule_pick"), *desk.list_lines(services, mine)])
        return Reply(text, desk.move_buttons(services, mine))


class ActionAskRescheduleConfirm(_Ask):
    slot = MOVE_CONFIRM

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        channel, external_id = channel_user(tracker)
        booking = await asyncio.to_thread(
            service.get_mine, services.db, channel, external_id, str(tracker.get_slot(CODE))
        )
        start = desk.slot_start(services, tracker.get_slot(DATE), tracker.get_slot(TIME))
        text = desk.text(
            services,
            "ask_reschedule_confirm",
            code=booking.code,
            procedure=desk.procedure_title(services, booking.procedure),
            old=desk.when_label(services, booking.slot_start),
            when=desk.when_label(services, start) if start else "",
        )
        return Reply(text, _yes_no(services, "confirm_buttons"))


class ActionAskBookingConfirm(_Ask):
    slot = CONFIRM

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        procedure = tracker.get_slot(PROCEDURE)
        start = desk.slot_start(services, tracker.get_slot(DATE), tracker.get_slot(TIME))
        counter = desk.calendar(services).counter_for(procedure)
        text = desk.text(
            services,
            "ask_confirm",
            procedure=desk.procedure_title(services, procedure),
            when=desk.when_label(services, start) if start else "",
            counter=counter.name if counter else "",
            full_name=str(tracker.get_slot(NAME) or ""),
            phone=str(tracker.get_slot(PHONE) or ""),
        )
        return Reply(text, _yes_no(services, "confirm_buttons"))


# --- the end of the form ------------------------------------------------------------------


def _booked_replies(services: Services, booking: Booking) -> list[Reply]:
    when = desk.when_label(services, booking.slot_start)
    text = desk.text(
        services,
        "booked",
        code=booking.code,
        procedure=desk.procedure_title(services, booking.procedure),
        when=when,
        counter=desk.counter_name(services, booking.counter),
    )
    procedure = services.kb.procedures.get(booking.procedure)
    ho_so = procedure.aspects.get("ho_so") if procedure else None
    if ho_so:
        text += "\n\n" + desk.text(services, "bring", ho_so=fill(ho_so, services.ward.placeholders()))
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
        if tracker.get_slot(CONTINUE) is False:  # "no" to "go on?" after two failed answers
            send(dispatcher, tracker, BOOK, Reply(desk.text(services, "stopped")))
            return booking_cleared()
        if tracker.get_slot(CONFIRM) is None:  # a second "Xác nhận" after the booking
            return await self._again(dispatcher, tracker, services, channel, external_id)
        if not tracker.get_slot(CONSENT):
            send(dispatcher, tracker, BOOK, Reply(desk.text(services, "refused")))
            return booking_cleared()
        if not tracker.get_slot(CONFIRM):
            send(dispatcher, tracker, BOOK, Reply(desk.text(services, "cancelled_form")))
            return booking_cleared()
        start = desk.slot_start(services, tracker.get_slot(DATE), tracker.get_slot(TIME))
        try:
            assert start is not None and run
            booking = await asyncio.to_thread(
                service.book,
                services.db,
                desk.calendar(services),
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
            text = desk.text(services, "failed") + " " + desk.reason(services, exc.reason, exc.detail)
            send(dispatcher, tracker, BOOK, Reply(text, [desk.book_button(services)]))
            return booking_cleared()
        await asyncio.to_thread(queue_reminders, services, channel, external_id, booking)
        send(dispatcher, tracker, BOOK, *_booked_replies(services, booking))
        return [*booking_cleared(), SlotSet(LAST_KEY, run)]

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
            await asyncio.to_thread(service.booking_for_key, services.db, channel, external_id, key)
            if key
            else None
        )
        if booking is None:
            send(
                dispatcher,
                tracker,
                BOOK,
                Reply(desk.text(services, "cancelled_form"), [desk.book_button(services)]),
            )
            return []
        text = desk.text(
            services, "already_booked", code=booking.code, when=desk.when_label(services, booking.slot_start)
        )
        send(dispatcher, tracker, BOOK, Reply(text))
        return []


class ActionBookingStop(Action):
    """ "thôi" / "hủy" inside the form: leave it (the rule deactivates the loop), nothing stored."""

    def name(self) -> str:
        return "action_booking_stop"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        send(dispatcher, tracker, BOOK, Reply(desk.text(get_services(), "stopped")))
        return booking_cleared()
