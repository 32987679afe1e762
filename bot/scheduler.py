"""APScheduler owns time: jobs live in the database and survive restarts."""

from __future__ import annotations

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.storage.db import Database


def build_scheduler(db: Database, timezone: str) -> AsyncIOScheduler:
    """An AsyncIOScheduler whose default job store is the app database."""
    return AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=db.engine)},
        job_defaults={"coalesce": True, "misfire_grace_time": 3600, "max_instances": 1},
        timezone=timezone,
    )
