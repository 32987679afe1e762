"""The topic catalog (faq/topics.yml): the ids every chat reply reports.

Also the one place that maps Rasa intents and entities to a topic id, used by
the custom actions and by the evaluation alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

# Ids that already name one task take no aspect (labelling rules in topics.yml).
NO_ASPECT_PREFIXES = ("vneid.",)
NO_ASPECT_IDS = frozenset({"can_cuoc.gia_tri_cccd", "dich_vu_cong", "kham_benh_vneid", "mot_cua"})

DIALOGUE_INTENTS = {
    "greet": "greet",
    "goodbye": "goodbye",
    "thanks": "thanks",
    "help": "help",
    "book_appointment": "appointment.book",
    "list_appointments": "appointment.list",
    "cancel_appointment": "appointment.cancel",
    "reschedule_appointment": "appointment.reschedule",
    "subscribe": "campaign.subscribe",
    "unsubscribe": "campaign.unsubscribe",
    "start_guide": "guide.start",
    "handoff": "handoff",
    "delete_my_data": "privacy.delete",
    "out_of_scope": "out_of_scope",
}


@dataclass(frozen=True)
class Catalog:
    aspects: Mapping[str, str]
    procedures: Mapping[str, str]
    dialogue: Mapping[str, str]

    @classmethod
    def load(cls, path: Path) -> Catalog:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(data["aspects"], data["procedures"], data["dialogue"])

    @cached_property
    def intent_to_procedure(self) -> dict[str, str]:
        """Procedure intents are the catalog id with "." replaced by "_"."""
        return {pid.replace(".", "_"): pid for pid in self.procedures}

    @cached_property
    def all_ids(self) -> frozenset[str]:
        ids = set(self.procedures) | set(self.dialogue)
        ids |= {f"{pid}.{aspect}" for pid in self.procedures if takes_aspect(pid) for aspect in self.aspects}
        return frozenset(ids)

    def procedure_for_intent(self, intent: str | None) -> str | None:
        return self.intent_to_procedure.get(intent or "")

    def topic(self, intent: str | None, aspects: Iterable[str] = ()) -> str | None:
        """Topic id for an intent and the aspect values found in the message.

        Exactly one distinct aspect gives "procedure.aspect"; none or several
        give the bare procedure id. Flow intents have no topic of their own.
        """
        procedure = self.procedure_for_intent(intent)
        if procedure is None:
            return DIALOGUE_INTENTS.get(intent or "")
        found = {a for a in aspects if a in self.aspects}
        if len(found) == 1 and takes_aspect(procedure):
            return f"{procedure}.{found.pop()}"
        return procedure

    def procedure_of(self, topic: str) -> str:
        """The id without its aspect: "khai_sinh.ho_so" → "khai_sinh"."""
        head, _, tail = topic.rpartition(".")
        return head if head and tail in self.aspects else topic


def takes_aspect(procedure_id: str) -> bool:
    return not (procedure_id.startswith(NO_ASPECT_PREFIXES) or procedure_id in NO_ASPECT_IDS)
