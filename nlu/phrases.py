"""Tag the entity phrases annotated in the training data wherever they occur in a message.

"đặt lịch làm [căn cước]{procedure}", "sang bước [5]{step}": the phrases are learned from
the annotated spans, compared word by word on the normalised form (`nlu.normalize`:
folded diacritics, teencode expanded), so "dat lich lam can cuoc" and "đặt lịch làm cccd"
are tagged too. Matches run between word boundaries and the longest phrase wins ("đổi căn
cước" over "căn cước"); offsets point into the original text.

Some entities only mean something after a cue word: "5" is a step in "bước 5", not in
"sáng thứ 5". For those (`contextual`), the words seen right before the annotated spans
(at least `min_context_count` times) are learned too, and a match counts only when one of
them is among the `window` words before it. For `numbers` entities, any number written in
digits is a phrase, with itself as value.

Pure Python, so the app's tests exercise it without Rasa (nlu.entities wraps it).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from nlu.normalize import normalize_token

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Word:
    """One normalised word of a message and the original token it comes from."""

    text: str
    token: int  # index of the original token (a teencode token can give several words)
    start: int  # character offsets of that token in the original text
    end: int


def words(text: str) -> list[Word]:
    """The normalised words of a text, each with the offsets of its original token."""
    found: list[Word] = []
    for index, match in enumerate(_WORD.finditer(text)):
        for part in normalize_token(match.group()).split():
            found.append(Word(part, index, match.start(), match.end()))
    return found


@dataclass
class PhraseTagger:
    """Annotated phrases per entity type, matched longest first on normalised words."""

    phrases: dict[str, dict[str, str]] = field(default_factory=dict)  # entity → phrase → value
    contexts: dict[str, list[str]] = field(default_factory=dict)  # entity → cue words
    numbers: list[str] = field(default_factory=list)
    window: int = 2
    _lookup: dict[tuple[str, ...], list[tuple[str, str]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _longest: int = field(default=1, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lookup: dict[tuple[str, ...], list[tuple[str, str]]] = defaultdict(list)
        for entity, by_phrase in self.phrases.items():
            for phrase, value in by_phrase.items():
                lookup[tuple(phrase.split())].append((entity, value))
        self._lookup = dict(lookup)
        self._longest = max((len(key) for key in lookup), default=1)

    @classmethod
    def fit(
        cls,
        examples: Iterable[tuple[str, str, int, int, str]],
        *,
        contextual: Iterable[str] = (),
        numbers: Iterable[str] = (),
        min_context_count: int = 2,
        window: int = 2,
    ) -> PhraseTagger:
        """examples: (entity type, text, span start, span end, value)."""
        contextual = set(contextual)
        votes: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        cues: dict[str, Counter[str]] = defaultdict(Counter)
        for entity, text, start, end, value in examples:
            phrase = " ".join(w.text for w in words(text[start:end]))
            if not phrase:
                continue
            votes[entity][phrase][value] += 1
            if entity in contextual:
                before = words(text[:start])
                if before:
                    cues[entity][before[-1].text] += 1
        phrases = {
            entity: {phrase: counter.most_common(1)[0][0] for phrase, counter in by_phrase.items()}
            for entity, by_phrase in votes.items()
        }
        contexts = {
            entity: sorted(word for word, count in cues[entity].items() if count >= min_context_count)
            for entity in contextual
            if entity in phrases
        }
        return cls(phrases=phrases, contexts=contexts, numbers=sorted(set(numbers)), window=window)

    def tag(self, text: str) -> list[dict[str, object]]:
        """Entities (entity, value, start, end) found in the text, non-overlapping, in text order."""
        found = words(text)
        candidates: list[tuple[int, int, int, str, str]] = []  # (length, first, last, entity, value)
        for first in range(len(found)):
            if first and found[first - 1].token == found[first].token:
                continue  # a match starts where an original token starts
            for last in range(first, min(first + self._longest, len(found))):
                if last + 1 < len(found) and found[last + 1].token == found[last].token:
                    continue  # ... and ends where one ends
                key = tuple(w.text for w in found[first : last + 1])
                for entity, value in self._lookup.get(key, []):
                    candidates.append((last - first + 1, first, last, entity, value))
            word = found[first]
            if word.text.isdigit():
                for entity in self.numbers:
                    candidates.append((1, first, first, entity, text[word.start : word.end]))
        candidates = [c for c in candidates if self._cued(c[3], found, c[1])]
        candidates.sort(key=lambda c: (-c[0], c[1]))
        taken: set[int] = set()
        entities = []
        for _, first, last, entity, value in candidates:
            span = set(range(found[first].token, found[last].token + 1))
            if span & taken:
                continue
            taken |= span
            entities.append(
                {"entity": entity, "value": value, "start": found[first].start, "end": found[last].end}
            )
        return sorted(entities, key=lambda e: e["start"])

    def _cued(self, entity: str, found: list[Word], first: int) -> bool:
        cues = self.contexts.get(entity)
        if cues is None:
            return True
        before = {w.text for w in found[max(first - self.window, 0) : first]}
        return bool(before & set(cues))

    def to_dict(self) -> dict:
        return {
            "phrases": self.phrases,
            "contexts": self.contexts,
            "numbers": self.numbers,
            "window": self.window,
        }

    @classmethod
    def from_dict(cls, data: dict) -> PhraseTagger:
        return cls(
            phrases=data["phrases"], contexts=data["contexts"], numbers=data["numbers"], window=data["window"]
        )
