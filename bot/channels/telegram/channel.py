"""The Telegram channel: a python-telegram-bot Application inside the app process.

Long polling by default; webhook mode (POST /telegram/webhook, secret header)
when TELEGRAM_WEBHOOK_URL is set. Every turn goes through ConversationService
with sender "telegram:<chat id>", like the web chat's "web:<id>".
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import unicodedata
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from telegram import BotCommand, InlineKeyboardMarkup, Message, MessageEntity, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import Forbidden, InvalidToken, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.channels.telegram.format import CallbackStore, button_title, contact_request, outgoing
from bot.channels.telegram.limits import ChannelRateLimiter
from bot.channels.telegram.sender import TelegramSender
from bot.channels.telegram.texts import Texts
from bot.channels.telegram.unsubscribe import is_blocked, unsubscribe_chat_async
from bot.config.settings import Settings
from bot.conversation.service import ConversationService
from bot.conversation.text import BadInput
from bot.services import Services
from bot.storage.citizens import touch_citizen

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
CHANNEL = "telegram"
MEDIA = (
    filters.PHOTO
    | filters.Sticker.ALL
    | filters.VOICE
    | filters.AUDIO
    | filters.VIDEO
    | filters.VIDEO_NOTE
    | filters.ANIMATION
    | filters.Document.ALL
    | filters.LOCATION
    | filters.VENUE
)
NEW = filters.UpdateType.MESSAGE  # edited messages and channel posts are not turns


def file_url(base_url: str) -> str:
    """The file URL that goes with a Bot API base URL ("…/bot" → "…/file/bot")."""
    base = base_url.rstrip("/")
    if base.endswith("/bot"):
        return base[: -len("/bot")] + "/file/bot"
    return base + "/file/bot"


class TelegramChannel:
    """Builds the Application and its handlers; started and stopped by the app's lifespan."""

    def __init__(self, settings: Settings, services: Services) -> None:
        self.settings = settings
        self.services = services
        self.db = services.db
        self.texts = Texts(services)
        self.callbacks = CallbackStore()
        self.webhook = bool(settings.telegram_webhook_url)
        self.conversation: ConversationService | None = None
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._locks: dict[int, asyncio.Lock] = {}
        self._contact_keyboards: set[int] = set()  # chats shown the share-contact keyboard
        self.on_ready: list[Callable[[], None]] = []  # e.g. the outbox taking Telegram rows from now on
        self.application = self._build()
        self.sender = TelegramSender(
            self.application.bot,
            self.db,
            self.callbacks,
            self.texts.get("buttons_only"),
            is_ready=lambda: self.ready.is_set() and self.application.running,
        )

    # --- set-up ---------------------------------------------------------------------------

    def _build(self) -> Application:
        builder = (
            ApplicationBuilder()
            .token(self.settings.telegram_bot_token)
            .rate_limiter(ChannelRateLimiter(max_retries=3))
            .concurrent_updates(16)  # turns of different chats in parallel; one chat stays in order
        )
        if self.settings.telegram_api_base_url:
            base = self.settings.telegram_api_base_url.rstrip("/")
            builder = builder.base_url(base).base_file_url(file_url(base))
        if self.webhook:
            builder = builder.updater(None)
        application = builder.build()
        # staff side (bot/channels/telegram/staff.py): invite links, /chiendich, /baocao, /lichhen
        from bot.channels.telegram.staff import StaffBot

        self.staff = StaffBot(self)
        self.staff.install(application)
        message = NEW
        application.add_handler(CommandHandler("start", self.on_start, filters=message))
        application.add_handler(CommandHandler(["help", "tro_giup"], self.on_help, filters=message))
        application.add_handler(CommandHandler("menu", self.on_menu, filters=message))
        application.add_handler(CommandHandler("huy", self.on_cancel, filters=message))
        application.add_handler(CommandHandler("stop", self.on_stop, filters=message))
        application.add_handler(CallbackQueryHandler(self.on_button))
        application.add_handler(ChatMemberHandler(self.on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
        application.add_handler(MessageHandler(NEW & filters.CONTACT, self.on_contact))
        application.add_handler(MessageHandler(NEW & MEDIA, self.on_media))
        application.add_handler(MessageHandler(NEW & filters.TEXT & ~filters.COMMAND, self.on_text))
        application.add_handler(MessageHandler(NEW & filters.COMMAND, self.on_unknown_command))
        application.add_error_handler(self.on_error)
        return application

    async def start(self, conversation: ConversationService) -> None:
        """Start in the background: the web chat does not wait for (or fail with) Telegram."""
        self.conversation = conversation
        self._task = asyncio.create_task(self._run(), name="telegram-start")

    async def _run(self) -> None:
        app = self.application
        delay = 1.0
        while True:
            try:
                await app.initialize()
                await self._set_commands()
                if not app.running:
                    await app.start()
                if self.webhook:
                    await app.bot.set_webhook(
                        self.settings.telegram_webhook_url,
                        secret_token=self.settings.telegram_webhook_secret,
                        allowed_updates=Update.ALL_TYPES,
                    )
                elif app.updater is not None and not app.updater.running:
                    await app.updater.start_polling(allowed_updates=Update.ALL_TYPES)
                self.ready.set()
                log.info("telegram channel running (%s)", "webhook" if self.webhook else "long polling")
                for callback in self.on_ready:
                    callback()
                return
            except InvalidToken:
                log.error("telegram channel off: TELEGRAM_BOT_TOKEN was refused")
                return
            except TelegramError as exc:
                log.warning("telegram start failed (%s); retrying in %.0f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def _set_commands(self) -> None:
        commands = [BotCommand(name, text) for name, text in self.texts.commands().items()]
        try:
            await self.application.bot.set_my_commands(commands)
        except TelegramError as exc:
            log.warning("telegram set_my_commands failed: %s", type(exc).__name__)

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        app = self.application
        with contextlib.suppress(Exception):
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
        with contextlib.suppress(Exception):
            if app.running:
                await app.stop()
        with contextlib.suppress(Exception):
            await app.shutdown()
        log.info("telegram channel stopped")

    def webhook_router(self) -> APIRouter:
        """POST /telegram/webhook: updates from Telegram, refused without the secret header."""
        router = APIRouter()
        secret = self.settings.telegram_webhook_secret.encode()

        @router.post(WEBHOOK_PATH, include_in_schema=False)
        async def telegram_webhook(request: Request) -> JSONResponse:
            given = request.headers.get(SECRET_HEADER, "").encode()
            if not secret or not hmac.compare_digest(given, secret):
                return JSONResponse({"error": "forbidden"}, status_code=403)
            try:
                update = Update.de_json(await request.json(), self.application.bot)
            except Exception:  # noqa: BLE001 - anything unreadable is the sender's problem
                return JSONResponse({"error": "bad update"}, status_code=400)
            await self.application.update_queue.put(update)
            return JSONResponse({})

        return router

    # --- handlers -------------------------------------------------------------------------

    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        await self._touch(chat.id)
        text = f"{self.texts.common('greet')}\n\n{self.texts.common('privacy_notice')}"
        await self.send(context.bot, chat.id, {"text": text, "buttons": self.texts.menu()})

    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        text = f"{self.texts.common('help')}\n\n{self.texts.get('commands_help')}"
        await self.send(context.bot, chat.id, {"text": text, "buttons": self.texts.menu()})

    async def on_menu(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        await self.send(context.bot, chat.id, {"text": self.texts.get("menu"), "buttons": self.texts.menu()})

    async def on_cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/huy: leave the current flow (the "/stop" intent in Rasa)."""
        chat = update.effective_chat
        if chat is None:
            return
        await self._touch(chat.id)
        fallback = [{"text": self.texts.get("cancelled_fallback")}]
        await self._turn(context.bot, chat.id, "/stop", fallback=fallback)

    async def on_stop(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/stop: no more notices from the ward on Telegram."""
        chat = update.effective_chat
        if chat is None:
            return
        await self._touch(chat.id)
        await unsubscribe_chat_async(self.db, str(chat.id), "stop command")
        await self.send(context.bot, chat.id, {"text": self.texts.get("unsubscribed")})

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        chat = update.effective_chat
        if message is None or chat is None or message.text is None:
            return
        text = unicodedata.normalize("NFC", message.text)
        if chat.type != ChatType.PRIVATE:
            if not addressed_to_bot(message, context.bot.id, context.bot.username):
                return
            text = strip_mention(text, context.bot.username)
            if not text:  # just "@bot": show what it can do
                await self.on_menu(update, context)
                return
        conversation = self._conversation()
        try:
            prepared = conversation.prepare(text, None)
        except BadInput:
            await self.send(context.bot, chat.id, {"text": self.texts.get("bad_input")})
            return
        await self._touch(chat.id)
        await self._turn(context.bot, chat.id, prepared)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        payload = self.callbacks.resolve(query.data)
        prepared: str | None = None
        if payload is not None:
            try:
                prepared = self._conversation().prepare(None, payload)
            except BadInput:
                prepared = None
        if prepared is None:  # expired token, or callback data we never sent
            with contextlib.suppress(TelegramError):
                await query.answer(self.texts.get("button_expired"))
            await self.send(context.bot, chat_id, {"text": self.texts.get("button_expired")})
            return
        with contextlib.suppress(TelegramError):  # e.g. "query is too old": the turn still runs
            await query.answer()
        markup: InlineKeyboardMarkup | None = getattr(query.message, "reply_markup", None)
        title = button_title(markup, query.data or "")
        echo = {"text": self.texts.get("button_echo", title=title)} if title else None
        await self._touch(chat_id)
        await self._turn(context.bot, chat_id, prepared, echo=echo)

    async def on_media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        chat = update.effective_chat
        if message is None or chat is None:
            return
        if chat.type != ChatType.PRIVATE and not addressed_to_bot(
            message, context.bot.id, context.bot.username
        ):
            return
        await self.send(context.bot, chat.id, {"text": self.texts.get("text_only")})

    async def on_contact(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A shared contact. The citizen's own number, while the booking form asks for the phone
        (the share-contact keyboard is up), is their answer; someone else's is refused; otherwise
        it is only acknowledged. The number is never logged."""
        chat = update.effective_chat
        message = update.message
        if chat is None or message is None or message.contact is None or chat.type != ChatType.PRIVATE:
            return
        contact, sender = message.contact, update.effective_user
        if sender is None or contact.user_id is None or contact.user_id != sender.id:
            await self.send(context.bot, chat.id, {"text": self.texts.get("contact_not_own")})
            return
        if chat.id not in self._contact_keyboards:
            await self.send(context.bot, chat.id, {"text": self.texts.get("contact_received")})
            return
        number = contact.phone_number.strip()
        try:
            prepared = self._conversation().prepare(number if number.startswith("+") else f"+{number}", None)
        except BadInput:
            await self.send(context.bot, chat.id, {"text": self.texts.get("bad_input")})
            return
        await self._touch(chat.id)
        await self._turn(context.bot, chat.id, prepared)

    async def on_unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None or chat.type != ChatType.PRIVATE:
            return
        await self.send(context.bot, chat.id, {"text": self.texts.get("unknown_command")})

    async def on_my_chat_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        if change is None:
            return
        status = change.new_chat_member.status
        if status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT):
            reason = "bot was blocked" if change.chat.type == ChatType.PRIVATE else "bot removed from chat"
            await unsubscribe_chat_async(self.db, str(change.chat.id), reason)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """One bad update never stops the bot. Logged by type only: no text, no personal data."""
        log.warning("telegram update failed: %s", type(context.error).__name__)

    # --- turns and sending ----------------------------------------------------------------

    def _conversation(self) -> ConversationService:
        if self.conversation is None:
            raise RuntimeError("telegram channel used before start")
        return self.conversation

    def _lock(self, chat_id: int) -> asyncio.Lock:
        if len(self._locks) > 4096:
            for key, lock in list(self._locks.items()):
                if not lock.locked():
                    del self._locks[key]
        return self._locks.setdefault(chat_id, asyncio.Lock())

    async def _touch(self, chat_id: int) -> None:
        await asyncio.to_thread(touch_citizen, self.db, CHANNEL, str(chat_id))

    async def _turn(
        self,
        bot: Any,
        chat_id: int,
        message: str,
        *,
        echo: dict[str, Any] | None = None,
        fallback: list[dict[str, Any]] | None = None,
    ) -> None:
        """One turn through Rasa and its replies; one chat's turns run (and answer) in order."""
        async with self._lock(chat_id):
            if echo is not None and not await self.send(bot, chat_id, echo):
                return
            turn = await self._conversation().handle(f"{CHANNEL}:{chat_id}", message, {"channel": CHANNEL})
            await self.send_all(bot, chat_id, turn.messages or fallback or [])

    async def send_all(self, bot: Any, chat_id: int, messages: list[dict[str, Any]]) -> None:
        # a share-contact keyboard left up is taken away by the next turn's first message
        remove = chat_id in self._contact_keyboards and not any(contact_request(m) for m in messages)
        for i, message in enumerate(messages):
            if not await self.send(bot, chat_id, message, remove_keyboard=remove and i == 0):
                return
        if remove and messages:
            self._contact_keyboards.discard(chat_id)

    async def send(
        self, bot: Any, chat_id: int, message: dict[str, Any], *, remove_keyboard: bool = False
    ) -> bool:
        """Send one chat API message (split, keyboard on the last part); False if the chat is gone."""
        if contact_request(message):
            self._contact_keyboards.add(chat_id)
        parts = outgoing(
            message, self.callbacks, self.texts.get("buttons_only"), remove_keyboard=remove_keyboard
        )
        for text, markup in parts:
            try:
                await bot.send_message(chat_id, text, reply_markup=markup)
            except Forbidden as exc:
                if is_blocked(exc):
                    await unsubscribe_chat_async(self.db, str(chat_id), "bot was blocked")
                    return False
                raise
        return True


def addressed_to_bot(message: Message, bot_id: int, username: str | None) -> bool:
    """In a group: the message mentions the bot or replies to one of its messages."""
    reply = message.reply_to_message
    if reply is not None and reply.from_user is not None and reply.from_user.id == bot_id:
        return True
    mention = f"@{username}".lower() if username else None
    for entities in (
        message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION]),
        message.parse_caption_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION]),
    ):
        for entity, text in entities.items():
            if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot_id:
                return True
            if entity.type == MessageEntity.MENTION and mention and text.lower() == mention:
                return True
    return False


def strip_mention(text: str, username: str | None) -> str:
    if not username:
        return text
    mention = f"@{username}"
    lowered = text.lower()
    at = lowered.find(mention.lower())
    while at >= 0:
        text = text[:at] + text[at + len(mention) :]
        lowered = text.lower()
        at = lowered.find(mention.lower())
    return text.strip()
