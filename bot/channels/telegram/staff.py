"""The staff side of the Telegram bot: invite links, /chiendich, /baocao, /lichhen.

Staff handlers run in handler group -1, before the citizens' handlers (group 0), and stop
the update when they handle it: `/start <invite code>` links an account; the staff commands
answer only accounts linked with `telegram_user_id` (active), in private chats. Citizens who
type a staff command are told it is for staff. Campaign management callbacks ("sm:<action>:<id>")
go through bot.campaigns.service, which checks the scope on every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from telegram import BotCommand, BotCommandScopeChat, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from bot.appointments import notify
from bot.appointments.dates import WhenError, parse_when
from bot.campaigns import invites, reports, service
from bot.campaigns.errors import CampaignError
from bot.channels.telegram.campaign_flow import PREFIX, CampaignFlow, stop
from bot.config.settings import PROJECT_ROOT
from bot.staff import accounts, queue
from bot.staff.accounts import Staff
from bot.staff.models import StaffUser
from bot.staff.tgtexts import text, texts
from bot.storage.db import Database, utcnow

if TYPE_CHECKING:
    from bot.channels.telegram.channel import TelegramChannel

log = logging.getLogger(__name__)

GROUP = -1  # before the citizens' handlers
MANAGE = "sm:"
INVITE_CODE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
CAMPAIGN_ROLES = ("admin", "cadre")
DESK_ROLES = ("admin", "officer")
LISTED = 5  # campaigns listed by /chiendich


def linked_staff(db: Database, telegram_user_id: int) -> Staff | None:
    """The active staff account linked to this Telegram user, if any."""
    with db.session() as session:
        row = session.scalar(select(StaffUser).where(StaffUser.telegram_user_id == telegram_user_id))
        return Staff.of(row) if row is not None and row.active else None


class StaffBot:
    """Staff handlers of one TelegramChannel; `scheduler` is set by the app (campaign jobs)."""

    def __init__(self, channel: TelegramChannel) -> None:
        self.channel = channel
        self.db = channel.db
        self.services = channel.services
        self.scheduler: Any = None
        self.flow = CampaignFlow(self)
        self._scoped: set[int] = set()  # chats whose staff command list was set in this process
        notify.install(self.services, channel.settings.staff_telegram_chat_id)

    def install(self, application: Application) -> None:
        private_new = filters.UpdateType.MESSAGE
        application.add_handler(
            CommandHandler("start", stop(self.on_start_code), filters=private_new, has_args=True), GROUP
        )
        application.add_handler(self.flow.handler(), GROUP)
        application.add_handler(CommandHandler("baocao", stop(self.on_report), filters=private_new), GROUP)
        application.add_handler(CommandHandler("lichhen", stop(self.on_day), filters=private_new), GROUP)
        application.add_handler(CallbackQueryHandler(stop(self.on_manage), pattern=f"^{MANAGE}"), GROUP)
        application.add_handler(CallbackQueryHandler(stop(self.on_stale), pattern=f"^{PREFIX}"), GROUP)

    # --- who is asking ------------------------------------------------------------------------

    async def linked(self, update: Update) -> Staff | None:
        user = update.effective_user
        if user is None:
            return None
        return await asyncio.to_thread(linked_staff, self.db, user.id)

    async def say(self, update: Update, context: ContextTypes.DEFAULT_TYPE, body: str, buttons=None) -> None:
        chat = update.effective_chat
        if chat is not None:
            await self.channel.send(context.bot, chat.id, {"text": body, "buttons": buttons or []})

    async def gate(
        self, update: Update, context: ContextTypes.DEFAULT_TYPE, roles: tuple[str, ...]
    ) -> Staff | None:
        """The linked staff member if allowed here; else they (or the citizen) are told why."""
        chat = update.effective_chat
        me = await self.linked(update)
        if me is None:
            if chat is not None and chat.type == ChatType.PRIVATE:
                await self.say(update, context, text("staff_only"))
            return None
        if chat is None or chat.type != ChatType.PRIVATE:
            await self.say(update, context, text("private_only"))
            return None
        if chat.id not in self._scoped:  # e.g. linked on the pages or the CLI, not by an invite
            await self.set_staff_commands(context, chat.id)
        if me.role not in roles:
            await self.say(update, context, text("role_not_allowed"))
            return None
        return me

    async def campaign_actor(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> Staff | None:
        return await self.gate(update, context, CAMPAIGN_ROLES)

    def error_text(self, exc: CampaignError) -> str:
        errors = reports.campaign_texts().get("errors", {})
        return str(errors.get(exc.code, exc.code)).replace("{detail}", exc.detail)

    # --- /start <invite code> -----------------------------------------------------------------

    async def on_start_code(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat, user = update.effective_chat, update.effective_user
        code = (context.args or [""])[0]
        if chat is None or user is None or chat.type != ChatType.PRIVATE or not INVITE_CODE.match(code):
            await self.channel.on_start(update, context)  # not an invite: the citizens' /start
            return
        try:
            staff = await asyncio.to_thread(invites.redeem, self.db, code, user.id)
        except CampaignError as exc:
            log.info("invite refused: %s", exc.code)
            refusals = texts().get("invite_errors", {})
            await self.say(update, context, str(refusals.get(exc.code, refusals["invalid_code"])))
            return
        await self.say(update, context, self.welcome(staff))
        await self.set_staff_commands(context, chat.id)

    def welcome(self, staff: Staff) -> str:
        names = {b.id: b.name for b in self.services.ward.blocks}
        if staff.is_admin:
            blocks = text("all_blocks")
        else:
            blocks = ", ".join(names.get(b, b) for b in staff.blocks) or text("no_blocks")
        commands = "\n".join(f"/{name} - {label}" for name, label in self.staff_commands().items())
        role = str(texts().get("roles", {}).get(staff.role, staff.role))
        return text("welcome", name=staff.display_name, role=role, blocks=blocks, commands=commands)

    def staff_commands(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (texts().get("commands") or {}).items()}

    async def set_staff_commands(self, context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> None:
        """Citizens' commands plus the staff's, for this chat only (BotCommandScopeChat)."""
        merged = {**self.channel.texts.commands(), **self.staff_commands()}
        commands = [BotCommand(name, label) for name, label in merged.items()]
        self._scoped.add(chat_id)
        try:
            await context.bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id))
        except TelegramError as exc:
            log.warning("telegram set_my_commands (staff chat) failed: %s", type(exc).__name__)

    # --- campaigns: list, management, reports ---------------------------------------------------

    async def send_campaign_list(self, update: Update, context: ContextTypes.DEFAULT_TYPE, me: Staff) -> None:
        """The actor's recent campaigns with pause/resume/cancel/report buttons."""
        try:
            found = await asyncio.to_thread(service.list_campaigns, self.db, me)
        except CampaignError as exc:
            await self.say(update, context, self.error_text(exc))
            return
        if not found:
            await self.say(update, context, text("campaign_none"))
            return
        statuses = reports.campaign_texts().get("statuses", {})
        lines, buttons = [text("campaign_list_title")], []
        for info in found[:LISTED]:
            status = str(statuses.get(info.status, info.status))
            lines.append(text("campaign_line", id=info.id, title=info.title, status=status))
            buttons += self.manage_buttons(info)
        await self.say(update, context, "\n".join(lines), buttons)

    @staticmethod
    def manage_buttons(info: service.CampaignInfo) -> list[dict]:
        actions = []
        if info.status in ("scheduled", "running"):
            actions.append("pause")
        if info.status == "paused":
            actions.append("resume")
        if info.status not in ("cancelled", "done", "draft"):
            actions.append("cancel")
        if info.status != "draft":
            actions.append("report")
        return [
            {"title": text(f"manage_{a}", id=info.id), "payload": f"{MANAGE}{a}:{info.id}"} for a in actions
        ]

    async def on_manage(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        with contextlib.suppress(TelegramError):
            await query.answer()
        me = await self.campaign_actor(update, context)
        if me is None:
            return
        action, _, number = (query.data or "")[len(MANAGE) :].partition(":")
        if not number.isdigit() or action not in ("pause", "resume", "cancel", "report"):
            await self.say(update, context, text("stale_button"))
            return
        campaign_id = int(number)
        if action == "report":
            await self.say(update, context, await self.report_text(me, campaign_id))
            return
        try:
            if action == "cancel":
                await asyncio.to_thread(service.cancel, self.db, me, campaign_id, self.scheduler)
            else:
                await asyncio.to_thread(getattr(service, action), self.db, me, campaign_id)
            body = text(f"managed.{action}", id=campaign_id)
        except CampaignError as exc:
            body = self.error_text(exc)
        await self.say(update, context, body)

    async def report_text(self, me: Staff, campaign_id: int) -> str:
        try:
            info = await asyncio.to_thread(service.get, self.db, me, campaign_id)
            found = await asyncio.to_thread(service.report, self.db, me, campaign_id)
        except CampaignError as exc:
            return self.error_text(exc)
        return reports.report_message(info.title, info.status, found)["text"]

    async def on_report(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/baocao [id]: one campaign's report; without an id, the actor's latest campaign."""
        me = await self.campaign_actor(update, context)
        if me is None:
            return
        args = context.args or []
        if args and not args[0].lstrip("#").isdigit():
            await self.say(update, context, text("report_usage"))
            return
        if args:
            campaign_id = int(args[0].lstrip("#"))
        else:
            try:
                found = await asyncio.to_thread(service.list_campaigns, self.db, me)
            except CampaignError as exc:
                await self.say(update, context, self.error_text(exc))
                return
            if not found:
                await self.say(update, context, text("campaign_none"))
                return
            campaign_id = found[0].id
        await self.say(update, context, await self.report_text(me, campaign_id))

    async def on_stale(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A campaign-flow button pressed outside the flow (finished, restarted, forged)."""
        query = update.callback_query
        if query is not None:
            with contextlib.suppress(TelegramError):
                await query.answer()
        if await self.linked(update) is None:
            await self.say(update, context, text("staff_only"))
            return
        await self.say(update, context, text("stale_button"))

    # --- /lichhen [ngày] ----------------------------------------------------------------------

    async def on_day(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """One day's appointments; names and phones only for roles that may see them (audited)."""
        me = await self.gate(update, context, DESK_ROLES)
        if me is None:
            return
        tz = self.services.ward.tz
        day = utcnow().astimezone(tz).date()
        if context.args:
            try:
                day = parse_when(" ".join(context.args), utcnow(), tz).date or day
            except WhenError:
                await self.say(update, context, text("day_bad"))
                return
        await self.say(update, context, await asyncio.to_thread(self.day_text, me, day))

    def day_text(self, me: Staff, day: dt.date) -> str:
        """The day's list as text; the view of personal data is written to the audit log."""
        tz = self.services.ward.tz
        personal = me.sees_personal_data
        rows = queue.day_queue(self.db, queue.Filters(day), tz, personal)
        if personal:
            accounts.audit(self.db, me, "view", f"view appointments {day.isoformat()} (telegram)")
        date = f"{day:%d/%m/%Y}"
        if not rows:
            return text("day_empty", date=date)
        ward, kb = self.services.ward, self.services.kb
        counters = {c.id: c.name for c in ward.counters}
        statuses = texts(PROJECT_ROOT / "faq" / "staff.yml").get("statuses", {})
        lines = [text("day_title", date=date, count=len(rows))]
        for row in rows:
            procedure = kb.procedures.get(row.procedure)
            line = text(
                "day_line",
                time=f"{row.start:%H:%M}",
                code=row.code,
                procedure=procedure.title if procedure is not None else row.procedure,
                counter=counters.get(row.counter, row.counter),
                status=statuses.get(row.status, row.status),
            )
            if personal:
                personal_text = texts()["day_personal"].format(
                    name=row.full_name or "—", phone=row.phone or "—"
                )
                line += personal_text.rstrip()
            lines.append(line)
        return "\n".join(lines)
