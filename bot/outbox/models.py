"""The outbox table: one row per recipient and message."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base

STATUSES = ("queued", "sending", "sent", "failed", "blocked", "skipped", "cancelled")


class OutboxMessage(Base):
    """A message the app sends on its own, to one recipient of one channel.

    (kind, ref, channel, external_id) is unique, so enqueueing the same thing
    twice is a no-op; a NULL ref never collides (SQL NULLs are distinct).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("kind", "ref", "channel", "external_id", name="uq_outbox_kind_ref_recipient"),
        Index("ix_outbox_claim", "status", "not_before", "id"),
        Index("ix_outbox_lease", "status", "claimed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    message: Mapped[dict] = mapped_column(JSON)
    kind: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    reason: Mapped[str] = mapped_column(String(200), default="")
    attempts: Mapped[int] = mapped_column(default=0)
    not_before: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[dt.datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
