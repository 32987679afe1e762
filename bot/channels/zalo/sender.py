"""The outbox Sender for Zalo: reminders and notices go through the same rules as replies."""

from __future__ import annotations

import logging

from bot.channels.zalo.channel import ZaloChannel
from bot.outbox.types import SendResult

log = logging.getLogger(__name__)

# Zalo's OA API sends an image either by a public URL or by an attachment id from its upload
# API; the app has no public URL for its uploads and our client (api.py) no upload call, so a
# campaign photo is left out on Zalo: the text and buttons go, and the row's reason says so.
PHOTO_LEFT_OUT = "photo left out (Zalo needs a public image URL)"


class ZaloSender:
    """`Sender` for channel "zalo" (docs/helpers-brief.md); never raises for Zalo's refusals.

    Outside the 48-hour window without ZALO_PROACTIVE: SendResult("skipped",
    "outside 48h window"), also recorded in zalo_refusals. A message's "photo" (campaigns) is
    not sent: see PHOTO_LEFT_OUT.
    """

    channel = "zalo"

    def __init__(self, zalo: ZaloChannel) -> None:
        self.zalo = zalo

    async def send(self, external_id: str, message: dict) -> SendResult:
        if not message.get("text"):
            return SendResult("failed", "empty message")
        if message.get("photo"):
            message = {key: value for key, value in message.items() if key != "photo"}
            result = await self.zalo.deliver(external_id, [message], kind="outbox")
            if result.status == "sent":
                log.info("zalo outbox message sent without its photo")
                return SendResult("sent", PHOTO_LEFT_OUT)
            return result
        return await self.zalo.deliver(external_id, [message], kind="outbox")
