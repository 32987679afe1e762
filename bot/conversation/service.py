"""The conversation service: one citizen turn from any channel to Rasa and back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.conversation.rasa_client import RasaClient, RasaUnavailable
from bot.conversation.text import BadInput, check_payload, clean_text
from bot.privacy import forget_conversation
from bot.services import Services
from bot.storage.db import Database

log = logging.getLogger(__name__)


@dataclass
class Turn:
    """The assistant's answer to one message, in the chat API's shape."""

    topic: str
    intent: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    forget: bool = False  # the citizen had their data deleted: drop the conversation's history

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"topic": self.topic, "intent": self.intent, "messages": self.messages}
        if self.error:
            body["error"] = self.error
        return body


class ConversationService:
    """Validates input, asks Rasa, lifts the topic out of the reply."""

    def __init__(self, services: Services, rasa: RasaClient, known_intents: frozenset[str]) -> None:
        self.services = services
        self.rasa = rasa
        self.known_intents = known_intents
        # Called (in a thread) with (db, channel, external_id, payload) when a button comes back,
        # e.g. to count presses on a campaign's buttons. A failing hook never breaks the turn.
        self.payload_hooks: list[Callable[[Database, str, str, str], object]] = []

    def prepare(self, text: str | None, payload: str | None) -> str:
        """The message to send to Rasa; raises BadInput before anything happens."""
        if payload is not None:
            return check_payload(payload, self.known_intents)
        if text is None:
            raise BadInput("either 'text' or 'payload' is required")
        return clean_text(text)

    async def handle(self, sender: str, message: str, metadata: dict[str, Any] | None = None) -> Turn:
        """One turn. Rasa down or slow: a polite message with the ward's phone number."""
        if message.startswith("/") and self.payload_hooks:
            await self._run_payload_hooks(sender, message)
        try:
            raw = await self.rasa.send(sender, message, metadata)
        except RasaUnavailable as exc:
            log.warning("rasa unavailable for a turn: %s", exc)
            return self.unavailable()
        turn = to_turn(raw)
        if turn.forget:  # after the turn: Rasa has saved it and released the conversation
            url = self.services.settings.effective_tracker_url
            await asyncio.to_thread(forget_conversation, url, sender)
        return turn

    async def _run_payload_hooks(self, sender: str, payload: str) -> None:
        channel, _, external_id = sender.partition(":")
        for hook in self.payload_hooks:
            try:
                await asyncio.to_thread(hook, self.services.db, channel, external_id, payload)
            except Exception as exc:  # noqa: BLE001 - bookkeeping must not break a reply
                log.warning("payload hook %s failed: %s", getattr(hook, "__name__", hook), type(exc).__name__)

    def unavailable(self) -> Turn:
        services = self.services
        text = services.kb.message("assistant_unavailable", **services.ward.placeholders())
        return Turn(
            topic="handoff",
            intent={"name": None, "confidence": 0.0},
            messages=[{"text": text}],
            error="assistant_unavailable",
        )


def to_turn(raw: list[dict[str, Any]]) -> Turn:
    """Split Rasa's output into chat messages and the meta message our actions add.

    Marks next to the meta (actions.common.send) go to the last message's `custom`, except
    `forget`, which the conversation service acts on.
    """
    meta: dict[str, Any] = {}
    messages: list[dict[str, Any]] = []
    forget = False
    for item in raw:
        custom = item.get("custom")
        if isinstance(custom, dict) and "meta" in custom:
            meta = custom["meta"]
            marks = {k: v for k, v in custom.items() if k not in ("meta", "forget")}
            forget = forget or bool(custom.get("forget"))
            if marks and messages:
                messages[-1]["custom"] = {**messages[-1].get("custom", {}), **marks}
            continue
        message: dict[str, Any] = {}
        if item.get("text"):
            message["text"] = item["text"]
        if item.get("buttons"):
            message["buttons"] = [
                {"title": b.get("title", ""), "payload": b.get("payload", "")} for b in item["buttons"]
            ]
        if item.get("image"):
            message["image"] = item["image"]
        if isinstance(custom, dict):
            message["custom"] = custom
        if message:
            messages.append(message)
    intent = meta.get("intent") or {"name": None, "confidence": 0.0}
    return Turn(topic=meta.get("topic") or "out_of_scope", intent=intent, messages=messages, forget=forget)
