"""Delivering chat messages to a Zalo user: the 48-hour rule, then the cs API."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from bot.channels.zalo import images, window
from bot.channels.zalo.api import TOKEN_ERRORS, ApiResult, ZaloClient, build_bodies, image_body
from bot.outbox.types import SendResult
from bot.services import Services

log = logging.getLogger(__name__)


class ZaloChannel:
    """One per app: the API client plus the rules every Zalo send goes through."""

    def __init__(self, services: Services, client: ZaloClient | None = None) -> None:
        self.services = services
        self.settings = services.settings
        self.client = client or ZaloClient.from_settings(services.settings, services.db)
        self.attachments = images.AttachmentCache()

    @property
    def db(self):
        return self.services.db

    async def aclose(self) -> None:
        await self.client.aclose()

    async def deliver(
        self,
        user_id: str,
        messages: list[dict[str, Any]],
        *,
        kind: str,
        quote_id: str | None = None,
        photo: Path | None = None,
    ) -> SendResult:
        """Send chat messages ({"text", "buttons"}) in order; stops at the first failure.

        Outside the 48-hour window, or once Zalo's quota of messages for the
        citizen's last interaction is used (and without ZALO_PROACTIVE), nothing
        more is sent: the refusal is recorded and the result is "skipped".

        `photo` (a stored JPEG/PNG of at most 1 MB, see images.left_out_reason) goes first, as an
        image message of its own (one more message of the quota), uploaded only once the window
        allows it and only when the cache has no attachment id for it. When the quota leaves room
        for the text but not for the image too, the text goes alone ("sent", LEFT_OUT_QUOTA). A
        refused upload ends the delivery as a refused send does (failed, or retry if transient).
        An image message refused with a cached id (Zalo may have dropped the image) is sent once
        more after a new upload.
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
        note = ""
        cached: str | None = None  # the image's attachment id, when it came from the cache
        if photo is not None and bodies:
            if remaining is None or remaining > len(bodies):
                found = await self.attachment_id(photo)
                if isinstance(found, SendResult):
                    return found
                attachment, uploaded = found
                cached = None if uploaded else attachment
                bodies.insert(0, image_body(user_id, attachment))
            elif remaining > 0:
                note = images.LEFT_OUT_QUOTA
        for count, body in enumerate(bodies):
            if remaining is not None and count >= remaining:
                reason = reason or window.QUOTA_USED
                await asyncio.to_thread(window.record_refusal, self.db, user_id, reason, kind)
                log.info("zalo %s not sent: %s", kind, reason)
                return SendResult("skipped", reason)
            result = await self.client.send_cs(body)
            if not result.ok and count == 0 and cached is not None and photo is not None:
                if result.transient or result.error in TOKEN_ERRORS:
                    return to_send_result(result)
                log.info("zalo image refused with a cached id (%s): uploading again", result.reason)
                self.attachments.forget(photo.name, cached)
                found = await self.attachment_id(photo)
                if isinstance(found, SendResult):
                    return found
                result = await self.client.send_cs(image_body(user_id, found[0]))
            if not result.ok:
                log.warning("zalo %s send failed: %s", kind, result.reason)
                if kind == "reply":
                    await asyncio.to_thread(window.record_refusal, self.db, user_id, result.reason, kind)
                return to_send_result(result)
            await asyncio.to_thread(window.record_sent, self.db, user_id)
        return SendResult("sent", note)

    async def attachment_id(self, photo: Path) -> tuple[str, bool] | SendResult:
        """(the photo's attachment id, uploaded by this call): cached, or uploaded now (once for
        concurrent sends). A refused upload gives the SendResult to end the delivery with
        (reason "photo upload failed: ...").
        """
        name = photo.name
        found = self.attachments.get(name)
        if found is not None:
            return found, False
        async with self.attachments.lock(name):
            found = self.attachments.get(name)
            if found is not None:
                return found, False
            try:
                data = await asyncio.to_thread(photo.read_bytes)
            except OSError:
                return SendResult("failed", images.LEFT_OUT_MISSING)
            result = await self.client.upload_image(data, name, images.media_type(photo))
            if not result.ok or result.data is None:
                log.warning("zalo photo upload failed: %s", result.reason)
                refused = to_send_result(result)
                why = f"photo upload failed: {result.reason}"
                return SendResult(refused.status, why, refused.retry_after)
            attachment = str(result.data["attachment_id"])
            self.attachments.put(name, attachment)
            log.info("zalo photo uploaded (%d bytes)", len(data))
            return attachment, True


def to_send_result(result: ApiResult) -> SendResult:
    if result.ok:
        return SendResult("sent")
    if result.transient:
        return SendResult("retry", result.reason, retry_after=30.0)
    return SendResult("failed", result.reason)
