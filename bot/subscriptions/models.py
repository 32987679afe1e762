"""Subscription and tag models: what campaigns target (block, consent, self-reported status)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base


class Subscription(Base):
    """One citizen (channel user) subscribed to the ward's notices, or formerly subscribed.

    The consent text shown and the time it was given are kept as proof of consent.
    An unsubscribed row keeps its history (when, why) and is reactivated on a new consent.
    """

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("citizen_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id", ondelete="CASCADE"))
    block: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    consent_text: Mapped[str] = mapped_column(Text)
    consented_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    unsubscribed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    unsubscribe_reason: Mapped[str | None] = mapped_column(String(64), default=None)


class CitizenTag(Base):
    """A label campaigns can target, e.g. "vneid_muc2" (self-reported VNeID level 2)."""

    __tablename__ = "citizen_tags"
    __table_args__ = (UniqueConstraint("citizen_id", "tag"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
