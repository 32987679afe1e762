"""Campaign pages under /staff: list, new campaign, preview, confirm, report, pause/resume/cancel,
the Project 06 progress page, and invite codes for admins.

Mounted on the staff router (bot/staff/web.py) and reusing its sessions, CSRF check and
templates. Every action goes through bot.campaigns.service, which enforces the scope (cadre:
own blocks; admin: whole ward; officer: none); its refusals become a Vietnamese message with
403 (Forbidden) or 422 (bad input), and nothing is created or changed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response

from bot.campaigns import invites, photos, service
from bot.campaigns.delivery import render as render_message
from bot.campaigns.errors import CampaignError, Forbidden
from bot.campaigns.models import MAX_TEXT
from bot.channels.telegram.format import units
from bot.channels.telegram.photo import MAX_CAPTION
from bot.config.settings import PROJECT_ROOT
from bot.services import Services
from bot.staff import accounts
from bot.staff.accounts import Staff
from bot.staff.auth import Session
from bot.staff.models import ROLES
from bot.storage.db import utcnow

log = logging.getLogger(__name__)

TEXTS_FILE = PROJECT_ROOT / "faq" / "campaigns.yml"
TAG_FILTERS = ("", "not vneid_muc2", "vneid_muc2")  # the audience tags the form offers
BUTTON_ROWS = 3  # button rows on the form (the service allows up to service.MAX_BUTTONS)
MAX_INVITE_HOURS = 24 * 30
CampaignId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]  # larger ids overflow the database's integers
DONE = {"confirm": "confirmed", "pause": "paused", "resume": "resumed", "cancel": "cancelled"}
# Example values for a relative campaign's {placeholders} in the preview.
SAMPLE_VALUES = {"code": "ABC234", "date": "01/12/2026", "time": "09:00", "counter": "Quầy 1"}


@lru_cache(maxsize=2)
def texts(path: Path = TEXTS_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def error_text(code: str, detail: str = "") -> str:
    """The Vietnamese text of a campaign refusal (faq/campaigns.yml); unknown codes fall back."""
    errors = texts()["errors"]
    return str(errors.get(code, errors["unknown"])).replace("{detail}", detail)


@dataclass(frozen=True)
class Pages:
    """The staff router's helpers this module reuses (sessions, CSRF, rendering)."""

    render: Callable[..., Response]
    current: Callable[[Request], tuple[Staff, Session] | None]
    posted: Callable[[Request, str], tuple[Staff, Session] | Response]
    to_login: Callable[[Request], Response]
    redirect: Callable[[str], Response]


@dataclass
class Draft:
    """What the new-campaign form holds (kept on a refusal so nothing typed is lost)."""

    title: str = ""
    text: str = ""
    blocks: Sequence[str] = ()
    tag_filter: str = "not vneid_muc2"
    channels: Sequence[str] = ("telegram",)
    schedule: str = "now"
    run_at: str = ""
    until: str = ""
    offset_days: str = "1"
    buttons: Sequence[dict[str, str]] = ()


class FormError(ValueError):
    """A form value the page itself refuses before calling the service (code in campaigns.yml)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


# --- form parsing ---------------------------------------------------------------------------


def parse_local(value: str, tz: dt.tzinfo) -> dt.datetime | None:
    """A datetime-local value ("2026-12-01T09:00") in the ward's time, as an aware datetime."""
    if not value.strip():
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise FormError("bad_datetime") from None
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed


def parse_until(value: str, tz: dt.tzinfo) -> dt.datetime | None:
    """A date ("2026-12-31") as the end of that day in the ward's time."""
    if not value.strip():
        return None
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        raise FormError("bad_datetime") from None
    return dt.datetime.combine(day, dt.time(23, 59), tzinfo=tz)


def schedule_values(
    draft: Draft, tz: dt.tzinfo, now: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None, int | None]:
    """run_at, until, offset_days for the service, with clear refusals for what is missing."""
    run_at = parse_local(draft.run_at, tz) if draft.schedule in ("at", "weekly") else None
    until = parse_until(draft.until, tz) if draft.schedule in ("weekly", "relative") else None
    if draft.schedule in ("at", "weekly"):
        if run_at is None:
            raise FormError("schedule_needs_time")
        if run_at < now - dt.timedelta(minutes=1):
            raise FormError("schedule_in_past")
    if draft.schedule == "weekly" and (until is None or until <= run_at):  # type: ignore[operator]
        raise FormError("schedule_needs_until")
    if draft.schedule == "relative" and until is not None and until < now:
        raise FormError("schedule_in_past")
    offset = None
    if draft.schedule == "relative":
        try:
            offset = int(draft.offset_days)
        except ValueError:
            raise FormError("schedule_needs_days") from None
        if not 0 <= offset <= 60:
            raise FormError("schedule_needs_days")
    return run_at, until, offset


def parse_buttons(rows: Sequence[dict[str, str]], guide_topics: set[str]) -> list[dict]:
    """The form's button rows → chat API buttons (empty rows are skipped)."""
    names = texts()["buttons"]
    buttons = []
    for row in rows:
        kind, title = row.get("kind", ""), row.get("title", "").strip()
        if kind == "book":
            buttons.append(service.booking_button(title or names["book"]))
        elif kind == "guide":
            if row.get("guide") not in guide_topics:
                raise FormError("button_needs_guide")
            buttons.append(service.guide_button(title or names["guide"], row["guide"]))
        elif kind == "link":
            url = row.get("url", "").strip()
            if not url.startswith("https://") or len(url) > 300 or any(c.isspace() for c in url):
                raise FormError("button_needs_url")
            buttons.append(service.link_button(title or names["link"], url))
    return buttons


def button_rows(
    kinds: list[str] | None, titles: list[str] | None, guides: list[str] | None, urls: list[str] | None
) -> list[dict[str, str]]:
    """Zip the repeated form fields (each row posts all four) into rows."""
    kinds, titles, guides, urls = kinds or [], titles or [], guides or [], urls or []
    rows = []
    for i, kind in enumerate(kinds[:BUTTON_ROWS]):
        rows.append(
            {
                "kind": kind,
                "title": titles[i][:64] if i < len(titles) else "",
                "guide": guides[i] if i < len(guides) else "",
                "url": urls[i][:300] if i < len(urls) else "",
            }
        )
    return rows


def button_kind(payload: str) -> str:
    """How a stored button is shown: guide, book or link."""
    if payload.startswith("https://"):
        return "link"
    return "book" if payload.startswith("/book_appointment") else "guide"


# --- the routes -----------------------------------------------------------------------------


def add_campaign_routes(router: APIRouter, pages: Pages, services: Services) -> None:
    """Add the campaign, progress and invite pages to the staff router."""
    db, ward = services.db, services.ward
    tz = ward.tz
    ward_blocks = [block.id for block in ward.blocks]
    guides = {guide.topic: guide.title for guide in services.kb.guides.values()}
    css = (Path(__file__).resolve().parent / "static" / "campaigns.css").read_bytes()
    var_dir = services.settings.var_dir

    def page(template: str, status: int = 200, **values: Any) -> Response:
        return pages.render(template, status, c=texts(), tag_filters=TAG_FILTERS, **values)

    def refused(me: Staff, session: Session, exc: CampaignError) -> Response:
        status = 403 if isinstance(exc, Forbidden) else 422
        if exc.code == "no_such_campaign":
            status = 404
        return page("error.html", status, me=me, csrf=session.csrf, message=error_text(exc.code, exc.detail))

    def signed_in(request: Request) -> tuple[Staff, Session] | Response:
        found = pages.current(request)
        return pages.to_login(request) if found is None else found

    def scope_blocks(me: Staff) -> list[str]:
        """The blocks the form offers: the whole ward (admin) or the cadre's own."""
        return ward_blocks if me.is_admin else [b for b in ward_blocks if b in me.blocks]

    def form_page(me: Staff, session: Session, draft: Draft, status: int = 200, error: str = "") -> Response:
        rows = list(draft.buttons) + [{"kind": "", "title": "", "guide": "", "url": ""}] * BUTTON_ROWS
        return page(
            "campaign_new.html",
            status,
            me=me,
            csrf=session.csrf,
            draft=draft,
            rows=rows[:BUTTON_ROWS],
            scope=scope_blocks(me),
            guides=guides,
            channels=service.CHANNELS,
            max_text=MAX_TEXT,
            max_photo_mb=photos.MAX_BYTES // (1024 * 1024),
            max_caption=MAX_CAPTION,
            error=error,
        )

    def shown(info: service.CampaignInfo) -> dict:
        """The message as citizens will see it (a relative one with example values); with a
        photo, whether Telegram shows the text as its caption (≤ 1024) or after it."""
        values = SAMPLE_VALUES if info.schedule == "relative" else None
        message = render_message(info.text, info.buttons, values, photo=info.photo)
        for button in message["buttons"]:
            button["kind"] = button_kind(button["payload"])
        message["caption"] = bool(info.photo) and units(message["text"].strip()) <= MAX_CAPTION
        return message

    def create(actor: Staff, **values: Any) -> service.CampaignInfo:
        """service.create; a photo stored for a campaign the service refuses is removed again."""
        try:
            return service.create(db, actor, **values)
        except CampaignError:
            if values.get("photo"):
                photos.discard_unused(db, var_dir, values["photo"])
            raise

    def uploaded_photo(upload: UploadFile | None) -> bytes:
        """The posted file's bytes (at most one byte over the limit is read), b"" for none."""
        if upload is None:
            return b""
        return upload.file.read(photos.MAX_BYTES + 1)

    @router.get("/campaigns/photos/{name}")
    def campaign_photo(request: Request, name: str) -> Response:
        """A campaign's photo for the preview and campaign pages (staff signed in)."""
        found = signed_in(request)
        if isinstance(found, Response):
            return found
        path = photos.path_of(var_dir, name)
        if path is None:
            return Response(status_code=404)
        headers = {"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"}
        return FileResponse(path, media_type=photos.media_type(name), headers=headers)

    @router.get("/static/campaigns.css")
    def stylesheet() -> Response:
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    # --- list, new, create ----------------------------------------------------------------------

    @router.get("/campaigns")
    def campaign_list(request: Request) -> Response:
        found = signed_in(request)
        if isinstance(found, Response):
            return found
        me, session = found
        try:
            rows = service.list_campaigns(db, me)
        except CampaignError as exc:
            return refused(me, session, exc)
        notice = str(texts()["notices"].get(request.query_params.get("n", ""), ""))
        return page("campaigns.html", me=me, csrf=session.csrf, campaigns=rows, tz=tz, notice=notice)

    @router.get("/campaigns/new")
    def campaign_form(request: Request) -> Response:
        found = signed_in(request)
        if isinstance(found, Response):
            return found
        me, session = found
        if me.role not in ("admin", "cadre"):
            return refused(me, session, Forbidden("role_not_allowed", me.role))
        return form_page(me, session, Draft(blocks=scope_blocks(me)[:1]))

    @router.post("/campaigns")
    def campaign_create(
        request: Request,
        title: str = Form(""),
        text: str = Form(""),
        blocks: Annotated[list[str] | None, Form()] = None,
        tag_filter: str = Form(""),
        channels: Annotated[list[str] | None, Form()] = None,
        schedule: str = Form("now"),
        run_at: str = Form(""),
        until: str = Form(""),
        offset_days: str = Form(""),
        button_kind: Annotated[list[str] | None, Form()] = None,
        button_title: Annotated[list[str] | None, Form()] = None,
        button_guide: Annotated[list[str] | None, Form()] = None,
        button_url: Annotated[list[str] | None, Form()] = None,
        photo: Annotated[UploadFile | None, File()] = None,
        csrf_token: str = Form(""),
    ) -> Response:
        found = pages.posted(request, csrf_token)
        if isinstance(found, Response):
            return found
        me, session = found
        photo_data = uploaded_photo(photo)
        draft = Draft(
            title=title[:200],
            text=text.replace("\r\n", "\n")[: MAX_TEXT + 1],  # browsers post textarea lines as CRLF
            blocks=blocks or [],
            tag_filter=tag_filter,
            channels=channels or [],
            schedule=schedule,
            run_at=run_at,
            until=until,
            offset_days=offset_days,
            buttons=button_rows(button_kind, button_title, button_guide, button_url),
        )
        try:
            if tag_filter not in TAG_FILTERS:
                raise CampaignError("invalid_tag_filter", tag_filter[:40])
            if photo_data:
                photos.check(photo_data)  # refused before anything is stored
            run_at_value, until_value, offset = schedule_values(draft, tz, utcnow())
            buttons = parse_buttons(draft.buttons, set(guides))
            if me.role not in ("admin", "cadre"):  # no file stored for a refused role
                raise Forbidden("role_not_allowed", me.role)
            photo_name = photos.store(var_dir, photo_data) if photo_data else None
            info = create(
                me,
                title=draft.title,
                text=draft.text,
                blocks=draft.blocks,
                ward_blocks=ward_blocks,
                channels=draft.channels,
                buttons=buttons,
                tag_filter=tag_filter or None,
                schedule=schedule,
                run_at=run_at_value,
                until=until_value,
                offset_days=offset,
                photo=photo_name,
            )
        except FormError as exc:
            return form_page(me, session, draft, 422, error_text(exc.code, exc.detail))
        except CampaignError as exc:
            status = 403 if isinstance(exc, Forbidden) else 422
            if exc.code == "role_not_allowed":
                return refused(me, session, exc)
            return form_page(me, session, draft, status, error_text(exc.code, exc.detail))
        accounts.audit(
            db,
            me,
            "campaign",
            f"create campaign {info.id} blocks={','.join(info.blocks)}" + (" photo" if info.photo else ""),
        )
        return pages.redirect(f"/staff/campaigns/{info.id}/preview")

    # --- preview, confirm, campaign page ------------------------------------------------------

    @router.get("/campaigns/{campaign_id}/preview")
    def campaign_preview(request: Request, campaign_id: CampaignId) -> Response:
        found = signed_in(request)
        if isinstance(found, Response):
            return found
        me, session = found
        try:
            info = service.get(db, me, campaign_id)
            result = service.preview(db, me, campaign_id)
        except CampaignError as exc:
            return refused(me, session, exc)
        return page(
            "campaign_preview.html",
            me=me,
            csrf=session.csrf,
            campaign=info,
            message=shown(info),
            recipients=result.recipients,
            tz=tz,
        )

    @router.get("/campaigns/{campaign_id}")
    def campaign_page(request: Request, campaign_id: CampaignId) -> Response:
        found = signed_in(request)
        if isinstance(found, Response):
            return found
        me, session = found
        try:
            info = service.get(db, me, campaign_id)
            counts = service.report(db, me, campaign_id)
        except CampaignError as exc:
            return refused(me, session, exc)
        notice = str(texts()["notices"].get(request.query_params.get("n", ""), ""))
        return page(
            "campaign.html",
            me=me,
            csrf=session.csrf,
            campaign=info,
            message=shown(info),
            report=counts,
            tz=tz,
            notice=notice,
        )

    def action(request: Request, campaign_id: CampaignId, token: str, name: str) -> Response:
        """One POSTed campaign action (confirm, pause, resume, cancel), scope checked by the service."""
        found = pages.posted(request, token)
        if isinstance(found, Response):
            return found
        me, session = found
        scheduler = getattr(request.app.state, "scheduler", None)
        try:
            if name == "confirm":
                service.confirm(db, me, campaign_id, scheduler)
            elif name == "pause":
                service.pause(db, me, campaign_id)
            elif name == "resume":
                service.resume(db, me, campaign_id)
            else:
                service.cancel(db, me, campaign_id, scheduler)
        except CampaignError as exc:
            return refused(me, session, exc)
        accounts.audit(db, me, "campaign", f"{name} campaign {campaign_id}")
        return pages.redirect(f"/staff/campaigns/{campaign_id}?n={DONE[name]}")

    @router.post("/campaigns/{campaign_id}/confirm")
    def campaign_confirm(request: Request, campaign_id: CampaignId, csrf_token: str = Form("")) -> Response:
        return action(request, campaign_id, csrf_token, "confirm")

    @router.post("/campaigns/{campaign_id}/pause")
    def campaign_pause(request: Request, campaign_id: CampaignId, csrf_token: str = Form("")) -> Response:
        return action(request, campaign_id, csrf_token, "pause")

    @router.post("/campaigns/{campaign_id}/resume")
    def campaign_resume(request: Request, campaign_id: CampaignId, csrf_token: str = Form("")) -> Response:
        return action(request, campaign_id, csrf_token, "resume")

    @router.post("/campaigns/{campaign_id}/cancel")
    def campaign_cancel(request: Request, campaign_id: CampaignId, csrf_token: str = Form("")) -> Response:
        return action(request, campaign_id, csrf_token, "cancel")

    # --- Project 06 progress ------------------------------------------------------------------

    @router.get("/progress")
    def progress_page(request: Request) -> Response:
        found = signed_in(request)
        if isinstance(found, Response):
            return found
        me, session = found
        try:
            rows = service.progress(db, me, ward_blocks)
        except CampaignError as exc:
            return refused(me, session, exc)
        subscribed = sum(row["subscribed"] for row in rows)
        tagged = sum(row["tagged"] for row in rows)
        share = tagged / subscribed if subscribed else 0.0
        total = {"subscribed": subscribed, "tagged": tagged, "share": share}
        return page("progress.html", me=me, csrf=session.csrf, rows=rows, total=total)

    # --- invite codes (admins) ----------------------------------------------------------------

    def invite_page(
        me: Staff, session: Session, status: int = 200, error: str = "", code: str = "", link: str = ""
    ) -> Response:
        return page(
            "invites.html",
            status,
            me=me,
            csrf=session.csrf,
            roles=ROLES,
            users=[u.username for u in accounts.list_users(db) if u.active],
            code=code,
            link=link,
            error=error,
        )

    @router.get("/invites")
    def invite_form(request: Request) -> Response:
        found = signed_in(request)
        if isinstance(found, Response):
            return found
        me, session = found
        if not me.is_admin:
            return refused(me, session, Forbidden("admins_only"))
        return invite_page(me, session)

    @router.post("/invites")
    def invite_issue(
        request: Request,
        role: str = Form("cadre"),
        blocks: Annotated[list[str] | None, Form()] = None,
        username: str = Form(""),
        hours: str = Form("72"),
        csrf_token: str = Form(""),
    ) -> Response:
        found = pages.posted(request, csrf_token)
        if isinstance(found, Response):
            return found
        me, session = found
        if not me.is_admin:
            return refused(me, session, Forbidden("admins_only"))
        try:
            ttl = float(hours)
        except ValueError:
            ttl = 0
        if not 1 <= ttl <= MAX_INVITE_HOURS:
            return invite_page(me, session, 422, error_text("invalid_hours", str(MAX_INVITE_HOURS)))
        chosen = (blocks or []) if role == "cadre" else []
        try:
            code = invites.issue(
                db,
                me,
                role,
                chosen,
                ward_blocks=ward_blocks,
                username=username.strip() or None,
                ttl=dt.timedelta(hours=ttl),
            )
        except CampaignError as exc:
            status = 403 if isinstance(exc, Forbidden) else 422
            return invite_page(me, session, status, error_text(exc.code, exc.detail))
        accounts.audit(db, me, "admin", f"issue invite role={role} blocks={','.join(chosen) or '-'}")
        bot = bot_username(request)
        link = f"https://t.me/{bot}?start={code}" if bot else ""
        return invite_page(me, session, code=code, link=link)


def bot_username(request: Request) -> str:
    """The Telegram bot's username once the channel has started (getMe), else "" (no link)."""
    telegram = getattr(request.app.state, "telegram", None)
    if telegram is None:
        return ""
    try:
        return str(telegram.application.bot.username or "")
    except (AttributeError, RuntimeError):  # not initialised yet
        return ""
