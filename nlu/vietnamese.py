"""Rasa tokenizer for Vietnamese as citizens type it.

Splits on whitespace like Rasa's own tokenizer (Vietnamese writes one syllable
per word, so offsets stay exact), then gives each token a normalised lemma:
folded diacritics, teencode expanded. The count-vector featurizers read the
lemma, so "kich hoat" and "kích hoạt" produce the same features.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from nlu.normalize import nfc, normalize_token


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class VietnameseTokenizer(WhitespaceTokenizer):
    """Whitespace tokens whose lemma is the folded, teencode-expanded form."""

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> VietnameseTokenizer:
        return cls(config)

    def tokenize(self, message: Message, attribute: str) -> List[Token]:
        if attribute == TEXT and message.get(TEXT):
            # NFC keeps one code point per letter, so offsets stay valid.
            message.set(TEXT, nfc(message.get(TEXT)))
        tokens = super().tokenize(message, attribute)
        if attribute == TEXT:
            for token in tokens:
                token.lemma = normalize_token(token.text)
        return tokens
