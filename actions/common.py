"""What every custom action shares: the topic report and the reply shape.

Each turn ends with one custom JSON message {"meta": {...}} carrying the topic
and the intent; the app's conversation service lifts it out of the messages
and into the chat API's `topic` and `intent` fields.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.knowledge.answers import Reply

FALLBACK_INTENT = "nlu_fallback"


def ranked_intents(tracker: Tracker) -> list[dict[str, Any]]:
    """Intent ranking without Rasa's fallback pseudo-intent."""
    ranking = tracker.latest_message.get("intent_ranking") or []
    return [item for item in ranking if item.get("name") != FALLBACK_INTENT]


def understood_intent(tracker: Tracker) -> dict[str, Any]:
    """The intent the assistant went by: the best real candidate after a fallback."""
    intent = dict(tracker.latest_message.get("intent") or {})
    if intent.get("name") == FALLBACK_INTENT:
        ranking = ranked_intents(tracker)
        if ranking:
            intent = ranking[0]
    return {"name": intent.get("name"), "confidence": float(intent.get("confidence") or 0.0)}


def aspects_in(tracker: Tracker) -> list[str]:
    return [
        str(e.get("value"))
        for e in tracker.latest_message.get("entities") or []
        if e.get("entity") == "aspect"
    ]


def send(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    topic: str,
    *replies: Reply,
    **marks: Any,
) -> None:
    """Utter the replies, then the meta message with the topic.

    `marks` travel next to the meta and are attached by the app to the last reply (chat API
    field `custom`): `request_contact="<button title>"` asks Telegram for a share-contact
    keyboard; `forget=True` has the app delete the conversation's history after the turn.
    Channels that do not know a mark ignore it.
    """
    for reply in replies:
        dispatcher.utter_message(text=reply.text, buttons=reply.buttons or None)
    meta = {"topic": topic, "intent": understood_intent(tracker)}
    dispatcher.utter_message(json_message={"meta": meta, **marks})
