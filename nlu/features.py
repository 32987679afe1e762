"""Sentence features for the linear classifiers: TF-IDF per featurizer, side by side."""

from __future__ import annotations

import scipy.sparse
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.message import Message
from sklearn.feature_extraction.text import TfidfTransformer


def sentence_blocks(message: Message) -> list[scipy.sparse.csr_matrix]:
    """The sparse sentence features of each featurizer, in a stable order."""
    features = [
        f
        for f in message.features
        if f.attribute == TEXT and f.is_sparse() and f.type == FEATURE_TYPE_SENTENCE
    ]
    return [scipy.sparse.csr_matrix(f.features) for f in sorted(features, key=lambda f: f.origin)]


class SentenceVectorizer:
    """Counts from Rasa's count-vector featurizers → sublinear TF-IDF, one block each.

    Word and character n-gram blocks are weighted and normalised separately,
    so neither drowns the other.
    """

    def __init__(self) -> None:
        self.blocks: list[TfidfTransformer] = []

    def fit_transform(self, messages: list[Message]) -> scipy.sparse.csr_matrix:
        columns = list(zip(*(sentence_blocks(m) for m in messages), strict=True))
        self.blocks = [TfidfTransformer(sublinear_tf=True) for _ in columns]
        return scipy.sparse.hstack(
            [t.fit_transform(scipy.sparse.vstack(c)) for t, c in zip(self.blocks, columns, strict=True)]
        ).tocsr()

    def transform(self, messages: list[Message]) -> scipy.sparse.csr_matrix:
        rows = [sentence_blocks(m) for m in messages]
        columns = list(zip(*rows, strict=True))
        return scipy.sparse.hstack(
            [t.transform(scipy.sparse.vstack(c)) for t, c in zip(self.blocks, columns, strict=True)]
        ).tocsr()
