"""Compose knowledge-base replies: one phone-sized message plus buttons."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bot.config.ward import Ward
from bot.knowledge.kb import ASPECTS, KnowledgeBase, Procedure, fill


@dataclass
class Reply:
    """One chat message: text and optional buttons (title, payload)."""

    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        message: dict[str, object] = {"text": self.text}
        if self.buttons:
            message["buttons"] = self.buttons
        return message


def intent_payload(intent: str, **entities: str) -> str:
    """A Rasa button payload: "/intent" or "/intent{"entity": "value"}"."""
    return f"/{intent}{json.dumps(entities, ensure_ascii=False) if entities else ''}"


def procedure_answer(kb: KnowledgeBase, ward: Ward, procedure_id: str, aspect: str | None) -> Reply:
    """The answer to one aspect of a procedure (or its summary), with the date checked."""
    procedure = kb.procedures[procedure_id]
    values = ward.placeholders()
    parts = [procedure.title.upper()]
    if aspect and aspect in procedure.aspects:
        parts.append(fill(procedure.aspects[aspect], values))
    else:
        if aspect:
            parts.append(kb.message("aspect_missing"))
        parts.append(fill(procedure.summary, values))
    parts.append(
        kb.message(
            "footer",
            checked=procedure.checked.strftime("%d/%m/%Y"),
            verify=fill(procedure.verify, values),
        )
    )
    return Reply("\n\n".join(parts), procedure_buttons(kb, procedure, shown=aspect))


def procedure_buttons(kb: KnowledgeBase, procedure: Procedure, shown: str | None) -> list[dict[str, str]]:
    """Buttons for the other aspects, the guide and booking where they exist."""
    intent = procedure.id.replace(".", "_")
    labels = kb.messages["aspect_labels"]
    buttons = [
        {"title": labels[aspect], "payload": intent_payload(intent, aspect=aspect)}
        for aspect in ASPECTS
        if aspect in procedure.aspects and aspect != shown
    ]
    if procedure.guide:
        buttons.append(
            {
                "title": kb.messages["buttons"]["guide"],
                "payload": intent_payload("start_guide", procedure=procedure.id),
            }
        )
    if procedure.desk:
        buttons.append(
            {
                "title": kb.messages["buttons"]["book"],
                "payload": intent_payload("book_appointment", procedure=procedure.id),
            }
        )
    return buttons


def menu_buttons(kb: KnowledgeBase) -> list[dict[str, str]]:
    return [{"title": item["title"], "payload": item["payload"]} for item in kb.messages["menu"]]
