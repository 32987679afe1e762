"""The outbox Sender for Zalo: reminders and notices go through the same rules as replies."""

from __future__ import annotations

import logging

from bot.campaigns import photos
from bot.channels.zalo import images
from bot.channels.zalo.channel import ZaloChannel
from bot.outbox.types import SendResult

log = logging.getLogger(__name__)


class ZaloSender:
    """`Sender` for channel "zalo" (docs/helpers-brief.md); never raises for Zalo's refusals.

    Outside the 48-hour window without ZALO_PROACTIVE: SendResult("skipped",
    "outside 48h window"), also recorded in zalo_refusals. A message's "photo" (campaigns) goes
    as an image message before the text and its buttons (uploaded once, see images.py); a photo
    Zalo does not take (WebP, over 1 MB) or a missing file: the text goes alone and the result
    says why ("sent", "photo left out (...)").
    """

    channel = "zalo"

    def __init__(self, zalo: ZaloChannel) -> None:
        self.zalo = zalo

    async def send(self, external_id: str, message: dict) -> SendResult:
        if not message.get("text"):
            return SendResult("failed", "empty message")
        name = message.get("photo")
        if not name:
            return await self.zalo.deliver(external_id, [message], kind="outbox")
        message = {key: value for key, value in message.items() if key != "photo"}
        path = photos.path_of(self.zalo.settings.var_dir, str(name))
        left_out = images.left_out_reason(path)
        if left_out is None:
            return await self.zalo.deliver(external_id, [message], kind="outbox", photo=path)
        result = await self.zalo.deliver(external_id, [message], kind="outbox")
        if result.status == "sent":
            log.info("zalo outbox message sent without its photo: %s", left_out)
            return SendResult("sent", left_out)
        return result
