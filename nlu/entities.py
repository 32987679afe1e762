"""Rasa component: resolve extracted aspect/procedure spans to catalog values."""

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

from nlu.spans import SpanResolver

FILE = "span_resolver.json"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class CatalogEntityResolver(GraphComponent, EntityExtractorMixin):
    """Gives every `aspect`/`procedure` entity a catalog value, or drops it.

    Entities below `min_confidence` are dropped too: a half-sure aspect would
    turn a one-aspect question into a general one.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"entities": ["aspect", "procedure"], "min_similarity": 0.35, "min_confidence": 0.6}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        resolver: SpanResolver | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self.resolver = resolver or SpanResolver(self._config["min_similarity"])

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> CatalogEntityResolver:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        wanted = set(self._config["entities"])
        examples = [
            (entity["entity"], example.get(TEXT)[entity["start"] : entity["end"]], str(entity["value"]))
            for example in training_data.entity_examples
            for entity in example.get(ENTITIES, [])
            if entity["entity"] in wanted
        ]
        self.resolver = SpanResolver.fit(examples, self._config["min_similarity"])
        with self._storage.write_to(self._resource) as directory:
            (directory / FILE).write_text(json.dumps(self.resolver.to_dict(), ensure_ascii=False), "utf-8")
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> CatalogEntityResolver:
        try:
            with model_storage.read_from(resource) as directory:
                resolver = SpanResolver.from_dict(json.loads((directory / FILE).read_text("utf-8")))
        except (ValueError, FileNotFoundError):
            resolver = None
        return cls(config, model_storage, resource, resolver)

    def process(self, messages: list[Message]) -> list[Message]:
        wanted = set(self._config["entities"])
        for message in messages:
            kept = []
            for entity in message.get(ENTITIES, []):
                if entity.get("entity") in wanted and not self._resolve(entity, message.get(TEXT) or ""):
                    continue
                kept.append(entity)
            message.set(ENTITIES, kept, add_to_output=True)
        return messages

    def _resolve(self, entity: dict[str, Any], text: str) -> bool:
        """Set the entity's catalog value in place; False when it should be dropped."""
        if float(entity.get("confidence_entity", 1.0)) < self._config["min_confidence"]:
            return False
        kind = entity["entity"]
        if str(entity.get("value")) in self.resolver.values(kind):
            return True
        value = self.resolver.resolve(kind, text[entity["start"] : entity["end"]])
        if value is None:
            return False
        entity["value"] = value
        self.add_processor_name(entity)
        return True
