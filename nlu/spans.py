"""Map an extracted entity span to its canonical value ("mất mấy ngày" → thoi_gian).

DIET finds *where* the aspect words are; Rasa's synonym mapper only knows the
exact spellings seen in training. This resolves any spelling, with or without
diacritics, to the value of the most similar annotated span. Pure Python, so
the app's tests exercise it without Rasa.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from nlu.normalize import normalize_text


def _grams(text: str, n: int = 3) -> set[str]:
    padded = f" {text} "
    return {padded[i : i + n] for i in range(max(len(padded) - n + 1, 1))}


@dataclass
class SpanResolver:
    """Nearest annotated span by character-trigram overlap, per entity type."""

    min_similarity: float = 0.35
    spans: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, examples: list[tuple[str, str, str]], min_similarity: float = 0.35) -> SpanResolver:
        """examples: (entity type, span text, value)."""
        votes: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        for entity, text, value in examples:
            votes[entity][normalize_text(text)][value] += 1
        spans = {
            entity: {span: counter.most_common(1)[0][0] for span, counter in by_span.items()}
            for entity, by_span in votes.items()
        }
        return cls(min_similarity=min_similarity, spans=spans)

    def values(self, entity: str) -> set[str]:
        return set(self.spans.get(entity, {}).values())

    def resolve(self, entity: str, text: str) -> str | None:
        known = self.spans.get(entity)
        if not known:
            return None
        span = normalize_text(text)
        if span in known:
            return known[span]
        grams = _grams(span)
        best, score = None, 0.0
        for candidate, value in known.items():
            other = _grams(candidate)
            similarity = len(grams & other) / len(grams | other)
            if similarity > score:
                best, score = value, similarity
        return best if score >= self.min_similarity else None

    def to_dict(self) -> dict:
        return {"min_similarity": self.min_similarity, "spans": self.spans}

    @classmethod
    def from_dict(cls, data: dict) -> SpanResolver:
        return cls(min_similarity=data["min_similarity"], spans=data["spans"])
