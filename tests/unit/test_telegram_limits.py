"""The Telegram rate limiter: network errors retried with backoff, refusals not retried."""

from __future__ import annotations

import datetime as dt

import pytest
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.channels.telegram.limits import ChannelRateLimiter

# PTB 22 warns inside RetryAfter itself about its future timedelta type
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


class Flaky:
    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self, *args: object, **kwargs: object) -> dict[str, bool]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"ok": True}


async def run(limiter: ChannelRateLimiter, callback: Flaky, chat_id: int = 42) -> object:
    return await limiter.process_request(callback, (), {}, "sendMessage", {"chat_id": chat_id}, None)


async def test_network_errors_are_retried_with_backoff() -> None:
    limiter = ChannelRateLimiter(backoff=0.01)
    callback = Flaky(NetworkError("reset"), TimedOut())
    assert await run(limiter, callback) == {"ok": True}
    assert callback.calls == 3


async def test_network_retries_are_bounded_and_bad_requests_not_retried() -> None:
    limiter = ChannelRateLimiter(backoff=0.01, network_retries=2)
    with pytest.raises(NetworkError):
        await run(limiter, Flaky(*[NetworkError("down")] * 5))
    callback = Flaky(BadRequest("chat not found"))
    with pytest.raises(BadRequest):
        await run(limiter, callback)
    assert callback.calls == 1


async def test_retry_after_is_waited_out_then_sent() -> None:
    limiter = ChannelRateLimiter(max_retries=2)
    callback = Flaky(RetryAfter(dt.timedelta(seconds=0.05)))
    assert await run(limiter, callback, chat_id=-100) == {"ok": True}
    assert callback.calls == 2
