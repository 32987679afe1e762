"""Who gets a campaign: active subscribers of its blocks and channels, with its tag filter.

Resolved at send time (each run), so citizens who subscribed since are included and those
who unsubscribed are not. Reads bot.subscriptions' tables.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, exists, func, select

from bot.campaigns.errors import CampaignError
from bot.storage.db import Database
from bot.storage.models import Citizen
from bot.subscriptions.models import CitizenTag, Subscription

TAG_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_.")


def parse_tag_filter(tag_filter: str | None) -> tuple[str, bool] | None:
    """ "vneid_muc2" → ("vneid_muc2", True); "not vneid_muc2" → ("vneid_muc2", False); None → None."""
    if tag_filter is None or not tag_filter.strip():
        return None
    words = tag_filter.strip().lower().split()
    negate = len(words) == 2 and words[0] in ("not", "!")
    tag = words[-1]
    if len(words) > 2 or (len(words) == 2 and not negate) or not set(tag) <= TAG_CHARS or len(tag) > 64:
        raise CampaignError("invalid_tag_filter", tag_filter)
    return tag, not negate


def audience_query(
    blocks: Sequence[str], channels: Sequence[str], tag_filter: str | None
) -> Select[tuple[str, str]]:
    query = (
        select(Citizen.channel, Citizen.external_id)
        .join(Subscription, Subscription.citizen_id == Citizen.id)
        .where(
            Subscription.active.is_(True),
            Subscription.block.in_(list(blocks)),
            Citizen.channel.in_(list(channels)),
        )
    )
    parsed = parse_tag_filter(tag_filter)
    if parsed is not None:
        tag, present = parsed
        has = exists().where(CitizenTag.citizen_id == Citizen.id, CitizenTag.tag == tag)
        query = query.where(has if present else ~has)
    return query


def recipients(
    db: Database, blocks: Sequence[str], channels: Sequence[str], tag_filter: str | None
) -> list[tuple[str, str]]:
    """(channel, external_id) of everyone the campaign reaches now, in a stable order."""
    query = audience_query(blocks, channels, tag_filter).order_by(Citizen.id)
    with db.session() as session:
        return [(channel, external_id) for channel, external_id in session.execute(query)]


def count(db: Database, blocks: Sequence[str], channels: Sequence[str], tag_filter: str | None) -> int:
    query = audience_query(blocks, channels, tag_filter).subquery()
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(query)) or 0


def block_progress(db: Database, blocks: Sequence[str], tag: str = "vneid_muc2") -> list[dict]:
    """Per block: subscribed citizens, how many have `tag`, and the share (Project 06 progress)."""
    has = exists().where(CitizenTag.citizen_id == Subscription.citizen_id, CitizenTag.tag == tag)
    query = (
        select(Subscription.block, func.count(), func.count().filter(has))
        .where(Subscription.active.is_(True), Subscription.block.in_(list(blocks)))
        .group_by(Subscription.block)
    )
    with db.session() as session:
        found = {block: (total, tagged) for block, total, tagged in session.execute(query)}
    rows = []
    for block in blocks:
        total, tagged = found.get(block, (0, 0))
        rows.append(
            {"block": block, "subscribed": total, "tagged": tagged, "share": tagged / total if total else 0.0}
        )
    return rows
