"""The outbox Sender for Zalo: reminders and notices go through the same rules as replies."""

from __future__ import annotations

from bot.channels.zalo.channel import ZaloChannel
from bot.outbox.types import SendResult


class ZaloSender:
    """`Sender` for channel "zalo" (docs/helpers-brief.md); never raises for Zalo's refusals.

    Outside the 48-hour window without ZALO_PROACTIVE: SendResult("skipped",
    "outside 48h window"), also recorded in zalo_refusals.
    """

    channel = "zalo"

    def __init__(self, zalo: ZaloChannel) -> None:
        self.zalo = zalo

    async def send(self, external_id: str, message: dict) -> SendResult:
        if not message.get("text"):
            return SendResult("failed", "empty message")
        return await self.zalo.deliver(external_id, [message], kind="outbox")
