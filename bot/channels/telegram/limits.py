"""Telegram's flood limits: PTB's AIORateLimiter, plus per-chat pacing and network retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import BadRequest, NetworkError
from telegram.ext import AIORateLimiter

log = logging.getLogger(__name__)

Callback = Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]]


class ChannelRateLimiter(AIORateLimiter):
    """AIORateLimiter (about 30 messages/s overall, 20/min per group, RetryAfter retried
    max_retries times), plus:

    - about one message a second per private chat, as a bucket of `chat_burst` so a
      reply split into two or three messages still goes out at once;
    - network errors (not Telegram's refusals) retried with exponential backoff.
    """

    def __init__(
        self,
        *,
        max_retries: int = 3,
        network_retries: int = 3,
        backoff: float = 0.5,
        chat_burst: int = 3,
    ) -> None:
        super().__init__(overall_max_rate=29, group_max_rate=19, max_retries=max_retries)
        self.network_retries = network_retries
        self.backoff = backoff
        self.chat_burst = chat_burst
        self._chat_limiters: dict[int, AsyncLimiter] = {}

    def _chat_limiter(self, chat_id: int) -> AsyncLimiter:
        if len(self._chat_limiters) > 1024:
            for key, limiter in list(self._chat_limiters.items()):
                if limiter.has_capacity(limiter.max_rate):
                    del self._chat_limiters[key]
        limiter = self._chat_limiters.get(chat_id)
        if limiter is None:
            limiter = self._chat_limiters[chat_id] = AsyncLimiter(self.chat_burst, self.chat_burst)
        return limiter

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat_id: Any = data.get("chat_id")
        with contextlib.suppress(TypeError, ValueError):
            chat_id = int(chat_id)
        private = isinstance(chat_id, int) and chat_id > 0
        attempt = 0
        while True:
            try:
                if private:
                    async with self._chat_limiter(chat_id):
                        return await super().process_request(
                            callback, args, kwargs, endpoint, data, rate_limit_args
                        )
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
            except BadRequest:
                raise
            except NetworkError as exc:
                if attempt >= self.network_retries:
                    raise
                delay = self.backoff * 2**attempt
                attempt += 1
                log.info("telegram %s: %s, retry %d in %.1f s", endpoint, type(exc).__name__, attempt, delay)
                await asyncio.sleep(delay)
