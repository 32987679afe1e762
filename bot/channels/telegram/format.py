"""Turning chat API messages into Telegram messages: length limits and inline keyboards."""

from __future__ import annotations

import base64
import hashlib
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

MAX_TEXT = 4096  # Telegram's limit, counted in UTF-16 code units
MAX_CALLBACK_DATA = 64  # bytes
TOKEN_PREFIX = "t:"


def units(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units: an emoji counts two)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split on paragraph boundaries, then lines, then hard; every part fits the limit."""
    if units(text) <= limit:
        return [text]
    parts: list[str] = []
    for piece in _pack(text.split("\n\n"), "\n\n", limit, _split_paragraph):
        parts.append(piece)
    return [p for p in parts if p.strip()]


def _split_paragraph(paragraph: str, limit: int) -> list[str]:
    return _pack(paragraph.split("\n"), "\n", limit, _hard_split)


def _pack(pieces: Iterable[str], joiner: str, limit: int, too_long: Any) -> list[str]:
    """Greedily join pieces with joiner into chunks within limit; oversize pieces are split further."""
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if units(piece) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.extend(too_long(piece, limit))
            continue
        candidate = f"{current}{joiner}{piece}" if current else piece
        if units(candidate) <= limit:
            current = candidate
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def _hard_split(line: str, limit: int) -> list[str]:
    """Cut a line with no break into pieces within limit, preferring a space near the end."""
    chunks: list[str] = []
    rest = line
    while units(rest) > limit:
        cut = limit
        while units(rest[:cut]) > limit:  # surrogate pairs count two
            cut -= 1
        space = rest.rfind(" ", limit // 2, cut)
        if space > 0:
            cut = space
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks


class CallbackStore:
    """Short tokens for button payloads that do not fit Telegram's 64-byte callback_data.

    In memory, bounded (LRU) and with an expiry. Payloads that fit (nearly all
    of them: "/intent" or "/intent{"aspect": "le_phi"}") travel in the button
    itself and need no state, so they survive restarts; only long ones use a
    token. A token is derived from the payload (same payload, same token), so
    re-sending a menu refreshes it instead of growing the store. A token that
    is unknown (expired, app restarted, forged) resolves to None and the
    citizen is told the button is out of date.
    """

    def __init__(self, max_entries: int = 10_000, ttl: float = 7 * 24 * 3600) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self._items: OrderedDict[str, tuple[str, float]] = OrderedDict()

    @staticmethod
    def token_for(payload: str) -> str:
        digest = hashlib.sha256(payload.encode("utf-8")).digest()
        return TOKEN_PREFIX + base64.urlsafe_b64encode(digest).decode("ascii")[:22]

    def put(self, payload: str) -> str:
        token = self.token_for(payload)
        self._items[token] = (payload, time.monotonic() + self.ttl)
        self._items.move_to_end(token)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)
        return token

    def get(self, token: str) -> str | None:
        item = self._items.get(token)
        if item is None:
            return None
        payload, expires = item
        if expires < time.monotonic():
            del self._items[token]
            return None
        return payload

    def callback_data(self, payload: str) -> str:
        """What goes into the button: the payload itself if it fits, else a token."""
        if len(payload.encode("utf-8")) <= MAX_CALLBACK_DATA and not payload.startswith(TOKEN_PREFIX):
            return payload
        return self.put(payload)

    def resolve(self, data: str | None) -> str | None:
        """The payload a pressed button stands for, or None if unknown."""
        if not data:
            return None
        if data.startswith("/"):
            return data
        if data.startswith(TOKEN_PREFIX):
            return self.get(data)
        return None


def keyboard(buttons: list[dict[str, Any]] | None, store: CallbackStore) -> InlineKeyboardMarkup | None:
    """Rasa buttons as an inline keyboard, one button a row (Vietnamese titles are long)."""
    rows: list[list[InlineKeyboardButton]] = []
    for button in buttons or []:
        title = str(button.get("title") or "").strip()
        payload = str(button.get("payload") or "").strip()
        if not title or not payload:
            continue
        if payload.startswith(("https://", "http://")):
            rows.append([InlineKeyboardButton(title, url=payload)])
        else:
            rows.append([InlineKeyboardButton(title, callback_data=store.callback_data(payload))])
    return InlineKeyboardMarkup(rows) if rows else None


def button_title(markup: InlineKeyboardMarkup | None, data: str) -> str | None:
    """The title of the button with this callback_data on the message it was pressed on."""
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return None


Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


def contact_request(message: dict[str, Any]) -> str | None:
    """The title of the share-contact button a message asks for (custom mark), if any."""
    custom = message.get("custom")
    title = str(custom.get("request_contact") or "").strip() if isinstance(custom, dict) else ""
    return title or None


def outgoing(
    message: dict[str, Any], store: CallbackStore, empty_text: str = "…", *, remove_keyboard: bool = False
) -> list[tuple[str, Markup | None]]:
    """One chat API message as Telegram sends: (text, keyboard) parts, keyboard on the last.

    Telegram needs text under a keyboard: buttons alone get empty_text. A message marked
    `request_contact` (and without inline buttons) gets a one-time reply keyboard with a
    share-contact button. `remove_keyboard` takes such a keyboard away: on the last part, or,
    when that part has inline buttons (one markup per message), on the text with the buttons
    following under empty_text.
    """
    text = str(message.get("text") or "").strip()
    image = message.get("image")
    if image:
        text = f"{text}\n{image}".strip()
    markup: Markup | None = keyboard(message.get("buttons"), store)
    contact = contact_request(message)
    if markup is None and contact:
        button = KeyboardButton(contact, request_contact=True)
        markup = ReplyKeyboardMarkup([[button]], resize_keyboard=True, one_time_keyboard=True)
    if not text:
        if markup is None:
            return []
        text = empty_text
    parts = split_text(text)
    sent: list[tuple[str, Markup | None]] = [
        (part, markup if i == len(parts) - 1 else None) for i, part in enumerate(parts)
    ]
    if remove_keyboard and not contact:
        sent[-1] = (sent[-1][0], ReplyKeyboardRemove())
        if markup is not None:
            sent.append((empty_text, markup))
    return sent
