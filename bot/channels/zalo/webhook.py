"""POST /zalo/webhook: verify, answer 200 at once, handle the event in the background.

Zalo wants a 200 within 2 seconds and retries otherwise, so the request only
checks the signature and parses the JSON; the turn (Rasa, the cs API) runs in
an asyncio task. Each event is claimed in the database first (by msg_id, or
event/user/timestamp for follow and unfollow), so a retried delivery is
handled once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from bot.channels.zalo.api import SIGNATURE_HEADER, verify_signature
from bot.channels.zalo.channel import ZaloChannel
from bot.channels.zalo.models import ZaloInbound
from bot.channels.zalo.sender import ZaloSender
from bot.conversation.text import BadInput
from bot.storage.citizens import touch_citizen
from bot.storage.db import Database

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
SHUTDOWN_GRACE = 5.0
NOT_TEXT = frozenset(
    {"image", "sticker", "gif", "audio", "video", "file", "location", "link", "business_card"}
)


def claim(db: Database, key: str, event_name: str) -> bool:
    """Record the event; False when it was already handled (a retried delivery)."""
    try:
        with db.session() as session:
            session.add(ZaloInbound(event_key=key[:160], event_name=event_name[:40]))
    except IntegrityError:
        return False
    return True


def event_user(event: dict[str, Any]) -> str | None:
    """The Zalo user id the event is about."""
    for field in ("follower", "sender", "user"):
        value = event.get(field)
        if isinstance(value, dict) and value.get("id"):
            return str(value["id"])[:64]
    return None


def event_key(event: dict[str, Any], user_id: str) -> str:
    message = event.get("message")
    if isinstance(message, dict) and message.get("msg_id"):
        return f"msg:{message['msg_id']}"
    return f"{event.get('event_name')}:{user_id}:{event.get('timestamp')}"


def read_message(text: str, conversation: Any) -> str:
    """A button click arrives as text equal to the payload ("/intent"); the rest is typed text."""
    if text.strip().startswith("/"):
        with contextlib.suppress(BadInput):
            return conversation.prepare(None, text)
    return conversation.prepare(text, None)


class ZaloWebhook:
    """Owns the channel and the background tasks for the app's lifetime."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.services = app.state.services
        self.settings = self.services.settings
        self.zalo = ZaloChannel(self.services)
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def db(self) -> Database:
        return self.services.db

    def spawn(self, event: dict[str, Any]) -> None:
        task = asyncio.create_task(self.process(event))
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("zalo event failed: %s", type(task.exception()).__name__)

    async def aclose(self) -> None:
        if self.tasks:
            _, pending = await asyncio.wait(set(self.tasks), timeout=SHUTDOWN_GRACE)
            for task in pending:
                task.cancel()
        await self.zalo.aclose()

    async def process(self, event: dict[str, Any]) -> None:
        name = str(event.get("event_name") or "")
        user_id = event_user(event)
        kind = name.removeprefix("user_send_")
        handled = name in {"user_send_text", "follow", "unfollow"} or (
            name.startswith("user_send_") and kind in NOT_TEXT
        )
        if not handled or not user_id:
            log.debug("zalo event %s ignored", name or "(none)")
            return
        if not await asyncio.to_thread(claim, self.db, event_key(event, user_id), name):
            log.info("zalo event %s already handled (retried delivery)", name)
            return
        if name == "unfollow":
            await self.unfollow(user_id)
            return
        await asyncio.to_thread(touch_citizen, self.db, "zalo", user_id)
        message = event.get("message") if isinstance(event.get("message"), dict) else {}
        quote_id = str(message["msg_id"]) if message.get("msg_id") else None
        if name == "user_send_text":
            await self.text(user_id, str(message.get("text") or ""), quote_id)
        elif name == "follow":
            await self.turn(user_id, "/greet", None)
        else:
            await self.not_text(user_id, kind, quote_id)

    async def text(self, user_id: str, text: str, quote_id: str | None) -> None:
        conversation = self.app.state.conversation
        try:
            prepared = read_message(text, conversation)
        except BadInput as exc:
            log.info("zalo text refused: %s", exc)
            return
        await self.turn(user_id, prepared, quote_id)

    async def turn(self, user_id: str, prepared: str, quote_id: str | None) -> None:
        conversation = self.app.state.conversation
        turn = await conversation.handle(f"zalo:{user_id}", prepared, {"channel": "zalo"})
        messages = [m for m in turn.messages if m.get("text")]
        if messages:
            await self.zalo.deliver(user_id, messages, kind="reply", quote_id=quote_id)

    async def not_text(self, user_id: str, kind: str, quote_id: str | None) -> None:
        kb = self.services.kb
        label = str(kb.messages.get("zalo_kinds", {}).get(kind) or kind)
        text = kb.message("zalo_not_text", kind=label, **self.services.ward.placeholders())
        await self.zalo.deliver(user_id, [{"text": text}], kind="reply", quote_id=quote_id)

    async def unfollow(self, user_id: str) -> None:
        try:
            from bot.subscriptions.service import unsubscribe
        except ImportError:  # built concurrently by the subscriptions work
            log.warning("zalo unfollow: bot.subscriptions is not available, nothing to unsubscribe")
            return
        await asyncio.to_thread(unsubscribe, self.db, "zalo", user_id, "unfollow")
        log.info("zalo user unfollowed: unsubscribed")


def zalo_router() -> APIRouter:
    """The webhook route; its lifespan starts and stops the channel inside the app's own."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        webhook = ZaloWebhook(app)
        app.state.zalo_webhook = webhook
        app.state.zalo_sender = sender = ZaloSender(webhook.zalo)
        outbox = getattr(app.state, "outbox", None)
        if outbox is not None:
            outbox.register(sender)
        try:
            yield
        finally:
            if outbox is not None:  # the outbox first: it may be sending through our client
                await outbox.stop()  # (idempotent: the app's lifespan stops it again)
            await webhook.aclose()

    router = APIRouter(lifespan=lifespan)

    @router.post("/zalo/webhook")
    async def zalo_webhook(request: Request) -> JSONResponse:
        webhook: ZaloWebhook = request.app.state.zalo_webhook
        settings = webhook.settings
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "too_large"}, status_code=413)
        header = request.headers.get(SIGNATURE_HEADER)
        if not header:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            event = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return JSONResponse({"error": "malformed_json"}, status_code=400)
        if not isinstance(event, dict):
            return JSONResponse({"error": "malformed_json"}, status_code=400)
        timestamp = str(event.get("timestamp") or "")
        if not verify_signature(header, settings.zalo_app_id, body, timestamp, settings.zalo_oa_secret_key):
            log.warning("zalo webhook: bad signature")
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        webhook.spawn(event)
        return JSONResponse({"ok": True})

    return router
