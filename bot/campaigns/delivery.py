"""Sending campaigns through the outbox: runs, relative reminder events, the send-time filter.

Runs. A run is one broadcast: one outbox row per recipient, kind="campaign",
ref="<campaign id>:<run_no>". run_no follows from the schedule (1 for now/at; for weekly the
week since run_at), and the CampaignRun row is written before the rows and marked after. A
run interrupted by a crash (or fired twice) is simply run again: same ref, and the outbox's
unique (kind, ref, channel, external_id) makes the re-enqueue a no-op for whoever already
has a row, so nobody gets a run twice.

Unsubscribes. The campaign filter (`campaign_filter`, registered with the outbox worker for
kind "campaign") checks each claimed batch just before sending: rows of citizens no longer
subscribed end "skipped" ("unsubscribed"), rows of paused campaigns are held again, rows of
cancelled campaigns are cancelled. One query per batch; nothing in bot/subscriptions has to
know about campaigns, and a citizen who unsubscribes gets nothing more (at most the few rows
already being sent in the current batch).
"""

from __future__ import annotations

import datetime as dt
import logging
import string
from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.appointments.models import Appointment
from bot.campaigns import audience
from bot.campaigns.models import Campaign, CampaignPress, CampaignRun
from bot.outbox import service as outbox
from bot.outbox.models import OutboxMessage
from bot.outbox.service import Claimed, Outcome
from bot.storage.db import Database, utcnow
from bot.storage.models import Citizen
from bot.subscriptions.models import Subscription

log = logging.getLogger(__name__)

KIND = "campaign"
WEEK = dt.timedelta(days=7)
PRESS_WINDOW = dt.timedelta(days=14)


def render(
    text: str, buttons: Sequence[dict], values: dict[str, str] | None = None, *, photo: str | None = None
) -> dict:
    """The chat API message; {placeholders} of `values` filled, unknown ones left as written.
    With a photo, "photo" is its stored name (bot/campaigns/photos.py): the senders resolve it."""
    if values:
        text = string.Formatter().vformat(text, (), _Keep(values))
    message: dict = {"text": text, "buttons": [dict(b) for b in buttons]}
    if photo:
        message["photo"] = photo
    return message


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def ref(campaign_id: int, run_no: int) -> str:
    return f"{campaign_id}:{run_no}"


def refs(db: Database, campaign_id: int) -> list[str]:
    """The outbox refs of a campaign: its runs and its relative events."""
    prefix = f"{campaign_id}:"
    with db.session() as session:
        return list(
            session.scalars(
                select(OutboxMessage.ref)
                .where(OutboxMessage.kind == KIND, OutboxMessage.ref.startswith(prefix, autoescape=True))
                .distinct()
            )
        )


def run_number(campaign: Campaign, now: dt.datetime) -> int | None:
    """Which run is due at `now` (None when none is: before the first, after `until`)."""
    if campaign.schedule in ("now", "at"):
        if campaign.run_at is not None and now < campaign.run_at:
            return None
        return 1
    if campaign.schedule == "weekly":
        assert campaign.run_at is not None and campaign.until is not None
        if now < campaign.run_at:
            return None
        index = int((now - campaign.run_at) / WEEK)
        if campaign.run_at + index * WEEK > campaign.until:
            return None
        return index + 1
    return None  # relative campaigns have no runs: see enqueue_relative


def run_campaign(
    db: Database, campaign_id: int, now: dt.datetime | None = None, timezone: str = "Asia/Ho_Chi_Minh"
) -> int:
    """Run what is due of a campaign: enqueue its message for its audience; returns the rows added.

    Safe to call again at any point (after a crash, a double fire): see the module docstring.
    """
    now = now or utcnow()
    with db.session() as session:
        schedule = session.scalar(select(Campaign.schedule).where(Campaign.id == campaign_id))
    if schedule == "relative":
        return enqueue_relative(db, campaign_id, now, timezone)
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.status not in ("scheduled", "running"):
            return 0
        run_no = run_number(campaign, now)
        if run_no is None:
            return 0
        run = session.scalar(
            select(CampaignRun).where(CampaignRun.campaign_id == campaign_id, CampaignRun.run_no == run_no)
        )
        if run is not None and run.enqueued_at is not None:
            return 0
        if run is None:
            try:
                with session.begin_nested():
                    session.add(
                        CampaignRun(campaign_id=campaign_id, run_no=run_no, started_at=now, recipients=0)
                    )
            except IntegrityError:  # started concurrently: enqueueing again is harmless
                pass
        campaign.status = "running"
        campaign.updated_at = now
        blocks, channels, tag_filter = list(campaign.blocks), list(campaign.channels), campaign.tag_filter
        message = render(campaign.text, campaign.buttons or [], photo=campaign.photo)
    recipients = audience.recipients(db, blocks, channels, tag_filter)
    added = outbox.enqueue_many(
        db, recipients, message, kind=KIND, ref=ref(campaign_id, run_no), not_before=now
    )
    total = sum(outbox.counts(db, KIND, ref(campaign_id, run_no)).values())
    with db.session() as session:
        run = session.scalar(
            select(CampaignRun).where(CampaignRun.campaign_id == campaign_id, CampaignRun.run_no == run_no)
        )
        if run is not None:
            run.enqueued_at = utcnow()
            run.recipients = total
    log.info("campaign %d run %d: %d rows enqueued (%d new)", campaign_id, run_no, total, added)
    return added


# --- relative events: N days before each citizen's appointment ------------------------------


def due_appointments(
    db: Database,
    offset_days: int,
    now: dt.datetime,
    *,
    channels: Sequence[str],
    lookahead: dt.timedelta = dt.timedelta(days=1),
    procedure_prefix: str | None = None,
) -> list[Appointment]:
    """Booked appointments whose reminder (slot_start - offset_days) falls before now + lookahead
    and whose slot is still ahead: the events a relative campaign (or the appointment
    reminders) act on. Anonymised appointments (no external_id) are left out."""
    offset = dt.timedelta(days=offset_days)
    query = select(Appointment).where(
        Appointment.status == "booked",
        Appointment.external_id.is_not(None),
        Appointment.channel.in_(list(channels)),
        Appointment.slot_start > now,
        Appointment.slot_start <= now + lookahead + offset,
    )
    if procedure_prefix:
        query = query.where(Appointment.procedure.startswith(procedure_prefix, autoescape=True))
    with db.session() as session:
        return list(session.scalars(query.order_by(Appointment.slot_start, Appointment.id)))


def event_ref(campaign_id: int, appointment: Appointment) -> str:
    """One reminder per appointment and slot: a rescheduled appointment gets a new one."""
    return f"{campaign_id}:a{appointment.id}@{appointment.slot_start:%Y%m%d%H%M}"


def enqueue_relative(
    db: Database, campaign_id: int, now: dt.datetime | None = None, timezone: str = "Asia/Ho_Chi_Minh"
) -> int:
    """Enqueue the campaign's reminder for every due appointment of its audience, to go at
    slot_start - offset_days (or now, if that is past). Idempotent per appointment and slot.
    Placeholders: {code}, {date}, {time} (local), {counter}."""
    now = now or utcnow()
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        if (
            campaign is None
            or campaign.status not in ("scheduled", "running")
            or campaign.schedule != "relative"
        ):
            return 0
        if campaign.until is not None and now > campaign.until:
            return 0
        if campaign.status == "scheduled":
            campaign.status = "running"
        offset = dt.timedelta(days=campaign.offset_days or 0)
        blocks, channels, tag_filter = list(campaign.blocks), list(campaign.channels), campaign.tag_filter
        text, buttons, photo = campaign.text, list(campaign.buttons or []), campaign.photo
    reachable = set(audience.recipients(db, blocks, channels, tag_filter))
    tz = ZoneInfo(timezone)
    added = 0
    for appointment in due_appointments(db, offset.days, now, channels=channels):
        if (appointment.channel, appointment.external_id) not in reachable:
            continue
        local = appointment.slot_start.astimezone(tz)
        values = {
            "code": appointment.code,
            "date": f"{local:%d/%m/%Y}",
            "time": f"{local:%H:%M}",
            "counter": appointment.counter,
        }
        before = outbox.counts(db, KIND, event_ref(campaign_id, appointment))
        outbox.enqueue(
            db,
            appointment.channel,
            appointment.external_id or "",
            render(text, buttons, values, photo=photo),
            kind=KIND,
            ref=event_ref(campaign_id, appointment),
            not_before=max(now, appointment.slot_start - offset),
        )
        added += 0 if sum(before.values()) else 1
    if added:
        log.info("campaign %d: %d appointment reminders enqueued", campaign_id, added)
    return added


# --- the outbox filter ------------------------------------------------------------------------


def _campaign_id(ref: str | None) -> int | None:
    try:
        return int((ref or "").split(":", 1)[0])
    except ValueError:
        return None


def campaign_filter(db: Database) -> Callable[[list[Claimed]], dict[int, Outcome]]:
    """For OutboxWorker.add_filter("campaign", ...): decide rows that must not be sent now."""

    def check(rows: list[Claimed]) -> dict[int, Outcome]:
        ids = {cid for cid in (_campaign_id(r.ref) for r in rows) if cid is not None}
        pairs = {(r.channel, r.external_id) for r in rows}
        with db.session() as session:
            found = session.execute(select(Campaign.id, Campaign.status).where(Campaign.id.in_(ids)))
            statuses = dict(found.tuples().all())
            active = set(
                session.execute(
                    select(Citizen.channel, Citizen.external_id)
                    .join(Subscription, Subscription.citizen_id == Citizen.id)
                    .where(
                        Subscription.active.is_(True),
                        # two plain IN lists use the indexes (a row-value IN took twice as long on
                        # PostgreSQL); the pairs they over-select are dropped by the check below
                        Citizen.channel.in_({channel for channel, _ in pairs}),
                        Citizen.external_id.in_({external_id for _, external_id in pairs}),
                    )
                ).tuples()
            )
            events = _appointment_events(session, rows)
        decided: dict[int, Outcome] = {}
        for row in rows:
            status = statuses.get(_campaign_id(row.ref) or -1)
            if status is None or status == "cancelled":
                decided[row.id] = Outcome(row.id, "cancelled", "campaign cancelled", attempted=False)
            elif status == "paused":
                decided[row.id] = Outcome(row.id, "queued", "held", False, outbox.HELD_UNTIL)
            elif (row.channel, row.external_id) not in active:
                decided[row.id] = Outcome(row.id, "skipped", "unsubscribed", attempted=False)
            elif row.id in events and not events[row.id]:
                decided[row.id] = Outcome(row.id, "skipped", "appointment changed", attempted=False)
        return decided

    return check


def _appointment_events(session: object, rows: list[Claimed]) -> dict[int, bool]:
    """For rows of relative events: is their appointment still booked at that slot?"""
    wanted: dict[int, tuple[int, str]] = {}
    for row in rows:
        part = (row.ref or "").split(":", 1)[-1]
        if part.startswith("a") and "@" in part:
            appointment_id, slot = part[1:].split("@", 1)
            if appointment_id.isdigit():
                wanted[row.id] = (int(appointment_id), slot)
    if not wanted:
        return {}
    found = {
        a.id: a
        for a in session.scalars(  # type: ignore[attr-defined]
            select(Appointment).where(Appointment.id.in_({aid for aid, _ in wanted.values()}))
        )
    }
    result = {}
    for row_id, (aid, slot) in wanted.items():
        appointment = found.get(aid)
        result[row_id] = bool(
            appointment and appointment.status == "booked" and f"{appointment.slot_start:%Y%m%d%H%M}" == slot
        )
    return result


# --- upkeep and button presses ----------------------------------------------------------------


def maintain(db: Database, now: dt.datetime | None = None) -> dict[int, str]:
    """Once a minute (a scheduler job): release rows held by a pause that raced a resume,
    and move campaigns whose runs are all delivered to "done" (or back to "scheduled" between
    weekly runs). Returns {campaign id: new status} of the campaigns changed."""
    now = now or utcnow()
    changed: dict[int, str] = {}
    with db.session() as session:
        running = list(session.scalars(select(Campaign).where(Campaign.status == "running")))
        snapshot = [(c.id, c.schedule, c.run_at, c.until) for c in running]
    for campaign_id, schedule, run_at, until in snapshot:
        mine = (OutboxMessage.kind == KIND, OutboxMessage.ref.startswith(f"{campaign_id}:", autoescape=True))
        with db.session() as session:
            held = session.scalars(
                select(OutboxMessage.ref)
                .where(*mine, OutboxMessage.status == "queued", OutboxMessage.not_before >= outbox.HELD_UNTIL)
                .distinct()
            ).all()
        for r in held:
            outbox.release(db, KIND, r, now)
        with db.session() as session:
            pending = session.scalar(
                select(func.count()).where(*mine, OutboxMessage.status.in_(("queued", "sending")))
            )
        if pending:
            continue
        if schedule in ("now", "at"):
            new = "done"
        elif schedule == "weekly":
            assert run_at is not None and until is not None
            following = run_at + (int((now - run_at) / WEEK) + 1) * WEEK
            new = "done" if following > until else "scheduled"
        else:  # relative: active until `until`
            new = "done" if until is not None and now > until else "running"
        if new != "running":
            with db.session() as session:
                row = session.get(Campaign, campaign_id)
                if row is not None and row.status == "running":
                    row.status = new
                    row.updated_at = now
                    changed[campaign_id] = new
    return changed


def record_press(
    db: Database, channel: str, external_id: str, payload: str, now: dt.datetime | None = None
) -> int | None:
    """A channel calls this when a button payload comes back: if it is a button of a campaign
    the citizen was sent in the last 14 days (the most recent such), the press is recorded
    (once per citizen and button). Returns the campaign id, or None. URL buttons never come
    back (the platform opens the link), so they are not counted."""
    now = now or utcnow()
    with db.session() as session:
        sent = session.execute(
            select(OutboxMessage.ref)
            .where(
                OutboxMessage.kind == KIND,
                OutboxMessage.channel == channel,
                OutboxMessage.external_id == external_id,
                OutboxMessage.status == "sent",
                OutboxMessage.sent_at >= now - PRESS_WINDOW,
            )
            .order_by(OutboxMessage.sent_at.desc())
            .limit(20)
        ).scalars()
        for campaign_id in dict.fromkeys(_campaign_id(r) for r in sent):
            campaign = session.get(Campaign, campaign_id) if campaign_id is not None else None
            if campaign is None or payload not in {b.get("payload") for b in campaign.buttons or []}:
                continue
            exists = session.scalar(
                select(CampaignPress.id).where(
                    CampaignPress.campaign_id == campaign.id,
                    CampaignPress.channel == channel,
                    CampaignPress.external_id == external_id,
                    CampaignPress.payload == payload,
                )
            )
            if exists is None:
                try:
                    with session.begin_nested():
                        session.add(
                            CampaignPress(
                                campaign_id=campaign.id,
                                channel=channel,
                                external_id=external_id,
                                payload=payload[:300],
                                at=now,
                            )
                        )
                except IntegrityError:
                    pass
            return campaign.id
    return None
