"""Zalo's tables: processed deliveries, the OA tokens, messages sent, and those that could not be."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base


class ZaloInbound(Base):
    """One webhook event already handled: Zalo retries deliveries, we process each once."""

    __tablename__ = "zalo_inbound"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_key: Mapped[str] = mapped_column(String(160), unique=True)
    event_name: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ZaloToken(Base):
    """The OA access and refresh tokens (one row, id 1): a refresh token works only once."""

    __tablename__ = "zalo_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ZaloRefusal(Base):
    """A message the app did not send to a Zalo user, and why (never the message text)."""

    __tablename__ = "zalo_refusals"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # "reply" (webhook) or "outbox"
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ZaloSent(Base):
    """One consultation message sent to a user: counted against Zalo's quota per 48-hour window."""

    __tablename__ = "zalo_sent"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), index=True)
    sent_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
