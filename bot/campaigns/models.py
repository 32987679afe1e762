"""Campaign tables: the campaign, its runs, button presses, and staff invite codes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base

STATUSES = ("draft", "scheduled", "running", "paused", "cancelled", "done")
SCHEDULES = ("now", "at", "weekly", "relative")
MAX_TEXT = 4096


class Campaign(Base):
    """A message broadcast to the subscribed citizens of some blocks.

    schedule: "now" | "at" (run_at) | "weekly" (first at run_at, then every 7 days until `until`)
    | "relative" (RapidPro-style event: `offset_days` before each citizen's appointment).
    buttons: the chat API shape, [{"title", "payload"}], payload an intent ("/start_guide{...}",
    "/book_appointment") or an https:// URL. tag_filter: "vneid_muc2" (has the tag) or
    "not vneid_muc2" (has not). created_by is a staff_users id (no foreign key: that table
    lives on another migration branch).
    """

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list[dict]] = mapped_column(JSON, default=list)
    blocks: Mapped[list[str]] = mapped_column(JSON, default=list)
    tag_filter: Mapped[str | None] = mapped_column(String(80))
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    schedule: Mapped[str] = mapped_column(String(16), default="now")
    run_at: Mapped[dt.datetime | None]
    until: Mapped[dt.datetime | None]
    offset_days: Mapped[int | None]
    # An optional photo (bot/campaigns/photos.py): "<sha256>.<ext>" under <var dir>/uploads, and
    # the file_id Telegram gave for it (sent instead of the bytes once known). Migration 0009.
    photo: Mapped[str | None] = mapped_column(String(80))
    photo_file_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_by: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CampaignRun(Base):
    """One broadcast of a campaign. Created before its rows are enqueued, marked after:
    a run left unfinished by a crash is resumed with the same run_no (same outbox ref),
    so nobody gets it twice."""

    __tablename__ = "campaign_runs"
    __table_args__ = (UniqueConstraint("campaign_id", "run_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int]
    run_no: Mapped[int]
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[dt.datetime | None]
    recipients: Mapped[int] = mapped_column(default=0)


class CampaignPress(Base):
    """A citizen pressed a button of a campaign they received (once per button counted)."""

    __tablename__ = "campaign_presses"
    __table_args__ = (UniqueConstraint("campaign_id", "channel", "external_id", "payload"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int]
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(String(300))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InviteCode(Base):
    """A one-time, expiring code that links a Telegram account to a staff account.

    Only a SHA-256 of the code is stored (the code is shown once, when issued). With
    `username` the code links that existing account; without, redeeming creates a
    Telegram-only account with `role` and `blocks`.
    """

    __tablename__ = "staff_invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    blocks: Mapped[list[str]] = mapped_column(JSON, default=list)
    username: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    used_by: Mapped[int | None] = mapped_column(BigInteger)  # the Telegram user id
    created_by: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
