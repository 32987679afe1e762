"""Delivering chat messages to a Zalo user: the 48-hour rule, then the cs API."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.channels.zalo import window
from bot.channels.zalo.api import ApiResult, ZaloClient, build_bodies
from bot.outbox.types import SendResult
from bot.services import Services

log = logging.getLogger(__name__)


class ZaloChannel:
    """One per app: the API client plus the rules every Zalo send goes through."""

    def __init__(self, services: Services, client: ZaloClient | None = None) -> None:
        self.services = services
        self.settings = services.settings
        self.client = client or ZaloClient.from_settings(services.settings, services.db)

    @property
    def db(self):
        return self.services.db

    async def aclose(self) -> None:
        await self.client.aclose()

    async def deliver(
        self, user_id: str, messages: list[dict[str, Any]], *, kind: str, quote_id: str | None = None
    ) -> SendResult:
        """Send chat messages ({"text", "buttons"}) in order; stops at the first failure.

        Outside the 48-hour window, or once Zalo's quota of messages for the
        citizen's last interaction is used (and without ZALO_PROACTIVE), nothing
        more is sent: the refusal is recorded and the result is "skipped".
        """
        more = self.services.kb.message("zalo_more_options")
        bodies = [
            body
            for index, message in enumerate(messages)
            for body in build_bodies(user_id, message, more, quote_id if index == 0 else None)
        ]
        reason, remaining = await asyncio.to_thread(
            window.allowance, self.db, user_id, proactive=self.settings.zalo_proactive
        )
        for count, body in enumerate(bodies):
            if remaining is not None and count >= remaining:
                reason = reason or window.QUOTA_USED
                await asyncio.to_thread(window.record_refusal, self.db, user_id, reason, kind)
                log.info("zalo %s not sent: %s", kind, reason)
                return SendResult("skipped", reason)
            result = await self.client.send_cs(body)
            if not result.ok:
                log.warning("zalo %s send failed: %s", kind, result.reason)
                if kind == "reply":
                    await asyncio.to_thread(window.record_refusal, self.db, user_id, result.reason, kind)
                return to_send_result(result)
            await asyncio.to_thread(window.record_sent, self.db, user_id)
        return SendResult("sent")


def to_send_result(result: ApiResult) -> SendResult:
    if result.ok:
        return SendResult("sent")
    if result.transient:
        return SendResult("retry", result.reason, retry_after=30.0)
    return SendResult("failed", result.reason)
