"""Subscriptions to the ward's notices: pick a block (khối), consent, change block, stop.

The consent question is answered by affirm/deny right after it (rules in nlu/data/rules.yml
look at the previous action and the `pending_block` slot); nothing is stored on a refusal.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import send
from actions.senders import channel_user
from bot.config.ward import Block, Ward
from bot.knowledge.answers import Reply, intent_payload
from bot.knowledge.kb import KnowledgeBase, fill
from bot.services import get_services
from bot.subscriptions import service

Domain = dict[str, Any]
PENDING = "pending_block"
SUBSCRIBE, UNSUBSCRIBE = "campaign.subscribe", "campaign.unsubscribe"
_BLOCK_IN_TEXT = re.compile(r"\bkhoi\s*(?:so\s*)?(\d{1,3})\b")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    return "".join(c for c in text if not unicodedata.combining(c))


def _message(kb: KnowledgeBase, ward: Ward, key: str, **values: str) -> str:
    return fill(str(kb.messages["subscriptions"][key]), {**ward.placeholders(), **values}).strip()


def find_block(ward: Ward, value: str | None) -> Block | None:
    """A block by id ("khoi_3"), by name ("Khối 3") or by its number ("3")."""
    if not value:
        return None
    folded = _fold(value).strip()
    for block in ward.blocks:
        if folded in (block.id, _fold(block.name)):
            return block
    digits = re.findall(r"\d+", folded)
    if digits:
        for block in ward.blocks:
            if re.findall(r"\d+", _fold(block.name)) == [str(int(digits[0]))]:
                return block
    return None


def block_in_message(tracker: Tracker) -> tuple[bool, Block | None]:
    """(a block was named, the ward's block it names): the `block` entity of a button, or "khối 3"."""
    ward = get_services().ward
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == "block":
            return True, find_block(ward, str(entity.get("value") or ""))
    match = _BLOCK_IN_TEXT.search(_fold(tracker.latest_message.get("text") or ""))
    if match:
        return True, find_block(ward, match.group(1))
    return False, None


def block_buttons(ward: Ward) -> list[dict[str, str]]:
    return [{"title": b.name, "payload": intent_payload("subscribe", block=b.id)} for b in ward.blocks]


def _block_name(ward: Ward, block_id: str) -> str:
    block = find_block(ward, block_id)
    return block.name if block else block_id


class ActionSubscribe(Action):
    """subscribe / "tôi ở khối nào": show the block (or a picker), or ask consent for the block chosen."""

    def name(self) -> str:
        return "action_subscribe"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        kb, ward, db = services.kb, services.ward, services.db
        channel, external_id = channel_user(tracker)
        current = await asyncio.to_thread(service.subscription, db, channel, external_id)
        subscribed = current is not None and current.active
        named, block = block_in_message(tracker)
        stop = {"title": kb.messages["subscriptions"]["stop_button"], "payload": "/unsubscribe"}
        if block is not None and subscribed:
            await asyncio.to_thread(service.set_block, db, channel, external_id, block.id)
            text = _message(kb, ward, "block_changed", block=block.name)
            send(dispatcher, tracker, SUBSCRIBE, Reply(text, [stop]))
            return [SlotSet(PENDING, None)]
        if block is not None:
            labels = kb.messages["subscriptions"]["consent_buttons"]
            buttons = [
                {"title": labels["accept"], "payload": "/affirm"},
                {"title": labels["refuse"], "payload": "/deny"},
            ]
            send(
                dispatcher,
                tracker,
                SUBSCRIBE,
                Reply(_message(kb, ward, "consent", block=block.name), buttons),
            )
            return [SlotSet(PENDING, block.id)]
        lines = [_message(kb, ward, "unknown_block")] if named else []
        if subscribed:
            since = current.consented_at.astimezone(ward.tz).strftime("%d/%m/%Y")
            lines.append(_message(kb, ward, "current", block=_block_name(ward, current.block), since=since))
            buttons = [*block_buttons(ward), stop]
        else:
            lines.append(_message(kb, ward, "pick_block"))
            buttons = block_buttons(ward)
        send(dispatcher, tracker, SUBSCRIBE, Reply("\n".join(lines), buttons))
        return [SlotSet(PENDING, None)]


class ActionSubscribeConsent(Action):
    """The answer to the consent question.

    affirm subscribes (the consent text shown and its time are stored); deny stores nothing.
    """

    def name(self) -> str:
        return "action_subscribe_consent"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        kb, ward, db = services.kb, services.ward, services.db
        block = find_block(ward, tracker.get_slot(PENDING))
        if block is None:
            send(dispatcher, tracker, SUBSCRIBE, Reply(_message(kb, ward, "pick_block"), block_buttons(ward)))
            return [SlotSet(PENDING, None)]
        if tracker.get_intent_of_latest_message() != "affirm":
            send(dispatcher, tracker, SUBSCRIBE, Reply(_message(kb, ward, "refused")))
            return [SlotSet(PENDING, None)]
        channel, external_id = channel_user(tracker)
        consent = _message(kb, ward, "consent", block=block.name)
        await asyncio.to_thread(service.subscribe, db, channel, external_id, block.id, consent)
        stop = {"title": kb.messages["subscriptions"]["stop_button"], "payload": "/unsubscribe"}
        send(
            dispatcher, tracker, SUBSCRIBE, Reply(_message(kb, ward, "subscribed", block=block.name), [stop])
        )
        return [SlotSet(PENDING, None)]


class ActionUnsubscribe(Action):
    """ "Dừng nhận tin": unsubscribed at once on this channel."""

    def name(self) -> str:
        return "action_unsubscribe"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        kb, ward, db = services.kb, services.ward, services.db
        channel, external_id = channel_user(tracker)
        was = await asyncio.to_thread(service.is_subscribed, db, channel, external_id)
        if was:
            await asyncio.to_thread(service.unsubscribe, db, channel, external_id, "user_request")
        send(
            dispatcher,
            tracker,
            UNSUBSCRIBE,
            Reply(_message(kb, ward, "unsubscribed" if was else "not_subscribed")),
        )
        return [SlotSet(PENDING, None)]
