"""Actions that answer from the knowledge base and the assistant's own messages."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import aspects_in, ranked_intents, send
from bot.knowledge.answers import Reply, intent_payload, menu_buttons, procedure_answer
from bot.knowledge.catalog import DIALOGUE_INTENTS
from bot.services import get_services

Domain = dict[str, Any]


class ActionAnswer(Action):
    """Answer a procedure question: the aspect asked, or the summary."""

    def name(self) -> str:
        return "action_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        topic, replies, events = self.compose(tracker)
        send(dispatcher, tracker, topic, *replies)
        return events

    def compose(self, tracker: Tracker) -> tuple[str, list[Reply], list[EventType]]:
        """The topic, the replies and the events of the answer (shared with action_answer_in_guide)."""
        services = get_services()
        catalog = services.kb.catalog
        intent = tracker.get_intent_of_latest_message()
        procedure = catalog.procedure_for_intent(intent)
        if procedure is None:
            return "help", [_menu(services.kb.message("flow_without_context"))], []
        aspects = set(aspects_in(tracker))
        aspect = aspects.pop() if len(aspects) == 1 else None
        reply = procedure_answer(services.kb, services.ward, procedure, aspect)
        return (
            catalog.topic(intent, aspects_in(tracker)) or procedure,
            [reply],
            [SlotSet("procedure", procedure)],
        )


def _menu(text: str) -> Reply:
    services = get_services()
    return Reply(text, menu_buttons(services.kb))


class _MessageAction(Action):
    """Reply with one text of faq/messages.yml, optionally with the menu."""

    key: str = ""
    topic: str = ""
    with_menu: bool = False

    def name(self) -> str:
        return f"action_{self.key}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        text = services.kb.message(self.key, **services.ward.placeholders())
        reply = _menu(text) if self.with_menu else Reply(text)
        send(dispatcher, tracker, self.topic, reply)
        return []


class ActionGreet(_MessageAction):
    """The greeting, plus an offer to resume a guide left unfinished (even days ago)."""

    key, topic, with_menu = "greet", "greet", True

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        from actions.guides import resume_offer  # late import: actions.guides imports this module

        services = get_services()
        greeting = _menu(services.kb.message(self.key, **services.ward.placeholders()))
        offer = await resume_offer(tracker)
        send(dispatcher, tracker, self.topic, greeting, *([offer] if offer else []))
        return []


class ActionHelp(_MessageAction):
    key, topic, with_menu = "help", "help", True


class ActionGoodbye(_MessageAction):
    key, topic = "goodbye", "goodbye"


class ActionThanks(_MessageAction):
    key, topic = "thanks", "thanks"


class ActionOutOfScope(_MessageAction):
    key, topic, with_menu = "out_of_scope", "out_of_scope", True


class ActionFlowWithoutContext(_MessageAction):
    """ "tiếp", "có", "thôi" when no guide or form is running."""

    key, topic, with_menu = "flow_without_context", "help", True

    def name(self) -> str:
        return "action_flow_without_context"


class ActionDialogue(Action):
    """Dialogue topics whose flow is not available in the chat: say where to go instead.

    Guides (actions/guides.py), subscriptions (actions/subscriptions.py), booking (actions/booking.py)
    and listing and cancelling appointments (actions/appointments.py) have their own flows and rules;
    rescheduling, handoff and data deletion still come here.
    """

    def name(self) -> str:
        return "action_dialogue"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        intent = tracker.get_intent_of_latest_message() or ""
        text = services.kb.message("not_in_chat_yet", **services.ward.placeholders())
        send(dispatcher, tracker, DIALOGUE_INTENTS.get(intent, "help"), _menu(text))
        return []


class ActionClarify(Action):
    """Low confidence or two close candidates: offer the two best as buttons."""

    def name(self) -> str:
        return "action_clarify"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        kb = services.kb
        catalog = kb.catalog
        aspects = aspects_in(tracker)
        aspect = aspects[0] if len(set(aspects)) == 1 else None
        buttons = []
        for candidate in ranked_intents(tracker)[:2]:
            button = _candidate_button(candidate["name"], aspect)
            if button:
                buttons.append(button)
        buttons.append({"title": kb.messages["clarify_other"], "payload": intent_payload("help")})
        top = ranked_intents(tracker)[:1]
        topic = catalog.topic(top[0]["name"], aspects) if top else None
        send(dispatcher, tracker, topic or "out_of_scope", Reply(kb.message("clarify"), buttons))
        return []


def _candidate_button(intent: str, aspect: str | None) -> dict[str, str] | None:
    kb = get_services().kb
    procedure = kb.catalog.procedure_for_intent(intent)
    if procedure:
        title = kb.procedures[procedure].title
        if aspect and aspect in kb.procedures[procedure].aspects:
            label = kb.messages["aspect_labels"][aspect]
            return {"title": f"{title}: {label}", "payload": intent_payload(intent, aspect=aspect)}
        return {"title": title, "payload": intent_payload(intent)}
    label = kb.messages.get("dialogue_labels", {}).get(intent)
    return {"title": label, "payload": intent_payload(intent)} if label else None
