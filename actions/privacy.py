""" "xóa dữ liệu của tôi": explain what is deleted, ask to confirm, then delete (bot.privacy).

The confirmation reply carries the `forget` mark: once Rasa has answered, the app deletes the
conversation's history from the tracker store (bot.conversation.service).
"""

from __future__ import annotations

import asyncio
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import send
from actions.desk import booking_cleared, reschedule_cleared
from actions.reminders import cancel_reminders
from actions.senders import channel_user
from bot.appointments import service as appointments
from bot.knowledge.answers import Reply
from bot.knowledge.kb import fill
from bot.privacy import delete_citizen_data
from bot.services import Services, get_services

TOPIC = "privacy.delete"
PENDING = "delete_pending"
Domain = dict[str, Any]


def _text(services: Services, key: str) -> str:
    return fill(str(services.kb.messages["privacy"][key]), services.ward.placeholders()).strip()


class ActionDeleteMyData(Action):
    """What will be deleted, and "delete?" with two buttons."""

    def name(self) -> str:
        return "action_delete_my_data"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        labels = services.kb.messages["privacy"]["buttons"]
        buttons = [
            {"title": labels["accept"], "payload": "/affirm"},
            {"title": labels["refuse"], "payload": "/deny"},
        ]
        send(dispatcher, tracker, TOPIC, Reply(_text(services, "explain"), buttons))
        return [SlotSet(PENDING, True)]


class ActionDeleteMyDataConfirm(Action):
    """The answer to "delete?": delete everything listed (yes) or nothing (no)."""

    def name(self) -> str:
        return "action_delete_my_data_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        if tracker.get_intent_of_latest_message() != "affirm":
            send(dispatcher, tracker, TOPIC, Reply(_text(services, "kept")))
            return [SlotSet(PENDING, None)]
        channel, external_id = channel_user(tracker)
        upcoming = await asyncio.to_thread(appointments.my_appointments, services.db, channel, external_id)
        for booking in upcoming:  # cancelled appointments are not reminded
            await asyncio.to_thread(cancel_reminders, services, booking.code)
        await asyncio.to_thread(delete_citizen_data, services.db, channel, external_id)
        send(dispatcher, tracker, TOPIC, Reply(_text(services, "deleted")), forget=True)
        return [SlotSet(PENDING, None), *booking_cleared(), *reschedule_cleared()]
