"""Messages with a photo (campaigns): sendPhoto with the text as caption, or the photo first.

A chat API message may carry "photo": the name of a stored campaign photo
(bot/campaigns/photos.py). Telegram's caption holds 1024 characters (UTF-16 units): a text
that fits goes as the caption, with the inline keyboard; a longer one follows the photo as
ordinary messages (split at 4096, keyboard on the last). The first send uploads the file;
the file_id Telegram answers with is cached (memory and database), so later sends reuse it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from telegram.error import BadRequest

from bot.campaigns import photos
from bot.channels.telegram.format import CallbackStore, Markup, outgoing, units
from bot.storage.db import Database

log = logging.getLogger(__name__)

MAX_CAPTION = 1024  # Telegram's caption limit, in UTF-16 code units

Part = tuple[str, Markup | None]
_uploading: dict[tuple[str, str], asyncio.Lock] = {}  # one upload per bot and photo at a time


def default_var_dir() -> Path:
    """The app's var dir (the running app's settings; else the environment's)."""
    from bot.config.settings import get_settings
    from bot.services import get_services

    try:
        return get_services().settings.var_dir
    except RuntimeError:
        return get_settings().var_dir


def caption_parts(parts: list[Part]) -> tuple[Part | None, list[Part]]:
    """(caption and keyboard for the photo, or None; the parts still to send after it)."""
    if len(parts) == 1 and units(parts[0][0]) <= MAX_CAPTION:
        return parts[0], []
    return None, parts


async def send_photo(
    bot: Any,
    chat_id: int,
    name: str,
    parts: list[Part],
    db: Database | None = None,
    var_dir: Path | None = None,
) -> list[Part]:
    """Send the photo `name` (with the text as caption when it fits); returns the text parts
    still to send. Telegram's errors propagate (the caller maps them). A photo whose file is
    gone is left out (logged) and the whole text is returned to be sent."""
    caption, rest = caption_parts(parts)
    text, markup = caption if caption is not None else (None, None)
    token = str(bot.token)
    if await _send_cached(bot, chat_id, name, text, markup, db):
        return rest
    if len(_uploading) > 1000:
        _uploading.clear()
    # The outbox sends many rows at once: the first send uploads, the others wait for its file_id.
    async with _uploading.setdefault((token, name), asyncio.Lock()):
        if await _send_cached(bot, chat_id, name, text, markup, db):
            return rest
        path = photos.path_of(var_dir or default_var_dir(), name)
        if path is None:
            log.warning("campaign photo %s… not found: text sent without it", name[:12])
            return parts
        data = await asyncio.to_thread(path.read_bytes)
        sent = await bot.send_photo(chat_id, data, caption=text, reply_markup=markup, filename=path.name)
        if sent is not None and getattr(sent, "photo", None):
            await asyncio.to_thread(photos.remember, db, token, name, sent.photo[-1].file_id)
    return rest


async def _send_cached(
    bot: Any, chat_id: int, name: str, text: str | None, markup: Markup | None, db: Database | None
) -> bool:
    """Send by the cached file_id if there is one; False when there is none (or it was refused)."""
    token = str(bot.token)
    file_id = photos.cached_file_id(None, token, name) or await asyncio.to_thread(
        photos.cached_file_id, db, token, name
    )
    if not file_id:
        return False
    try:
        await bot.send_photo(chat_id, file_id, caption=text, reply_markup=markup)
        return True
    except BadRequest as exc:  # a file_id of another bot, or no longer valid: upload again
        log.warning("cached photo file_id refused (%s): uploading again", exc.message[:80])
        await asyncio.to_thread(photos.forget, db, token, name)
        return False


async def send_with_photo(
    bot: Any,
    chat_id: int,
    message: dict[str, Any],
    callbacks: CallbackStore,
    empty_text: str = "…",
    db: Database | None = None,
) -> None:
    """A whole message with its photo (the /chiendich preview): the photo, then what is left."""
    parts = outgoing(message, callbacks, empty_text)
    if message.get("photo"):
        parts = await send_photo(bot, chat_id, str(message["photo"]), parts, db)
    for text, markup in parts:
        await bot.send_message(chat_id, text, reply_markup=markup)
