"""Rasa intent classifier: logistic regression over TF-IDF of the normalised text.

Measured on the held-out set (see tests/eval), a linear model over word and
character n-grams of the folded, teencode-expanded text classifies procedures
better than DIET on this amount of data, and trains in seconds instead of
minutes on two cores. Entity spans come from nlu.entities.PhraseEntityExtractor.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.linear_model import LogisticRegression

from nlu.features import SentenceVectorizer

FILE = "linear_intent_classifier.pkl"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentClassifier(GraphComponent, IntentClassifier):
    """Sets `intent` and `intent_ranking` like Rasa's own classifiers."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"C": 20.0, "ranking_length": 10, "random_seed": 2024}

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
        self.vectorizer: SentenceVectorizer | None = state.get("vectorizer")
        self.model: LogisticRegression | None = state.get("model")

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LinearIntentClassifier:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if m.get(TEXT)]
        self.vectorizer = SentenceVectorizer()
        features = self.vectorizer.fit_transform(examples)
        self.model = LogisticRegression(
            C=self._config["C"], max_iter=3000, random_state=self._config["random_seed"]
        )
        self.model.fit(features, [m.get(INTENT) for m in examples])
        with self._storage.write_to(self._resource) as directory:
            (directory / FILE).write_bytes(pickle.dumps({"vectorizer": self.vectorizer, "model": self.model}))
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> LinearIntentClassifier:
        try:
            with model_storage.read_from(resource) as directory:
                state = pickle.loads((directory / FILE).read_bytes())
        except (ValueError, FileNotFoundError):
            state = None
        return cls(config, model_storage, resource, state)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if self.model is None or self.vectorizer is None or not message.get(TEXT):
                message.set(INTENT, {"name": None, "confidence": 0.0}, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [], add_to_output=True)
                continue
            probabilities = self.model.predict_proba(self.vectorizer.transform([message]))[0]
            order = np.argsort(probabilities)[::-1][: self._config["ranking_length"]]
            ranking = [
                {"name": str(self.model.classes_[i]), "confidence": float(probabilities[i])} for i in order
            ]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
