"""Rasa component: which aspect of a procedure a message asks about, per sentence.

The aspect is signalled by a short cue ("cần gì", "bao nhiêu tiền", "mấy
ngày", "ở đâu") anywhere in the message, so a linear classifier over the
sentence's count-vector features learns it better and far faster than span
tagging. Labels come from the `aspect` annotations of the training data: no
annotation → "none", one value → that value, several → "several" (which the
topic rules turn into the bare procedure id).
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.linear_model import LogisticRegression

FILE = "aspect_classifier.pkl"
NONE, SEVERAL = "none", "several"


def label_of(entities: list[dict[str, Any]], entity: str) -> str:
    values = {str(e["value"]) for e in entities if e.get("entity") == entity}
    if not values:
        return NONE
    return values.pop() if len(values) == 1 else SEVERAL


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class AspectClassifier(GraphComponent, EntityExtractorMixin):
    """Replaces span-tagged aspects with one sentence-level decision."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"entity": "aspect", "C": 4.0, "min_confidence": 0.4, "random_seed": 2024}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        state: dict[str, Any] | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        state = state or {}
        self.model: LogisticRegression | None = state.get("model")
        self.intents: set = state.get("intents", set())

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> AspectClassifier:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        entity = self._config["entity"]
        examples = training_data.intent_examples
        # Only intents that ever ask for an aspect: the procedures.
        self.intents = {
            m.get(INTENT) for m in examples if any(e.get("entity") == entity for e in m.get(ENTITIES, []))
        }
        chosen = [m for m in examples if m.get(INTENT) in self.intents]
        if chosen:
            features = scipy.sparse.vstack([self._features(m) for m in chosen]).tocsr()
            labels = [label_of(m.get(ENTITIES, []), entity) for m in chosen]
            self.model = LogisticRegression(
                C=self._config["C"], max_iter=2000, random_state=self._config["random_seed"]
            )
            self.model.fit(features, labels)
        with self._storage.write_to(self._resource) as directory:
            (directory / FILE).write_bytes(pickle.dumps({"model": self.model, "intents": self.intents}))
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> AspectClassifier:
        try:
            with model_storage.read_from(resource) as directory:
                state = pickle.loads((directory / FILE).read_bytes())
        except (ValueError, FileNotFoundError):
            state = None
        return cls(config, model_storage, resource, state)

    @staticmethod
    def _features(message: Message) -> scipy.sparse.spmatrix:
        _, sentence = message.get_sparse_features(TEXT)
        return scipy.sparse.csr_matrix(sentence.features)

    def process(self, messages: list[Message]) -> list[Message]:
        entity = self._config["entity"]
        for message in messages:
            intent = (message.get(INTENT) or {}).get("name")
            if self.model is None or intent not in self.intents or not message.get(TEXT):
                continue
            probabilities = self.model.predict_proba(self._features(message))[0]
            best = int(np.argmax(probabilities))
            label, confidence = str(self.model.classes_[best]), float(probabilities[best])
            others = [e for e in message.get(ENTITIES, []) if e.get("entity") != entity]
            found = [e for e in message.get(ENTITIES, []) if e.get("entity") == entity]
            if label == SEVERAL:
                aspects = found if len({str(e["value"]) for e in found}) > 1 else []
            elif label == NONE or confidence < self._config["min_confidence"]:
                aspects = []
            else:
                span = next((e for e in found if str(e["value"]) == label), None)
                start, end = (span["start"], span["end"]) if span else (0, len(message.get(TEXT)))
                aspects = self.add_extractor_name(
                    [{"entity": entity, "value": label, "start": start, "end": end,
                      "confidence_entity": confidence}]
                )  # fmt: skip
            message.set(ENTITIES, others + aspects, add_to_output=True)
        return messages
