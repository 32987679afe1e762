"""Booking at the one-stop desk from the chat: `booking_form`, `reschedule_form`, list, cancel, confirm.

The form (domain.yml) asks, in order: the procedure (desk procedures only: those a ward
counter lists), the day, the time slot, the full name, the phone number, the consent to
keep name and phone for this appointment, and the confirmation. `validate_booking_form`
reads the citizen's words with bot.appointments (parse_when, Calendar) and explains every
refusal with the texts of faq/appointments.yml. Day and slot buttons carry the `when`
entity ("2026-12-01" or "2026-12-01T08:00") on a /book_appointment payload.

Every ask action and the closing actions end their reply with the meta message
(actions.common.send); the validation action only adds refusal texts before the ask.

The request that starts a form is read too: "đặt lịch làm căn cước sáng thứ 5" gives the
procedure, the day and the part of day (which narrows the slot buttons). After two failed
answers to the same question the form explains what it expects and asks whether to go on
(the pattern of Rasa's financial demo). `reschedule_form` reuses the day and slot questions
and their validation (ValidateRescheduleForm extends ValidateBookingForm).
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
from sqlalchemy import select

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
from bot.outbox.models import OutboxMessage
from bot.services import Services, get_services
from bot.storage.db import utcnow
from nlu.normalize import fold

Domain = dict[str, Any]
BOOK, LIST, CANCEL = "appointment.book", "appointment.list", "appointment.cancel"
RESCHEDULE = "appointment.reschedule"
FORM, MOVE_FORM = "booking_form", "reschedule_form"
PROCEDURE, DATE, TIME = "booking_procedure", "booking_date", "booking_time"
NAME, PHONE, CONSENT, CONFIRM = "full_name", "phone", "booking_consent", "booking_confirm"
WISH, PART, FAILURES, CONTINUE = "booking_wish", "booking_part", "booking_failures", "booking_continue"
CODE, MOVE_CONFIRM = "reschedule_code", "reschedule_confirm"
RUN, LAST_KEY = "booking_run", "booking_key"
FORM_SLOTS = (PROCEDURE, DATE, TIME, NAME, PHONE, CONSENT, CONFIRM, WISH, PART, FAILURES, CONTINUE)
MOVE_SLOTS = (CODE, MOVE_CONFIRM, PROCEDURE, DATE, TIME, WISH, PART, FAILURES, CONTINUE)
NO_APPOINTMENT, NOT_FOUND = "-", "?"  # reschedule_code when there is nothing to move (ends the form)
MAX_FAILURES = 2  # failed answers to one question before the form explains and asks to go on
PARTS = ("sang", "chieu")  # parts of day that narrow the slot buttons (morning, afternoon)
DAY_BUTTONS, TIME_BUTTONS = 6, 12
_ISO_WHEN = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}))?$")
_CODE_TEXT = re.compile(r"^\s*([A-Za-z0-9]{3}[\s-]?[A-Za-z0-9]{3})\s*$")
# "dời lịch sang thứ 6", "doi hen qua chieu mai": the preposition, not "sáng" (folded text)
_MOVE_TO = re.compile(r"(?:^|\b(?:lich|hen|gio|ngay)\s+)(?:sang|qua)\s+(?=\S)")


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


def booking_cleared() -> list[EventType]:
    """The form's slots emptied (name and phone leave the conversation) and no booking to repeat."""
    return [SlotSet(slot, None) for slot in (*FORM_SLOTS, RUN, LAST_KEY)]


def reschedule_cleared() -> list[EventType]:
    return [SlotSet(slot, None) for slot in MOVE_SLOTS]


def _form_topic(tracker: Tracker) -> str:
    loop = tracker.active_loop.get("name") if tracker.active_loop else None
    return RESCHEDULE if loop == MOVE_FORM else BOOK


def _first_turn(tracker: Tracker) -> bool:
    """The message that started the form (nothing asked yet)."""
    return tracker.get_slot("requested_slot") is None


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
            dispatcher.utter_message(text=_text(get_services(), f"explain_{requested}"))
        return [*events, SlotSet(FAILURES, failures)]

    # extraction (custom mappings) ----------------------------------------------------

    async def extract_booking_procedure(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        requested = tracker.get_slot("requested_slot")
        if requested not in (None, PROCEDURE) or tracker.get_slot(PROCEDURE):
            return {}
        # "cho tôi hẹn làm khai sinh": the `procedure` entity (nlu.entities.PhraseEntityExtractor)
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
        requested = tracker.get_slot("requested_slot")
        if requested == DATE:
            return {
                DATE: _entity(tracker, "when") or self.when_text(tracker.latest_message.get("text") or "")
            }
        if requested is None and not tracker.get_slot(DATE):  # the request itself: "… sáng thứ 5"
            said = _entity(tracker, "when") or self.when_text(tracker.latest_message.get("text") or "")
            if _ISO_WHEN.match(said) or _says_when(said):
                return {WISH: said}  # read once the procedure is known (validate_booking_procedure)
        return {}

    async def extract_booking_time(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != TIME:
            return {}
        return {TIME: _entity(tracker, "when") or tracker.latest_message.get("text") or ""}

    def when_text(self, text: str) -> str:
        """The words as the date parser reads them (moving an appointment drops "sang"/"qua")."""
        return text

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
            dispatcher.utter_message(text=_reason(services, exc.reason, exc.detail))
            return {DATE: None}
        part_slot = {PART: part} if part in PARTS else {}
        if day is None:
            dispatcher.utter_message(text=_text(services, "need_day"))
            return {DATE: None, **part_slot}
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
            return {DATE: None, **part_slot}
        result: dict[str, Any] = {DATE: day.isoformat(), **part_slot}
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
            day, clock, _week, part = await _read_when(services, str(value or ""), now)
        except WhenError as exc:
            dispatcher.utter_message(text=_reason(services, exc.reason, exc.detail))
            return {TIME: None}
        if clock is None and part in PARTS and day is None:  # "chiều": the afternoon's slots
            return {TIME: None, PART: part, FAILURES: None}
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

    async def validate_booking_continue(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> dict[str, Any]:
        if value:  # go on: the same question again, the count from zero
            return {CONTINUE: None, FAILURES: None}
        return {CONTINUE: False}


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
        code = _entity(tracker, "code")
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
            dispatcher.utter_message(text=_text(services, "reschedule_pick_again"))
            return {CODE: None}
        channel, external_id = channel_user(tracker)
        try:
            booking = await asyncio.to_thread(service.get_mine, services.db, channel, external_id, str(value))
            if booking.status != "booked":
                raise AppointmentError("not_changeable", booking.status)
            if booking.slot_start < utcnow():
                raise AppointmentError("past")
        except AppointmentError as exc:  # another citizen's code is "not found" too: no hint
            dispatcher.utter_message(text=_reason(services, exc.reason, exc.detail))
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
        return Reply(_text(services, key, day=_day_label(services, day)), buttons)


class ActionAskFullName(_Ask):
    slot = NAME


class ActionAskPhone(_Ask):
    """The phone question; on Telegram it comes with a "share my number" keyboard."""

    slot = PHONE

    def marks(self, services: Services) -> dict[str, Any]:
        return {"request_contact": _text(services, "share_contact_button")}


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


class ActionAskBookingContinue(_Ask):
    """After two failed answers (the explanation was just sent): go on or stop?"""

    slot = CONTINUE

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        return Reply(_text(services, "ask_continue"), _yes_no(services, "continue_buttons"))


class ActionAskRescheduleCode(_Ask):
    """Which appointment to move: the citizen's own upcoming ones, a button each."""

    slot = CODE

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        channel, external_id = channel_user(tracker)
        mine = await asyncio.to_thread(service.my_appointments, services.db, channel, external_id)
        text = "\n".join([_text(services, "reschedule_pick"), *_list_lines(services, mine)])
        return Reply(text, _move_buttons(services, mine))


class ActionAskRescheduleConfirm(_Ask):
    slot = MOVE_CONFIRM

    async def question(self, services: Services, tracker: Tracker) -> Reply:
        channel, external_id = channel_user(tracker)
        booking = await asyncio.to_thread(
            service.get_mine, services.db, channel, external_id, str(tracker.get_slot(CODE))
        )
        start = _start(services, tracker.get_slot(DATE), tracker.get_slot(TIME))
        text = _text(
            services,
            "ask_reschedule_confirm",
            code=booking.code,
            procedure=_procedure_title(services, booking.procedure),
            old=_when_label(services, booking.slot_start),
            when=_when_label(services, start) if start else "",
        )
        return Reply(text, _yes_no(services, "confirm_buttons"))


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
        if tracker.get_slot(CONTINUE) is False:  # "no" to "go on?" after two failed answers
            send(dispatcher, tracker, BOOK, Reply(_text(services, "stopped")))
            return booking_cleared()
        if tracker.get_slot(CONFIRM) is None:  # a second "Xác nhận" after the booking
            return await self._again(dispatcher, tracker, services, channel, external_id)
        if not tracker.get_slot(CONSENT):
            send(dispatcher, tracker, BOOK, Reply(_text(services, "refused")))
            return booking_cleared()
        if not tracker.get_slot(CONFIRM):
            send(dispatcher, tracker, BOOK, Reply(_text(services, "cancelled_form")))
            return booking_cleared()
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
        return booking_cleared()


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


def _move_buttons(services: Services, bookings: list[Booking]) -> list[dict[str, str]]:
    return [
        {
            "title": _text(services, "move_button", code=b.code),
            "payload": intent_payload("reschedule_appointment", code=b.code),
        }
        for b in bookings
    ]


def _list_buttons(services: Services, bookings: list[Booking]) -> list[dict[str, str]]:
    """ "Đổi lịch <code>" and "Hủy <code>" for each appointment."""
    moves, cancels = _move_buttons(services, bookings), _cancel_buttons(services, bookings)
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
            send(dispatcher, tracker, LIST, Reply(_text(services, "list_empty"), [_book_button(services)]))
            return []
        text = "\n".join([_text(services, "list_header"), *_list_lines(services, mine)])
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
        code = _entity(tracker, "code")
        if code:
            try:
                booking = await asyncio.to_thread(service.cancel, services.db, channel, external_id, code)
            except AppointmentError as exc:
                send(dispatcher, tracker, CANCEL, Reply(_reason(services, exc.reason, exc.detail)))
                return []
            await asyncio.to_thread(cancel_reminders, services, booking.code)
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


def _reminder_buttons(services: Services, code: str) -> list[dict[str, str]]:
    """Under a reminder: "I will come", "move", "cancel" for that appointment."""
    return [
        {
            "title": _text(services, "confirm_button"),
            "payload": intent_payload("confirm_appointment", code=code),
        },
        {
            "title": _text(services, "move_button", code=code),
            "payload": intent_payload("reschedule_appointment", code=code),
        },
        {
            "title": _text(services, "cancel_button", code=code),
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
        "procedure": _procedure_title(services, booking.procedure),
        "when": _when_label(services, booking.slot_start),
        "counter": _counter_name(services, booking.counter),
    }
    suffix = f":{utcnow():%Y%m%d%H%M%S}" if moved else ""
    for name, at in reminder_times(services.ward, booking.slot_start, utcnow()).items():
        message = {
            "text": _text(services, f"reminder_{name}", **values),
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
            send(
                dispatcher,
                tracker,
                RESCHEDULE,
                Reply(_text(services, "list_empty"), [_book_button(services)]),
            )
        elif tracker.get_slot(CONTINUE) is False:
            send(dispatcher, tracker, RESCHEDULE, Reply(_text(services, "reschedule_stopped")))
        elif not tracker.get_slot(MOVE_CONFIRM):
            send(dispatcher, tracker, RESCHEDULE, Reply(_text(services, "reschedule_kept", code=code)))
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
        start = _start(services, tracker.get_slot(DATE), tracker.get_slot(TIME))
        try:
            assert start is not None
            booking = await asyncio.to_thread(
                service.reschedule, services.db, _calendar(services), channel, external_id, code, start
            )
        except AppointmentError as exc:
            text = _text(services, "reschedule_failed") + " " + _reason(services, exc.reason, exc.detail)
            again = {
                "title": _text(services, "move_button", code=code),
                "payload": intent_payload("reschedule_appointment", code=code),
            }
            send(dispatcher, tracker, RESCHEDULE, Reply(text, [again]))
            return
        await asyncio.to_thread(cancel_reminders, services, booking.code)
        await asyncio.to_thread(queue_reminders, services, channel, external_id, booking, moved=True)
        text = _text(
            services,
            "rescheduled",
            code=booking.code,
            procedure=_procedure_title(services, booking.procedure),
            when=_when_label(services, booking.slot_start),
            counter=_counter_name(services, booking.counter),
        )
        send(dispatcher, tracker, RESCHEDULE, Reply(text))


class ActionRescheduleStop(Action):
    """ "thôi" inside reschedule_form: leave it, the appointment stays as it is."""

    def name(self) -> str:
        return "action_reschedule_stop"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        send(dispatcher, tracker, RESCHEDULE, Reply(_text(get_services(), "reschedule_stopped")))
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
        code = _entity(tracker, "code")
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
            send(dispatcher, tracker, LIST, Reply(_reason(services, exc.reason, exc.detail)))
            return []
        when = _when_label(services, booking.slot_start)
        text = _text(services, "attendance_confirmed", code=booking.code, when=when)
        send(dispatcher, tracker, LIST, Reply(text, _move_buttons(services, [booking])))
        return []
