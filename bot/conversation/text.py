"""Checks and clean-up of what a citizen sends, before it reaches Rasa."""

from __future__ import annotations

import json
import re
import unicodedata

MAX_TEXT = 4000
_PAYLOAD = re.compile(r"^/(?P<intent>[a-z][a-z0-9_]{0,63})(?P<entities>\{.*\})?$", re.S)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class BadInput(ValueError):
    """The message cannot be processed; the text says why (shown to API clients)."""


def clean_text(text: str) -> str:
    """NFC-normalise typed text and refuse what is not a chat message.

    A leading "/" is dropped: typed text must never be read by Rasa as an
    intent payload that sets entities or slots ("/inform{...}").
    """
    if _CONTROL.search(text):
        raise BadInput("text contains control characters (binary data?)")
    text = unicodedata.normalize("NFC", text).strip()
    if len(text) > MAX_TEXT:
        raise BadInput(f"text is longer than {MAX_TEXT} characters")
    text = text.lstrip("/").strip()
    if not text:
        raise BadInput("text is empty")
    return text


def check_payload(payload: str, known_intents: frozenset[str]) -> str:
    """Accept only "/intent" or "/intent{json}" for an intent of the domain."""
    match = _PAYLOAD.match(payload.strip())
    if not match or match.group("intent") not in known_intents:
        raise BadInput("unknown button payload")
    entities = match.group("entities")
    if entities:
        try:
            parsed = json.loads(entities)
        except json.JSONDecodeError:
            raise BadInput("button payload entities are not valid JSON") from None
        if not isinstance(parsed, dict) or not all(
            isinstance(k, str) and isinstance(v, (str, int)) and len(str(v)) <= 64 for k, v in parsed.items()
        ):
            raise BadInput("button payload entities must be short strings")
    return payload.strip()
