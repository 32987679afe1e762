"""Campaign actions for the staff: create, preview, confirm, pause, resume, cancel, report.

Every action checks the scope here, in the service layer (whatever calls it: pages, Telegram,
CLI): a cadre may act only on campaigns whose blocks are all theirs; an admin on the whole
ward; officers have no campaign actions (Forbidden). The actor is re-read from the database
on each call, so a deactivated account or a cadre moved to other blocks loses access at once.
Synchronous: call with asyncio.to_thread from async code.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, select

from bot.campaigns import audience, delivery, photos
from bot.campaigns.errors import CampaignError, Forbidden
from bot.campaigns.models import MAX_TEXT, SCHEDULES, Campaign, CampaignPress, CampaignRun
from bot.knowledge.answers import intent_payload
from bot.outbox import service as outbox
from bot.outbox.models import OutboxMessage
from bot.staff.models import StaffUser
from bot.storage.db import Database, utcnow

log = logging.getLogger(__name__)

CHANNELS = ("telegram", "zalo", "web")
MAX_BUTTONS = 5
MAX_BUTTON_TITLE = 64


class Actor(Protocol):
    id: int


@dataclass(frozen=True)
class CampaignInfo:
    id: int
    title: str
    text: str
    buttons: list[dict]
    blocks: list[str]
    tag_filter: str | None
    channels: list[str]
    schedule: str
    run_at: dt.datetime | None
    until: dt.datetime | None
    offset_days: int | None
    status: str
    created_by: int | None
    created_at: dt.datetime
    photo: str | None = None  # "<sha256>.<ext>" under <var dir>/uploads (bot/campaigns/photos.py)
    photo_file_id: str | None = None  # Telegram's, once known

    @classmethod
    def of(cls, row: Campaign) -> CampaignInfo:
        return cls(
            row.id,
            row.title,
            row.text,
            list(row.buttons or []),
            list(row.blocks or []),
            row.tag_filter,
            list(row.channels or []),
            row.schedule,
            row.run_at,
            row.until,
            row.offset_days,
            row.status,
            row.created_by,
            row.created_at,
            row.photo,
            row.photo_file_id,
        )

    @property
    def message(self) -> dict:
        return delivery.render(self.text, self.buttons, photo=self.photo)


# --- buttons (the chat API shape) -----------------------------------------------------------


def guide_button(title: str, topic: str) -> dict:
    """Start the step-by-step guide of a procedure topic (e.g. "vneid.kich_hoat_muc2")."""
    return {"title": title, "payload": intent_payload("start_guide", procedure=topic)}


def booking_button(title: str) -> dict:
    return {"title": title, "payload": intent_payload("book_appointment")}


def link_button(title: str, url: str) -> dict:
    return {"title": title, "payload": url}


def check_buttons(buttons: Sequence[dict] | None) -> list[dict]:
    cleaned = []
    for button in buttons or []:
        title = str(button.get("title") or "").strip()
        payload = str(button.get("payload") or "").strip()
        if not title or len(title) > MAX_BUTTON_TITLE:
            raise CampaignError("invalid_button", title[:MAX_BUTTON_TITLE])
        if not (payload.startswith("/") or payload.startswith("https://")) or len(payload) > 300:
            raise CampaignError("invalid_button", title)
        cleaned.append({"title": title, "payload": payload})
    if len(cleaned) > MAX_BUTTONS:
        raise CampaignError("too_many_buttons", str(MAX_BUTTONS))
    return cleaned


# --- scope --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Who:
    id: int
    role: str
    blocks: frozenset[str]


def _who(session: Any, actor: Actor) -> _Who:
    row = session.get(StaffUser, actor.id)
    if row is None or not row.active:
        raise Forbidden("inactive_account")
    return _Who(row.id, row.role, frozenset(row.blocks or []))


def _allow(who: _Who, blocks: Sequence[str]) -> None:
    """Refuse unless `who` may act on a campaign for these blocks."""
    if who.role == "admin":
        return
    if who.role != "cadre":
        raise Forbidden("role_not_allowed", who.role)
    outside = sorted(set(blocks) - who.blocks)
    if not blocks or outside:
        raise Forbidden("outside_blocks", ",".join(outside))


def _campaign(session: Any, actor: Actor, campaign_id: int) -> tuple[_Who, Campaign]:
    who = _who(session, actor)
    row = session.get(Campaign, campaign_id)
    if row is None:
        raise CampaignError("no_such_campaign", str(campaign_id))
    _allow(who, row.blocks or [])
    return who, row


# --- actions ------------------------------------------------------------------------------


def create(
    db: Database,
    actor: Actor,
    *,
    title: str,
    text: str,
    blocks: Sequence[str],
    ward_blocks: Sequence[str],
    channels: Sequence[str] = ("telegram",),
    buttons: Sequence[dict] | None = None,
    tag_filter: str | None = None,
    schedule: str = "now",
    run_at: dt.datetime | None = None,
    until: dt.datetime | None = None,
    offset_days: int | None = None,
    photo: str | None = None,
    photo_file_id: str | None = None,
) -> CampaignInfo:
    """A draft campaign (nothing is sent before `confirm`). `photo`: a name returned by
    photos.store (the file must exist: the caller stored it first)."""
    title = " ".join(title.split())
    if not 1 <= len(title) <= 200:
        raise CampaignError("invalid_title")
    if not text.strip() or len(text) > MAX_TEXT:
        raise CampaignError("invalid_text", str(MAX_TEXT))
    blocks = sorted({b.strip() for b in blocks if b.strip()})
    unknown = [b for b in blocks if b not in set(ward_blocks)]
    if not blocks or unknown:
        raise CampaignError("unknown_block", ",".join(unknown))
    channels = sorted(set(channels))
    if not channels or not set(channels) <= set(CHANNELS):
        raise CampaignError("invalid_channels", ",".join(channels))
    audience.parse_tag_filter(tag_filter)
    _check_schedule(schedule, run_at, until, offset_days)
    if photo is not None and not photos.NAME.match(photo):
        raise CampaignError("photo_bad_type")
    now = utcnow()
    with db.session() as session:
        who = _who(session, actor)
        _allow(who, blocks)
        row = Campaign(
            title=title,
            text=text,
            buttons=check_buttons(buttons),
            blocks=blocks,
            tag_filter=tag_filter.strip() if tag_filter else None,
            channels=channels,
            schedule=schedule,
            run_at=run_at,
            until=until,
            offset_days=offset_days,
            photo=photo,
            photo_file_id=photo_file_id if photo else None,
            status="draft",
            created_by=who.id,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        info = CampaignInfo.of(row)
    log.info("campaign %d created by staff %d (%s, %d blocks)", info.id, who.id, schedule, len(blocks))
    return info


def _check_schedule(
    schedule: str, run_at: dt.datetime | None, until: dt.datetime | None, offset_days: int | None
) -> None:
    if schedule not in SCHEDULES:
        raise CampaignError("invalid_schedule", schedule)
    for value in (run_at, until):
        if value is not None and value.tzinfo is None:
            raise CampaignError("invalid_schedule", "naive datetime")
    if schedule in ("at", "weekly") and run_at is None:
        raise CampaignError("invalid_schedule", "run_at required")
    if schedule == "weekly" and (until is None or until <= run_at):  # type: ignore[operator]
        raise CampaignError("invalid_schedule", "until must follow run_at")
    if schedule == "relative" and (offset_days is None or not 0 <= offset_days <= 60):
        raise CampaignError("invalid_schedule", "offset_days 0..60 required")


def get(db: Database, actor: Actor, campaign_id: int) -> CampaignInfo:
    with db.session() as session:
        _, row = _campaign(session, actor, campaign_id)
        return CampaignInfo.of(row)


def list_campaigns(db: Database, actor: Actor) -> list[CampaignInfo]:
    """The campaigns the actor may see: all (admin), those within their blocks (cadre)."""
    with db.session() as session:
        who = _who(session, actor)
        if who.role not in ("admin", "cadre"):
            raise Forbidden("role_not_allowed", who.role)
        rows = session.scalars(select(Campaign).order_by(Campaign.id.desc())).all()
        return [CampaignInfo.of(r) for r in rows if who.role == "admin" or set(r.blocks or []) <= who.blocks]


@dataclass(frozen=True)
class Preview:
    message: dict  # the chat API shape as citizens get it
    recipients: int  # who it would reach now (resolved again at send time)


def preview(db: Database, actor: Actor, campaign_id: int) -> Preview:
    info = get(db, actor, campaign_id)
    count = audience.count(db, info.blocks, info.channels, info.tag_filter)
    return Preview(info.message, count)


def confirm(db: Database, actor: Actor, campaign_id: int, scheduler: Any = None) -> CampaignInfo:
    """draft → scheduled; with the app's scheduler, its job is added (it survives restarts)."""
    with db.session() as session:
        who, row = _campaign(session, actor, campaign_id)
        if row.status != "draft":
            raise CampaignError("not_a_draft", row.status)
        row.status = "scheduled"
        row.updated_at = utcnow()
        info = CampaignInfo.of(row)
    if scheduler is not None:
        from bot.campaigns import jobs

        jobs.schedule(scheduler, info)
    log.info("campaign %d confirmed by staff %d", campaign_id, who.id)
    return info


def pause(db: Database, actor: Actor, campaign_id: int) -> CampaignInfo:
    """Hold what is queued (rows in flight still go); runs due meanwhile are skipped."""
    with db.session() as session:
        who, row = _campaign(session, actor, campaign_id)
        if row.status not in ("scheduled", "running"):
            raise CampaignError("cannot_pause", row.status)
        row.status = "paused"
        row.updated_at = utcnow()
        info = CampaignInfo.of(row)
    for ref in delivery.refs(db, campaign_id):
        outbox.hold(db, "campaign", ref)
    log.info("campaign %d paused by staff %d", campaign_id, who.id)
    return info


def resume(db: Database, actor: Actor, campaign_id: int) -> CampaignInfo:
    with db.session() as session:
        who, row = _campaign(session, actor, campaign_id)
        if row.status != "paused":
            raise CampaignError("cannot_resume", row.status)
        has_runs = session.scalar(select(func.count()).where(CampaignRun.campaign_id == campaign_id))
        row.status = "running" if has_runs else "scheduled"
        row.updated_at = utcnow()
        info = CampaignInfo.of(row)
    for ref in delivery.refs(db, campaign_id):  # after the status change: see delivery.maintain
        outbox.release(db, "campaign", ref)
    log.info("campaign %d resumed by staff %d", campaign_id, who.id)
    return info


def cancel(db: Database, actor: Actor, campaign_id: int, scheduler: Any = None) -> CampaignInfo:
    """Stop for good: queued rows are cancelled (rows in flight still go), the job removed."""
    with db.session() as session:
        who, row = _campaign(session, actor, campaign_id)
        if row.status in ("cancelled", "done"):
            raise CampaignError("cannot_cancel", row.status)
        row.status = "cancelled"
        row.updated_at = utcnow()
        info = CampaignInfo.of(row)
    for ref in delivery.refs(db, campaign_id):
        outbox.cancel(db, "campaign", ref)
    if scheduler is not None:
        from bot.campaigns import jobs

        jobs.unschedule(scheduler, campaign_id)
    log.info("campaign %d cancelled by staff %d", campaign_id, who.id)
    return info


# --- reports ------------------------------------------------------------------------------


def report(db: Database, actor: Actor, campaign_id: int) -> dict[str, Any]:
    """Counts for one campaign over all its runs: recipients (rows enqueued), sent, failed,
    blocked, skipped (e.g. unsubscribed meanwhile), cancelled, queued (held included),
    held, and button presses (citizens × buttons)."""
    with db.session() as session:
        _, row = _campaign(session, actor, campaign_id)
        status = row.status
        mine = (
            OutboxMessage.kind == "campaign",
            OutboxMessage.ref.startswith(f"{campaign_id}:", autoescape=True),
        )
        by_status = dict(
            session.execute(
                select(OutboxMessage.status, func.count()).where(*mine).group_by(OutboxMessage.status)
            )
            .tuples()
            .all()
        )
        held = session.scalar(
            select(func.count()).where(
                *mine,
                OutboxMessage.status == "queued",
                OutboxMessage.not_before >= outbox.HELD_UNTIL,
            )
        )
        presses = session.scalar(select(func.count()).where(CampaignPress.campaign_id == campaign_id))
        runs = session.scalar(select(func.count()).where(CampaignRun.campaign_id == campaign_id))
    result: dict[str, Any] = {"campaign_id": campaign_id, "status": status, "runs": runs or 0}
    result["recipients"] = sum(by_status.values())
    for key in ("sent", "failed", "blocked", "skipped", "cancelled"):
        result[key] = by_status.get(key, 0)
    result["queued"] = by_status.get("queued", 0) + by_status.get("sending", 0)
    result["held"] = held or 0
    result["presses"] = presses or 0
    return result


def progress(db: Database, actor: Actor, ward_blocks: Sequence[str], tag: str = "vneid_muc2") -> list[dict]:
    """Project 06 progress per block: share of subscribed citizens who reported `tag`.

    Aggregates only. Admins and officers see the whole ward; a cadre their own blocks.
    """
    with db.session() as session:
        who = _who(session, actor)
    blocks = list(ward_blocks) if who.role in ("admin", "officer") else sorted(who.blocks)
    return audience.block_progress(db, blocks, tag)
