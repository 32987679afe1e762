"""/chiendich: a guided campaign for cadres and admins (PTB ConversationHandler).

text → photo (send one, or press «Bỏ qua») → button (a guide, booking, none) → blocks (the
actor's scope only) → audience tag → channels → schedule (now / a typed date-time / weekly
until a date) → preview exactly as citizens get it (with the photo: sendPhoto, the text as its
caption when it fits), with the recipient count → confirm or discard. /huy leaves at any step.
The photo is downloaded from Telegram and stored like the pages' uploads
(bot/campaigns/photos.py: JPEG/PNG/WebP, ≤ 5 MB); its file_id is kept for the sends. Scope is checked
again by bot.campaigns.service on create and confirm; a forged block callback is refused here
already (re-read from the database, like the service does).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import warnings
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.appointments.dates import WhenError, parse_when
from bot.campaigns import photos, service
from bot.campaigns.errors import CampaignError, Forbidden
from bot.campaigns.models import MAX_TEXT
from bot.campaigns.reports import campaign_texts
from bot.channels.telegram.format import keyboard
from bot.channels.telegram.photo import send_with_photo
from bot.staff.accounts import Staff
from bot.staff.tgtexts import text
from bot.storage.db import utcnow

if TYPE_CHECKING:
    from bot.channels.telegram.staff import StaffBot

log = logging.getLogger(__name__)

TEXT, BUTTON, BLOCKS, TAG, CHANNELS, SCHEDULE, TIME, UNTIL, CONFIRM, PHOTO = range(10)
PREFIX = "sc:"
DRAFT = "campaign_draft"
NOT_VNEID = "not vneid_muc2"
MAX_TITLE = 60
Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[object]]


def stop(callback: Handler) -> Handler:
    """Handled here: the citizen handlers (group 0) must not see the update as well."""

    async def wrapped(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        raise ApplicationHandlerStop(await callback(update, context))

    wrapped.__name__ = callback.__name__
    return wrapped


def title_of(message: str) -> str:
    """The campaign's title: the start of its first line (staff see it in lists and reports)."""
    first = next((line.strip() for line in message.splitlines() if line.strip()), "")
    return first if len(first) <= MAX_TITLE else first[: MAX_TITLE - 1].rstrip() + "…"


def short(title: str, limit: int = service.MAX_BUTTON_TITLE) -> str:
    return title if len(title) <= limit else title[: limit - 1].rsplit(" ", 1)[0] + "…"


class CampaignFlow:
    """The /chiendich conversation; state lives in context.user_data[DRAFT]."""

    def __init__(self, staff: StaffBot) -> None:
        self.staff = staff
        self.db = staff.db
        self.services = staff.services

    def handler(self) -> ConversationHandler:
        step = {
            TEXT: [MessageHandler(filters.TEXT & ~filters.COMMAND, stop(self.on_text))],
            PHOTO: [
                MessageHandler(filters.PHOTO | filters.Document.IMAGE, stop(self.on_photo)),
                CallbackQueryHandler(stop(self.on_photo_skip), pattern=f"^{PREFIX}photo:skip$"),
            ],
            BUTTON: [CallbackQueryHandler(stop(self.on_button), pattern=f"^{PREFIX}btn:")],
            BLOCKS: [CallbackQueryHandler(stop(self.on_block), pattern=f"^{PREFIX}blk:")],
            TAG: [CallbackQueryHandler(stop(self.on_tag), pattern=f"^{PREFIX}tag:")],
            CHANNELS: [CallbackQueryHandler(stop(self.on_channels), pattern=f"^{PREFIX}ch:")],
            SCHEDULE: [CallbackQueryHandler(stop(self.on_schedule), pattern=f"^{PREFIX}when:")],
            TIME: [MessageHandler(filters.TEXT & ~filters.COMMAND, stop(self.on_time))],
            UNTIL: [MessageHandler(filters.TEXT & ~filters.COMMAND, stop(self.on_until))],
            CONFIRM: [CallbackQueryHandler(stop(self.on_confirm), pattern=f"^{PREFIX}(ok|no)$")],
        }
        with warnings.catch_warnings():  # per_message=False is intended: one flow per chat, not per message
            warnings.simplefilter("ignore", PTBUserWarning)
            return ConversationHandler(
                entry_points=[
                    CommandHandler("chiendich", stop(self.on_entry), filters=filters.UpdateType.MESSAGE)
                ],
                states=step,
                fallbacks=[
                    CommandHandler("huy", stop(self.on_leave)),
                    MessageHandler(~filters.COMMAND, stop(self.on_other)),
                ],
                allow_reentry=True,
                name="chiendich",
            )

    # --- helpers ------------------------------------------------------------------------------

    async def say(self, update: Update, context: ContextTypes.DEFAULT_TYPE, body: str, buttons=None) -> None:
        chat = update.effective_chat
        assert chat is not None
        await self.staff.channel.send(context.bot, chat.id, {"text": body, "buttons": buttons or []})

    @staticmethod
    async def answer(update: Update) -> str:
        query = update.callback_query
        if query is None:
            return ""
        with contextlib.suppress(TelegramError):
            await query.answer()
        return (query.data or "")[len(PREFIX) :]

    def draft(self, context: ContextTypes.DEFAULT_TYPE) -> dict[str, Any]:
        assert context.user_data is not None
        return context.user_data.setdefault(DRAFT, {})

    async def actor(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> Staff | None:
        """The cadre or admin behind this chat, re-read each step; others are told and dropped."""
        me = await self.staff.campaign_actor(update, context)
        if me is None and context.user_data is not None:
            context.user_data.pop(DRAFT, None)
        return me

    # --- steps --------------------------------------------------------------------------------

    async def on_entry(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        me = await self.actor(update, context)
        if me is None:
            return ConversationHandler.END
        assert context.user_data is not None
        context.user_data[DRAFT] = {}
        await self.staff.send_campaign_list(update, context, me)
        await self.say(update, context, text("ask_text"))
        return TEXT

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        if await self.actor(update, context) is None:
            return ConversationHandler.END
        assert update.message is not None and update.message.text is not None
        body = update.message.text
        if len(body) > MAX_TEXT or not body.strip():
            await self.say(update, context, text("text_too_long"))
            return TEXT
        self.draft(context)["text"] = body
        skip = [{"title": text("photo_skip"), "payload": f"{PREFIX}photo:skip"}]
        await self.say(update, context, text("ask_photo"), skip)
        return PHOTO

    async def on_photo(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        """A photo (or an image sent as a file): downloaded, checked and stored; its file_id kept."""
        if await self.actor(update, context) is None:
            return ConversationHandler.END
        message = update.message
        assert message is not None
        if message.photo:
            file_id, size = message.photo[-1].file_id, message.photo[-1].file_size
        else:
            assert message.document is not None
            file_id, size = message.document.file_id, message.document.file_size
        try:
            if size is not None and size > photos.MAX_BYTES:
                raise CampaignError("photo_too_big", str(photos.MAX_BYTES // (1024 * 1024)))
            data = bytes(await (await context.bot.get_file(file_id)).download_as_bytearray())
            name = await asyncio.to_thread(photos.store, self.services.settings.var_dir, data)
        except CampaignError as exc:
            await self.say(update, context, self.staff.error_text(exc))
            return PHOTO
        except TelegramError as exc:
            log.warning("campaign flow: photo download failed (%s)", type(exc).__name__)
            await self.say(update, context, text("photo_failed"))
            return PHOTO
        draft = self.draft(context)
        draft["photo"] = name
        # a photo's file_id is valid for sendPhoto; a document's only for sendDocument
        draft["photo_file_id"] = file_id if message.photo else None
        return await self.ask_button(update, context)

    async def on_photo_skip(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        await self.answer(update)
        if await self.actor(update, context) is None:
            return ConversationHandler.END
        draft = self.draft(context)
        draft.pop("photo", None)
        draft.pop("photo_file_id", None)
        return await self.ask_button(update, context)

    async def ask_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        buttons = [
            {"title": text("button_guide", title=short(g.title, 48)), "payload": f"{PREFIX}btn:g:{g.id}"}
            for g in self.services.kb.guides.values()
        ]
        buttons.append({"title": text("button_booking"), "payload": f"{PREFIX}btn:book"})
        buttons.append({"title": text("button_none"), "payload": f"{PREFIX}btn:none"})
        await self.say(update, context, text("ask_button"), buttons)
        return BUTTON

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        choice = await self.answer(update)
        if await self.actor(update, context) is None:
            return ConversationHandler.END
        guides = self.services.kb.guides
        buttons: list[dict] = []
        if choice.startswith("btn:g:") and choice[len("btn:g:") :] in guides:
            guide = guides[choice[len("btn:g:") :]]
            buttons = [service.guide_button(short(guide.title), guide.topic)]
        elif choice == "btn:book":
            buttons = [service.booking_button(text("booking_button_title"))]
        self.draft(context)["buttons"] = buttons
        self.draft(context)["blocks"] = []
        return await self.ask_blocks(update, context)

    async def scope(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> list[str] | None:
        me = await self.actor(update, context)
        if me is None:
            return None
        ward_blocks = [b.id for b in self.services.ward.blocks]
        return ward_blocks if me.is_admin else [b for b in ward_blocks if b in set(me.blocks)]

    def block_buttons(self, scope: list[str], chosen: list[str]) -> list[dict]:
        names = {b.id: b.name for b in self.services.ward.blocks}
        buttons = [
            {"title": ("✓ " if b in chosen else "") + names.get(b, b), "payload": f"{PREFIX}blk:{b}"}
            for b in scope
        ]
        return [*buttons, {"title": text("blocks_done"), "payload": f"{PREFIX}blk:*done"}]

    async def ask_blocks(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        scope = await self.scope(update, context)
        if scope is None:
            return ConversationHandler.END
        await self.say(update, context, text("ask_blocks"), self.block_buttons(scope, []))
        return BLOCKS

    async def on_block(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        choice = (await self.answer(update))[len("blk:") :]
        scope = await self.scope(update, context)
        if scope is None:
            return ConversationHandler.END
        chosen: list[str] = self.draft(context).setdefault("blocks", [])
        if choice == "*done":
            if not chosen:
                await self.say(update, context, text("blocks_needed"))
                return BLOCKS
            return await self.ask_tag(update, context)
        if choice not in scope:  # a forged callback: not a button we showed this account
            log.warning("campaign flow: block outside the actor's scope refused")
            await self.say(update, context, self.staff.error_text(Forbidden("outside_blocks", choice)))
            return BLOCKS
        if choice in chosen:
            chosen.remove(choice)
        else:
            chosen.append(choice)
        query = update.callback_query
        markup = keyboard(self.block_buttons(scope, chosen), self.staff.channel.callbacks)
        if query is not None and query.message is not None:
            with contextlib.suppress(TelegramError):
                await context.bot.edit_message_reply_markup(
                    query.message.chat.id, query.message.message_id, reply_markup=markup
                )
        return BLOCKS

    async def ask_tag(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        buttons = [
            {"title": text("tag_all"), "payload": f"{PREFIX}tag:all"},
            {"title": text("tag_not_vneid"), "payload": f"{PREFIX}tag:not"},
        ]
        await self.say(update, context, text("ask_tag"), buttons)
        return TAG

    async def on_tag(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        choice = await self.answer(update)
        if await self.actor(update, context) is None:
            return ConversationHandler.END
        self.draft(context)["tag_filter"] = NOT_VNEID if choice == "tag:not" else None
        buttons = [
            {"title": text("channel_telegram"), "payload": f"{PREFIX}ch:telegram"},
            {"title": text("channel_zalo"), "payload": f"{PREFIX}ch:zalo"},
            {"title": text("channel_both"), "payload": f"{PREFIX}ch:both"},
        ]
        await self.say(update, context, text("ask_channels"), buttons)
        return CHANNELS

    async def on_channels(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        choice = (await self.answer(update))[len("ch:") :]
        if await self.actor(update, context) is None:
            return ConversationHandler.END
        channels = {"telegram": ["telegram"], "zalo": ["zalo"]}.get(choice, ["telegram", "zalo"])
        self.draft(context)["channels"] = channels
        buttons = [
            {"title": text("schedule_now"), "payload": f"{PREFIX}when:now"},
            {"title": text("schedule_at"), "payload": f"{PREFIX}when:at"},
            {"title": text("schedule_weekly"), "payload": f"{PREFIX}when:weekly"},
        ]
        await self.say(update, context, text("ask_schedule"), buttons)
        return SCHEDULE

    async def on_schedule(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        choice = (await self.answer(update))[len("when:") :]
        if await self.actor(update, context) is None:
            return ConversationHandler.END
        schedule = choice if choice in ("now", "at", "weekly") else "now"
        self.draft(context)["schedule"] = schedule
        if schedule == "now":
            return await self.preview(update, context)
        await self.say(update, context, text("ask_time"))
        return TIME

    def parse(self, typed: str) -> tuple[dt.date | None, dt.datetime | None, str]:
        """(date, local date-time or None, refusal text key or "") of a typed date-time."""
        tz = self.services.ward.tz
        try:
            when = parse_when(typed, utcnow(), tz)
        except WhenError:
            return None, None, "time_not_understood"
        if when.date is None:
            return None, None, "time_not_understood"
        at = when.local_datetime(tz)
        return when.date, at, ("time_past" if when.past else "")

    async def on_time(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        if await self.actor(update, context) is None:
            return ConversationHandler.END
        assert update.message is not None and update.message.text is not None
        _, at, refusal = self.parse(update.message.text)
        if not refusal and at is None:
            refusal = "time_needs_both"
        if not refusal and at is not None and at <= utcnow():
            refusal = "time_past"
        if refusal:
            await self.say(update, context, text(refusal))
            return TIME
        draft = self.draft(context)
        draft["run_at"] = at
        if draft.get("schedule") == "weekly":
            await self.say(update, context, text("ask_until"))
            return UNTIL
        return await self.preview(update, context)

    async def on_until(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        if await self.actor(update, context) is None:
            return ConversationHandler.END
        assert update.message is not None and update.message.text is not None
        day, _, refusal = self.parse(update.message.text)
        draft = self.draft(context)
        until = None
        if day is not None:
            until = dt.datetime.combine(day, dt.time(23, 59), tzinfo=self.services.ward.tz)
        if not refusal and (until is None or until <= draft["run_at"]):
            refusal = "until_before"
        if refusal:
            await self.say(update, context, text(refusal))
            return UNTIL
        draft["until"] = until
        return await self.preview(update, context)

    # --- preview and confirmation ----------------------------------------------------------------

    def schedule_text(self, info: service.CampaignInfo) -> str:
        names = campaign_texts().get("schedules", {})
        label = str(names.get(info.schedule, info.schedule))
        tz = self.services.ward.tz
        if info.schedule == "at" and info.run_at is not None:
            return f"{label} {info.run_at.astimezone(tz):%H:%M %d/%m/%Y}"
        if info.schedule == "weekly" and info.run_at is not None and info.until is not None:
            return f"{label} {info.until.astimezone(tz):%d/%m/%Y} ({info.run_at.astimezone(tz):%H:%M %d/%m})"
        return label

    async def preview(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        me = await self.actor(update, context)
        if me is None:
            return ConversationHandler.END
        draft = self.draft(context)
        ward_blocks = [b.id for b in self.services.ward.blocks]
        try:
            info = await asyncio.to_thread(
                service.create,
                self.db,
                me,
                title=title_of(draft["text"]),
                text=draft["text"],
                blocks=draft["blocks"],
                ward_blocks=ward_blocks,
                channels=draft.get("channels") or ["telegram"],
                buttons=draft.get("buttons") or [],
                tag_filter=draft.get("tag_filter"),
                schedule=draft.get("schedule", "now"),
                run_at=draft.get("run_at"),
                until=draft.get("until"),
                photo=draft.get("photo"),
                photo_file_id=draft.get("photo_file_id"),
            )
            shown = await asyncio.to_thread(service.preview, self.db, me, info.id)
        except CampaignError as exc:
            await self.say(update, context, self.staff.error_text(exc))
            draft.clear()
            return ConversationHandler.END
        draft["id"] = info.id
        names = {b.id: b.name for b in self.services.ward.blocks}
        summary = text(
            "preview_summary",
            count=shown.recipients,
            blocks=", ".join(names.get(b, b) for b in info.blocks),
            tag=text("tag_not_vneid") if info.tag_filter else text("tag_all"),
            channels=", ".join(text(f"channel_{c}") for c in info.channels),
            schedule=self.schedule_text(info),
        )
        await self.say(update, context, text("preview_intro"))
        chat = update.effective_chat
        assert chat is not None
        if shown.message.get("photo"):  # as citizens get it: sendPhoto, caption or text after
            if draft.get("photo_file_id"):
                photos.remember(None, str(context.bot.token), shown.message["photo"], draft["photo_file_id"])
            await send_with_photo(
                context.bot,
                chat.id,
                shown.message,
                self.staff.channel.callbacks,
                self.staff.channel.texts.get("buttons_only"),
                self.db,
            )
        else:
            await self.staff.channel.send(context.bot, chat.id, shown.message)
        buttons = [
            {"title": text("confirm"), "payload": f"{PREFIX}ok"},
            {"title": text("discard"), "payload": f"{PREFIX}no"},
        ]
        await self.say(update, context, summary, buttons)
        return CONFIRM

    async def on_confirm(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        choice = await self.answer(update)
        me = await self.actor(update, context)
        if me is None:
            return ConversationHandler.END
        draft = self.draft(context)
        campaign_id = draft.pop("id", None)
        draft.clear()
        if campaign_id is None:
            await self.say(update, context, text("stale_button"))
            return ConversationHandler.END
        try:
            if choice == "ok":
                info = await asyncio.to_thread(
                    service.confirm, self.db, me, campaign_id, self.staff.scheduler
                )
                body = text("confirmed", id=info.id, schedule=self.schedule_text(info))
            else:
                await asyncio.to_thread(service.cancel, self.db, me, campaign_id)
                body = text("discarded")
        except CampaignError as exc:
            body = self.staff.error_text(exc)
        await self.say(update, context, body)
        return ConversationHandler.END

    async def on_leave(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        """/huy: leave; a draft already created (at the preview) is cancelled, nothing is sent."""
        draft = self.draft(context)
        campaign_id = draft.get("id")
        draft.clear()
        me = await self.staff.linked(update)
        if campaign_id is not None and me is not None:
            with contextlib.suppress(CampaignError):
                await asyncio.to_thread(service.cancel, self.db, me, campaign_id)
        await self.say(update, context, text("left"))
        return ConversationHandler.END

    async def on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Anything else during the flow (a photo where text is expected, text where a button
        is expected): the state kept."""
        typed = update.message is not None and update.message.text is not None
        await self.say(update, context, text("use_buttons" if typed else "text_only"))
        return None
