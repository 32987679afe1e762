"""Vietnamese text normalisation shared by the Rasa tokenizer and the app.

Pure Python with no Rasa import, so the app's tests exercise the same code the
Rasa pipeline runs. Folding keeps one letter per letter (đ→d), so character
offsets of the original text stay valid for entity spans.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import yaml

TEENCODE_FILE = Path(__file__).with_name("teencode.yml")
_REPEATS = re.compile(r"(\w)\1{2,}")


def nfc(text: str) -> str:
    """Compose decomposed Vietnamese (what many phones send) into NFC."""
    return unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """Lower-case and strip diacritics, with đ→d (which NFD leaves alone)."""
    text = nfc(text).lower().replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


@lru_cache(maxsize=1)
def teencode() -> dict[str, str]:
    """Abbreviation → folded expansion, read from `teencode.yml` (content, not code)."""
    data = yaml.safe_load(TEENCODE_FILE.read_text(encoding="utf-8")) or {}
    table: dict[str, str] = {}
    for expansion, abbreviations in data.items():
        for abbreviation in abbreviations:
            table[nfc(str(abbreviation)).lower()] = fold(str(expansion))
    return table


def normalize_token(token: str) -> str:
    """Expand teencode, squeeze letters typed three or more times, then fold.

    The lookup happens before folding so that "a" (anh) and "ạ" (a particle)
    stay apart, and before squeezing so that "cccd" is not read as "cd".
    """
    table = teencode()
    word = nfc(token).lower()
    if word in table:
        return table[word]
    word = _REPEATS.sub(r"\1", word)
    return table.get(word, fold(word))


def normalize_text(text: str) -> str:
    """Whole-message form of `normalize_token`, for lookups and tests."""
    words = re.findall(r"\w+", nfc(text))
    return " ".join(normalize_token(word) for word in words)
