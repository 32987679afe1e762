"""Citizens as the tests need them: one whose last message was some hours ago (Zalo's 48 h window)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bot.storage.citizens import touch_citizen
from bot.storage.db import Database, utcnow
from bot.storage.models import Citizen


def wrote(db: Database, user: str, hours_ago: float, channel: str = "zalo") -> None:
    """The citizen's last message was `hours_ago` hours ago."""
    touch_citizen(db, channel, user)
    with db.session() as session:
        citizen = session.scalar(
            select(Citizen).where(Citizen.channel == channel, Citizen.external_id == user)
        )
        assert citizen is not None
        citizen.last_message_at = utcnow() - dt.timedelta(hours=hours_ago)
