"""The procedure a citizen names in a booking request, when the NLU tagged no `procedure` span.

"đặt lịch làm căn cước sáng thứ 5", "cho toi hen lam khai sinh": the phrases are the
`procedure` spans annotated in the training data (nlu/data/nlu/*.yml), folded
(no diacritics, lower case), so any spelling the NLU was taught is found here too.
The longest phrase found between word boundaries wins ("đổi căn cước" over "căn cước").
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from functools import lru_cache
from pathlib import Path

from nlu.normalize import fold

DATA = Path(__file__).resolve().parents[1] / "nlu" / "data" / "nlu"
_SPAN = re.compile(r"\[([^\]]+)\](\{[^}]*\})")


@lru_cache(maxsize=1)
def phrases() -> list[tuple[re.Pattern[str], str]]:
    """(pattern on folded text, catalog id), longest phrase first."""
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    for path in sorted(DATA.glob("*.yml")):
        for span, attributes in _SPAN.findall(path.read_text(encoding="utf-8")):
            try:
                entity = json.loads(attributes)
            except ValueError:
                continue
            if entity.get("entity") == "procedure" and entity.get("value"):
                seen[" ".join(fold(span).split())][str(entity["value"])] += 1
    table = [(phrase, values.most_common(1)[0][0]) for phrase, values in seen.items()]
    table.sort(key=lambda item: -len(item[0]))
    return [(re.compile(rf"(?<!\w){re.escape(phrase)}(?!\w)"), value) for phrase, value in table]


def procedure_in_text(text: str) -> str | None:
    """The catalog id of the longest annotated procedure phrase in the text, or None."""
    folded = " ".join(fold(text).split())
    for pattern, value in phrases():
        if pattern.search(folded):
            return value
    return None
