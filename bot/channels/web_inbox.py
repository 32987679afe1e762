"""What the app sends on its own to web chat users (reminders, campaigns): kept until the page asks.

A web page cannot be pushed to, so the outbox's "web" sender stores each message here and the
chat page collects them (`GET /api/chat/inbox`) when it opens and every half minute while open.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy import JSON, String, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column

from bot.outbox.types import SendResult
from bot.storage.db import Database, utcnow
from bot.storage.models import Base

log = logging.getLogger(__name__)

MAX_TAKE = 20
KEEP_UNREAD_DAYS = 30


class WebInboxMessage(Base):
    """One message waiting for (or already collected by) a web chat user."""

    __tablename__ = "web_inbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), index=True)
    message: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(default=None)


def store(db: Database, external_id: str, message: dict) -> int:
    with db.session() as session:
        row = WebInboxMessage(external_id=external_id, message=message)
        session.add(row)
        session.flush()
        return row.id


def take(db: Database, external_id: str, limit: int = MAX_TAKE) -> list[dict]:
    """The user's waiting messages, oldest first, each handed out once."""
    with db.session() as session:
        rows = session.scalars(
            select(WebInboxMessage)
            .where(WebInboxMessage.external_id == external_id, WebInboxMessage.delivered_at.is_(None))
            .order_by(WebInboxMessage.id)
            .limit(limit)
        ).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        # only rows still undelivered are ours: two tabs polling at once never both get a message
        taken = session.execute(
            update(WebInboxMessage)
            .where(WebInboxMessage.id.in_(ids), WebInboxMessage.delivered_at.is_(None))
            .values(delivered_at=utcnow())
            .returning(WebInboxMessage.id)
        ).scalars()
        mine = set(taken)
        return [row.message for row in rows if row.id in mine]


def purge(db: Database, now: dt.datetime | None = None, days: int = KEEP_UNREAD_DAYS) -> int:
    """Collected messages and ones nobody came for within `days` are deleted (they may hold a code)."""
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    with db.session() as session:
        result = session.execute(
            delete(WebInboxMessage).where(
                (WebInboxMessage.delivered_at.is_not(None)) | (WebInboxMessage.created_at < cutoff)
            )
        )
        return result.rowcount or 0


class WebInboxSender:
    """The outbox's sender for the web channel: delivery means stored for the page to collect."""

    channel = "web"

    def __init__(self, db: Database) -> None:
        self.db = db

    async def send(self, external_id: str, message: dict) -> SendResult:
        await asyncio.to_thread(store, self.db, external_id, message)
        return SendResult("sent", "stored for the web chat")
