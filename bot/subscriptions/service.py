"""Subscribe, unsubscribe, change block, tags. Synchronous: call with asyncio.to_thread from async code.

Citizens are channel users (`bot.storage.models.Citizen`); a subscription belongs to one
channel user, so "Dừng nhận tin" on Telegram stops the Telegram messages only.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.storage.db import Database, utcnow
from bot.storage.models import Citizen
from bot.subscriptions.models import CitizenTag, Subscription

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubscriptionInfo:
    block: str
    active: bool
    consented_at: dt.datetime


def citizen_id(session: Session, channel: str, external_id: str, *, create: bool = True) -> int | None:
    """The citizen row id for a channel user, created when missing (and `create`)."""
    found = session.scalar(
        select(Citizen.id).where(Citizen.channel == channel, Citizen.external_id == external_id)
    )
    if found is not None or not create:
        return found
    try:
        with session.begin_nested():
            citizen = Citizen(channel=channel, external_id=external_id)
            session.add(citizen)
            session.flush()
            return citizen.id
    except IntegrityError:  # created concurrently by the channel's touch_citizen
        return session.scalar(
            select(Citizen.id).where(Citizen.channel == channel, Citizen.external_id == external_id)
        )


def _subscription(session: Session, channel: str, external_id: str) -> Subscription | None:
    cid = citizen_id(session, channel, external_id, create=False)
    if cid is None:
        return None
    return session.scalar(select(Subscription).where(Subscription.citizen_id == cid))


def subscribe(db: Database, channel: str, external_id: str, block: str, consent_text: str) -> None:
    """Subscribe (or re-subscribe) with explicit consent: the text shown and now are stored."""
    if not consent_text.strip():
        raise ValueError("consent text is required")
    now = utcnow()
    with db.session() as session:
        cid = citizen_id(session, channel, external_id)
        sub = session.scalar(select(Subscription).where(Subscription.citizen_id == cid))
        if sub is None:
            sub = Subscription(citizen_id=cid, block=block, consent_text=consent_text)
            session.add(sub)
        sub.block = block
        sub.active = True
        sub.consent_text = consent_text
        sub.consented_at = now
        sub.updated_at = now
        sub.unsubscribed_at = None
        sub.unsubscribe_reason = None
    log.info("subscription: %s user subscribed", channel)


def set_block(db: Database, channel: str, external_id: str, block: str) -> bool:
    """Change the block of an active subscription; False when not subscribed."""
    with db.session() as session:
        sub = _subscription(session, channel, external_id)
        if sub is None or not sub.active:
            return False
        sub.block = block
        sub.updated_at = utcnow()
        return True


def unsubscribe(db: Database, channel: str, external_id: str, reason: str) -> None:
    """Stop the ward's notices to this channel user at once. Idempotent; unknown users are fine."""
    with db.session() as session:
        sub = _subscription(session, channel, external_id)
        if sub is None or not sub.active:
            return
        now = utcnow()
        sub.active = False
        sub.unsubscribed_at = now
        sub.updated_at = now
        sub.unsubscribe_reason = reason[:64]
    log.info("subscription: %s user unsubscribed (%s)", channel, reason[:64])


def is_subscribed(db: Database, channel: str, external_id: str) -> bool:
    with db.session() as session:
        sub = _subscription(session, channel, external_id)
        return bool(sub and sub.active)


def subscription(db: Database, channel: str, external_id: str) -> SubscriptionInfo | None:
    """The channel user's subscription (active or not), or None if they never subscribed."""
    with db.session() as session:
        sub = _subscription(session, channel, external_id)
        if sub is None:
            return None
        return SubscriptionInfo(block=sub.block, active=sub.active, consented_at=sub.consented_at)


def add_tag(db: Database, channel: str, external_id: str, tag: str, source: str) -> bool:
    """Record a tag (idempotent); True when it is new."""
    with db.session() as session:
        cid = citizen_id(session, channel, external_id)
        exists = session.scalar(
            select(CitizenTag.id).where(CitizenTag.citizen_id == cid, CitizenTag.tag == tag)
        )
        if exists is not None:
            return False
        session.add(CitizenTag(citizen_id=cid, tag=tag, source=source))
    log.info("tag recorded: %s from %s", tag, source)
    return True


def tags(db: Database, channel: str, external_id: str) -> set[str]:
    with db.session() as session:
        cid = citizen_id(session, channel, external_id, create=False)
        if cid is None:
            return set()
        return set(session.scalars(select(CitizenTag.tag).where(CitizenTag.citizen_id == cid)))


def subscribers(db: Database, *, block: str | None = None, tag: str | None = None) -> list[tuple[str, str]]:
    """(channel, external_id) of active subscribers, optionally of one block and/or with a tag."""
    query = (
        select(Citizen.channel, Citizen.external_id)
        .join(Subscription, Subscription.citizen_id == Citizen.id)
        .where(Subscription.active.is_(True))
    )
    if block is not None:
        query = query.where(Subscription.block == block)
    if tag is not None:
        query = query.join(CitizenTag, CitizenTag.citizen_id == Citizen.id).where(CitizenTag.tag == tag)
    with db.session() as session:
        return [(row[0], row[1]) for row in session.execute(query.order_by(Citizen.id))]
