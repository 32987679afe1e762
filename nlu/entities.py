"""Rasa component: tag the entity phrases annotated in the training data (nlu.phrases)."""

from __future__ import annotations

import json
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.phrases import PhraseTagger

PHRASES_FILE = "phrases.json"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class PhraseEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Tags the `procedure` and `step` phrases annotated in the training data (nlu.phrases).

    Learned at train time from the annotations; matched on the normalised text (no
    diacritics, teencode expanded), longest phrase first; value = the annotated value.
    A `step` is a number after a cue word learned from the data ("bước 5", not "thứ 5").
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "entities": ["procedure", "step"],
            "contextual": ["step"],
            "numbers": ["step"],
            "min_context_count": 2,
            "window": 2,
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        tagger: PhraseTagger | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self.tagger = tagger or PhraseTagger()

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> PhraseEntityExtractor:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        wanted = set(self._config["entities"])
        examples = [
            (entity["entity"], example.get(TEXT), entity["start"], entity["end"], str(entity["value"]))
            for example in training_data.entity_examples
            for entity in example.get(ENTITIES, [])
            if entity["entity"] in wanted
        ]
        self.tagger = PhraseTagger.fit(
            examples,
            contextual=[e for e in self._config["contextual"] if e in wanted],
            numbers=[e for e in self._config["numbers"] if e in wanted],
            min_context_count=self._config["min_context_count"],
            window=self._config["window"],
        )
        with self._storage.write_to(self._resource) as directory:
            state = json.dumps(self.tagger.to_dict(), ensure_ascii=False)
            (directory / PHRASES_FILE).write_text(state, "utf-8")
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> PhraseEntityExtractor:
        try:
            with model_storage.read_from(resource) as directory:
                tagger = PhraseTagger.from_dict(json.loads((directory / PHRASES_FILE).read_text("utf-8")))
        except (ValueError, FileNotFoundError):
            tagger = None
        return cls(config, model_storage, resource, tagger)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            found = [{**entity, "confidence_entity": 1.0} for entity in self.tagger.tag(text)]
            if not found:
                continue
            kept = [e for e in message.get(ENTITIES, []) if e.get("entity") not in self._config["entities"]]
            message.set(ENTITIES, kept + self.add_extractor_name(found), add_to_output=True)
        return messages
