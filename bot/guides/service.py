"""Guide progress in the app database. Synchronous: call with asyncio.to_thread from async code."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.guides.models import GuideProgress
from bot.storage.db import Database, utcnow
from bot.subscriptions.service import add_tag, citizen_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    guide_id: str
    step: int
    total_steps: int
    in_progress: bool
    updated_at: dt.datetime
    completed_at: dt.datetime | None
    times_completed: int


def _snapshot(row: GuideProgress) -> Progress:
    return Progress(
        guide_id=row.guide_id,
        step=row.step,
        total_steps=row.total_steps,
        in_progress=row.in_progress,
        updated_at=row.updated_at,
        completed_at=row.completed_at,
        times_completed=row.times_completed,
    )


def _row(session: Session, channel: str, external_id: str, guide_id: str) -> GuideProgress | None:
    cid = citizen_id(session, channel, external_id, create=False)
    if cid is None:
        return None
    return session.scalar(
        select(GuideProgress).where(GuideProgress.citizen_id == cid, GuideProgress.guide_id == guide_id)
    )


def get_progress(db: Database, channel: str, external_id: str, guide_id: str) -> Progress | None:
    with db.session() as session:
        row = _row(session, channel, external_id, guide_id)
        return _snapshot(row) if row else None


def save_step(
    db: Database, channel: str, external_id: str, guide_id: str, step: int, total_steps: int
) -> None:
    """Record the step being shown; starts a new run when the guide was not in progress."""
    now = utcnow()
    with db.session() as session:
        cid = citizen_id(session, channel, external_id)
        row = session.scalar(
            select(GuideProgress).where(GuideProgress.citizen_id == cid, GuideProgress.guide_id == guide_id)
        )
        if row is None:
            row = GuideProgress(citizen_id=cid, guide_id=guide_id, total_steps=total_steps, started_at=now)
            session.add(row)
        elif not row.in_progress:
            row.started_at = now
        row.in_progress = True
        row.step = step
        row.total_steps = total_steps
        row.updated_at = now


def complete(
    db: Database, channel: str, external_id: str, guide_id: str, total_steps: int, tag: str | None = None
) -> None:
    """Mark the guide finished (and record its completion tag, if any)."""
    now = utcnow()
    with db.session() as session:
        cid = citizen_id(session, channel, external_id)
        row = session.scalar(
            select(GuideProgress).where(GuideProgress.citizen_id == cid, GuideProgress.guide_id == guide_id)
        )
        if row is None:
            row = GuideProgress(citizen_id=cid, guide_id=guide_id, total_steps=total_steps, started_at=now)
            session.add(row)
        row.in_progress = False
        row.step = total_steps
        row.total_steps = total_steps
        row.updated_at = now
        row.completed_at = now
        row.times_completed = (row.times_completed or 0) + 1
    log.info("guide completed: %s", guide_id)
    if tag:
        add_tag(db, channel, external_id, tag, source=f"guide:{guide_id}"[:32])


def unfinished(db: Database, channel: str, external_id: str) -> list[Progress]:
    """Guides in progress, most recently used first."""
    with db.session() as session:
        cid = citizen_id(session, channel, external_id, create=False)
        if cid is None:
            return []
        rows = session.scalars(
            select(GuideProgress)
            .where(GuideProgress.citizen_id == cid, GuideProgress.in_progress.is_(True))
            .order_by(GuideProgress.updated_at.desc(), GuideProgress.id.desc())
        )
        return [_snapshot(row) for row in rows]
