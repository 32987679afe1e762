"""Zalo's 48-hour rule for free consultation messages.

An OA may send consultation ("cs") messages to a user only within 48 hours of
that user's last interaction, and only a limited number of them (QUOTA) per
interaction. The last inbound message time is citizens.last_message_at (set by
touch_citizen); sent messages are counted in zalo_sent. Outside the window, or
over the quota, nothing is sent unless ZALO_PROACTIVE says the OA has a package
for proactive messages; what was not sent is recorded in zalo_refusals with the
reason.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select

from bot.channels.zalo.models import ZaloRefusal, ZaloSent
from bot.storage.db import Database, utcnow
from bot.storage.models import Citizen

WINDOW = dt.timedelta(hours=48)
OUTSIDE_WINDOW = "outside 48h window"
QUOTA = 8  # free consultation messages per user interaction (Zalo's reply quota)
QUOTA_USED = "48h message quota used"


def within_window(
    last_message_at: dt.datetime | None, now: dt.datetime, window: dt.timedelta = WINDOW
) -> bool:
    """True when a free reply is still allowed (never messaged: not allowed)."""
    if last_message_at is None:
        return False
    return now - last_message_at < window  # a time ahead of ours (clock skew) counts as now


def refusal_reason(last_message_at: dt.datetime | None, now: dt.datetime, *, proactive: bool) -> str | None:
    """None when sending is allowed, else the reason recorded for the refusal."""
    if proactive or within_window(last_message_at, now):
        return None
    return OUTSIDE_WINDOW


def last_message_at(db: Database, external_id: str) -> dt.datetime | None:
    with db.session() as session:
        return session.scalar(
            select(Citizen.last_message_at).where(
                Citizen.channel == "zalo", Citizen.external_id == external_id
            )
        )


def check(db: Database, external_id: str, *, proactive: bool, now: dt.datetime | None = None) -> str | None:
    """Read the citizen's last message time and apply the rule (blocking: use a thread)."""
    return refusal_reason(last_message_at(db, external_id), now or utcnow(), proactive=proactive)


def allowance(
    db: Database, external_id: str, *, proactive: bool, now: dt.datetime | None = None
) -> tuple[str | None, int | None]:
    """(refusal reason, messages still allowed): (None, None) means no limit applies."""
    if proactive:
        return None, None
    now = now or utcnow()
    last = last_message_at(db, external_id)
    reason = refusal_reason(last, now, proactive=False)
    if reason or last is None:
        return reason or OUTSIDE_WINDOW, 0
    with db.session() as session:
        sent = session.scalar(
            select(func.count())
            .select_from(ZaloSent)
            .where(ZaloSent.external_id == external_id, ZaloSent.sent_at >= last)
        )
    remaining = max(QUOTA - int(sent or 0), 0)
    return (QUOTA_USED if remaining == 0 else None), remaining


def record_sent(db: Database, external_id: str, now: dt.datetime | None = None) -> None:
    """Count one sent message; rows older than the window are of no use and are dropped."""
    now = now or utcnow()
    with db.session() as session:
        session.execute(
            delete(ZaloSent).where(ZaloSent.external_id == external_id, ZaloSent.sent_at < now - WINDOW)
        )
        session.add(ZaloSent(external_id=external_id, sent_at=now))


def record_refusal(db: Database, external_id: str, reason: str, kind: str) -> None:
    with db.session() as session:
        session.add(ZaloRefusal(external_id=external_id, reason=reason[:64], kind=kind))
