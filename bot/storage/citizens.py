"""Citizens as channel users: created on first message, last contact kept."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.storage.db import Database, utcnow
from bot.storage.models import Citizen


def touch_citizen(db: Database, channel: str, external_id: str) -> int:
    """Record a message from this channel user; returns the citizen id."""
    try:
        return _touch(db, channel, external_id)
    except IntegrityError:  # two first messages at once: the other one created the row
        return _touch(db, channel, external_id)


def _touch(db: Database, channel: str, external_id: str) -> int:
    with db.session() as session:
        citizen = session.scalar(
            select(Citizen).where(Citizen.channel == channel, Citizen.external_id == external_id)
        )
        if citizen is None:
            citizen = Citizen(channel=channel, external_id=external_id)
            session.add(citizen)
        citizen.last_message_at = utcnow()
        session.flush()
        return citizen.id
