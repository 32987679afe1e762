"""Guide progress: where a citizen is in a guide, and whether they finished it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base


class GuideProgress(Base):
    """One row per (citizen, guide). `in_progress` is true from start until the last step is done;
    restarting a finished guide starts a new run but keeps `completed_at` and `times_completed`."""

    __tablename__ = "guide_progress"
    __table_args__ = (UniqueConstraint("citizen_id", "guide_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id", ondelete="CASCADE"))
    guide_id: Mapped[str] = mapped_column(String(64))
    step: Mapped[int] = mapped_column(default=1)
    total_steps: Mapped[int]
    in_progress: Mapped[bool] = mapped_column(default=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    times_completed: Mapped[int] = mapped_column(default=0)
