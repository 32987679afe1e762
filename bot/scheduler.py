"""APScheduler owns time: jobs live in the database and survive restarts.

Jobs of the app itself (installed at every start by `install_jobs`, idempotent ids):

- "appointments:retention": `retention_job`, daily at RETENTION_AT (ward time) and once right
  after each start (so a run missed while the app was down is made up): anonymises the personal
  data of appointments older than `appointments.retention_days` of the ward file (default 90).
"""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.storage.db import Database, utcnow

log = logging.getLogger(__name__)

RETENTION_JOB_ID = "appointments:retention"
RETENTION_AT = dt.time(3, 15)  # ward time: a quiet hour for the database


def build_scheduler(db: Database, timezone: str) -> AsyncIOScheduler:
    """An AsyncIOScheduler whose default job store is the app database."""
    return AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=db.engine)},
        job_defaults={"coalesce": True, "misfire_grace_time": 3600, "max_instances": 1},
        timezone=timezone,
    )


def retention_job() -> int:
    """Anonymise appointments past the ward's retention period and purge the web inbox
    (module-level: the job store references it by name; the period is read at run time, so a
    changed ward file applies)."""
    from bot.appointments.service import anonymise_expired
    from bot.channels import web_inbox
    from bot.services import get_services

    services = get_services()
    days = services.ward.appointments.retention_days
    count = anonymise_expired(services.db, days=days)
    purged = web_inbox.purge(services.db)  # web reminders hold a code and a time: not kept once read
    log.info(
        "retention job: %d appointments anonymised (retention %d days), %d web inbox messages purged",
        count,
        days,
        purged,
    )
    return count


def install_jobs(scheduler: BaseScheduler, timezone: str) -> None:
    """(Re)install the app's own jobs; called at every start, after `scheduler.start()`."""
    scheduler.add_job(
        retention_job,
        CronTrigger(hour=RETENTION_AT.hour, minute=RETENTION_AT.minute, timezone=timezone),
        id=RETENTION_JOB_ID,
        name="appointments retention",
        replace_existing=True,
        next_run_time=utcnow(),  # once now, then daily: catches up a run missed while down
        misfire_grace_time=None,
    )
