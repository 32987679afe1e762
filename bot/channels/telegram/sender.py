"""The outbox Sender for Telegram: what the app sends on its own (reminders, notices)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.channels.telegram.format import CallbackStore, outgoing
from bot.channels.telegram.photo import send_photo
from bot.channels.telegram.unsubscribe import is_blocked, unsubscribe_chat_async
from bot.outbox.types import SendResult

log = logging.getLogger(__name__)


class TelegramSender:
    """Sends one chat API message ({"text", "buttons"}) to a Telegram chat; never raises for
    Telegram's refusals. `bot` is the channel's bot (rate-limited, RetryAfter retried)."""

    channel = "telegram"

    def __init__(
        self,
        bot: Bot | None,
        db: Any = None,
        callbacks: CallbackStore | None = None,
        buttons_text: str = "…",
        is_ready: Callable[[], bool] | None = None,
    ) -> None:
        self.bot = bot
        self.is_ready = is_ready or (lambda: True)
        self.db = db
        self.callbacks = callbacks or CallbackStore()
        self.buttons_text = buttons_text

    async def send(self, external_id: str, message: dict[str, Any]) -> SendResult:
        if self.bot is None or not self.is_ready():
            return SendResult("retry", "telegram channel not running", retry_after=60.0)
        try:
            chat_id = int(external_id)
        except ValueError:
            return SendResult("failed", "not a Telegram chat id")
        parts = outgoing(message, self.callbacks, self.buttons_text)
        if not parts:
            return SendResult("skipped", "nothing to send")
        try:
            if message.get("photo"):  # campaign photo: sendPhoto (caption ≤ 1024) first, see photo.py
                parts = await send_photo(self.bot, chat_id, str(message["photo"]), parts, self.db)
            for text, markup in parts:
                await self.bot.send_message(chat_id, text, reply_markup=markup)
        except RetryAfter as exc:
            # (the public retry_after warns about int vs timedelta; PTB itself reads this)
            retry = exc._retry_after.total_seconds()
            return SendResult("retry", "rate limited", retry_after=retry)
        except Forbidden as exc:
            if is_blocked(exc):
                if self.db is not None:
                    await unsubscribe_chat_async(self.db, external_id, "bot was blocked")
                return SendResult("blocked", "bot was blocked")
            return SendResult("failed", "forbidden")
        except BadRequest as exc:
            return SendResult("failed", f"bad request: {exc.message}"[:200])
        except NetworkError as exc:  # already retried with backoff by the rate limiter
            return SendResult("retry", f"network: {type(exc).__name__}")
        except TelegramError as exc:
            return SendResult("failed", type(exc).__name__)
        return SendResult("sent")
