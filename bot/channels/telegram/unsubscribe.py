"""Telling the subscriptions service that a Telegram chat no longer wants (or gets) messages."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram.error import Forbidden

from bot.subscriptions.service import unsubscribe

log = logging.getLogger(__name__)

BLOCKED_MARKERS = (
    "bot was blocked by the user",
    "user is deactivated",
    "bot was kicked",
    "bot is not a member",
)


def is_blocked(exc: BaseException) -> bool:
    """A 403 that means this chat cannot receive messages any more."""
    return isinstance(exc, Forbidden) and any(m in str(exc.message).lower() for m in BLOCKED_MARKERS)


async def unsubscribe_chat_async(db: Any, external_id: str, reason: str) -> bool:
    """bot.subscriptions.service.unsubscribe (idempotent); never raises into a handler."""
    try:
        await asyncio.to_thread(unsubscribe, db, "telegram", external_id, reason)
    except Exception as exc:  # noqa: BLE001 - never let bookkeeping break a reply
        log.warning("telegram unsubscribe failed: %s", type(exc).__name__)
        return False
    return True
