"""Subscriptions service: consent, block, per-channel unsubscribe, tags."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.subscriptions import service
from bot.subscriptions.models import Subscription


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'ward.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def test_subscribe_stores_block_consent_text_and_time(db: Database) -> None:
    before = dt.datetime.now(dt.UTC)
    service.subscribe(db, "web", "u1", "khoi_2", "Đồng ý nhận thông báo ...")
    assert service.is_subscribed(db, "web", "u1")
    info = service.subscription(db, "web", "u1")
    assert info is not None and info.block == "khoi_2" and info.active
    assert before - dt.timedelta(seconds=1) <= info.consented_at <= dt.datetime.now(dt.UTC)
    with db.session() as session:
        row = session.scalar(select(Subscription))
        assert row.consent_text == "Đồng ý nhận thông báo ..."


def test_consent_text_is_required(db: Database) -> None:
    with pytest.raises(ValueError, match="consent"):
        service.subscribe(db, "web", "u1", "khoi_2", "  ")
    assert not service.is_subscribed(db, "web", "u1")


def test_unsubscribe_is_idempotent_and_per_channel(db: Database) -> None:
    service.subscribe(db, "web", "same", "khoi_1", "consent")
    service.subscribe(db, "telegram", "same", "khoi_1", "consent")
    service.unsubscribe(db, "telegram", "same", "bot was blocked")
    service.unsubscribe(db, "telegram", "same", "bot was blocked")
    service.unsubscribe(db, "zalo", "never-seen", "unfollow")
    assert not service.is_subscribed(db, "telegram", "same")
    assert service.is_subscribed(db, "web", "same")
    assert not service.is_subscribed(db, "zalo", "never-seen")
    with db.session() as session:
        reasons = {row.unsubscribe_reason for row in session.scalars(select(Subscription))}
    assert reasons == {None, "bot was blocked"}


def test_resubscribing_reactivates_with_the_new_consent(db: Database) -> None:
    service.subscribe(db, "web", "u1", "khoi_1", "first")
    service.unsubscribe(db, "web", "u1", "user_request")
    service.subscribe(db, "web", "u1", "khoi_3", "second")
    info = service.subscription(db, "web", "u1")
    assert info is not None and info.active and info.block == "khoi_3"
    with db.session() as session:
        row = session.scalar(select(Subscription))
        assert (row.consent_text, row.unsubscribed_at, row.unsubscribe_reason) == ("second", None, None)


def test_set_block_only_for_active_subscriptions(db: Database) -> None:
    assert not service.set_block(db, "web", "u1", "khoi_4")
    service.subscribe(db, "web", "u1", "khoi_1", "consent")
    assert service.set_block(db, "web", "u1", "khoi_4")
    assert service.subscription(db, "web", "u1").block == "khoi_4"


def test_tags_are_idempotent_and_target_subscribers(db: Database) -> None:
    assert service.add_tag(db, "web", "a", "vneid_muc2", "self_report")
    assert not service.add_tag(db, "web", "a", "vneid_muc2", "guide:x")
    assert service.tags(db, "web", "a") == {"vneid_muc2"}
    assert service.tags(db, "web", "nobody") == set()
    service.subscribe(db, "web", "a", "khoi_1", "consent")
    service.subscribe(db, "web", "b", "khoi_1", "consent")
    service.subscribe(db, "zalo", "c", "khoi_2", "consent")
    assert service.subscribers(db, block="khoi_1") == [("web", "a"), ("web", "b")]
    assert service.subscribers(db, tag="vneid_muc2") == [("web", "a")]
    service.unsubscribe(db, "web", "a", "user_request")
    assert service.subscribers(db, block="khoi_1") == [("web", "b")]
