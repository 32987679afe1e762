"""APScheduler jobs of the campaigns, in the app's scheduler (SQLAlchemy job store: jobs are
stored in the database and survive restarts). Job functions are module-level so the store can
reference them, and reach the database through bot.services (the app's shared services).

- "campaign:<id>": now / at → one date job; weekly → every 7 days from run_at until `until`;
  relative → every 15 minutes (enqueue the reminders of appointments now due).
- "campaigns:maintain": every minute, delivery.maintain (done / between weekly runs).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.campaigns import delivery
from bot.storage.db import Database, utcnow

log = logging.getLogger(__name__)

RELATIVE_EVERY = dt.timedelta(minutes=15)
MAINTAIN_EVERY = dt.timedelta(minutes=1)


def job_id(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


def trigger_for(info: Any, now: dt.datetime | None = None) -> DateTrigger | IntervalTrigger:
    """The trigger of a confirmed campaign (info: service.CampaignInfo or a Campaign row)."""
    now = now or utcnow()
    if info.schedule == "now":
        return DateTrigger(run_date=now)
    if info.schedule == "at":
        return DateTrigger(run_date=info.run_at)
    if info.schedule == "weekly":
        return IntervalTrigger(weeks=1, start_date=info.run_at, end_date=info.until)
    return IntervalTrigger(seconds=RELATIVE_EVERY.total_seconds(), start_date=now, end_date=info.until)


def schedule(scheduler: Any, info: Any) -> None:
    scheduler.add_job(
        run_job,
        trigger_for(info),
        args=[info.id],
        id=job_id(info.id),
        replace_existing=True,
        misfire_grace_time=24 * 3600,  # a run missed while the app was down still goes (coalesced)
    )
    ensure_maintenance(scheduler)
    log.info("campaign %d scheduled (%s)", info.id, info.schedule)


def unschedule(scheduler: Any, campaign_id: int) -> None:
    with contextlib.suppress(JobLookupError):
        scheduler.remove_job(job_id(campaign_id))


def ensure_maintenance(scheduler: Any) -> None:
    scheduler.add_job(
        maintain_job,
        IntervalTrigger(seconds=MAINTAIN_EVERY.total_seconds()),
        id="campaigns:maintain",
        replace_existing=True,
    )


def _services() -> tuple[Database, str]:
    from bot.services import get_services

    services = get_services()
    return services.db, services.ward.timezone


def run_job(campaign_id: int) -> None:
    """The scheduled run (in the scheduler's thread pool)."""
    db, timezone = _services()
    now = utcnow()
    added = delivery.run_campaign(db, campaign_id, now, timezone)
    log.info("campaign %d job: %d rows enqueued", campaign_id, added)


def maintain_job() -> None:
    db, _ = _services()
    delivery.maintain(db)
    from bot.campaigns import reports  # finished runs: their report to the creator's Telegram

    reports.push_finished(db)


def install(worker: Any, scheduler: Any, db: Database) -> None:
    """App start: the outbox filter for campaign rows, and the upkeep job."""
    worker.add_filter(delivery.KIND, delivery.campaign_filter(db))
    ensure_maintenance(scheduler)
