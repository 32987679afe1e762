"""Subscriptions through the real product: block, consent, change, unsubscribe."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.config.settings import PROJECT_ROOT
from bot.config.ward import load_ward
from bot.storage.db import Database
from bot.subscriptions import service
from bot.subscriptions.models import Subscription
from tests.support.appserver import AppServer
from tests.support.chat import buttons, say, user

pytestmark = pytest.mark.integration
WARD = load_ward(PROJECT_ROOT / "settings" / "ward.yml")


def test_subscribe_with_block_and_consent_then_change_and_stop(app: AppServer, db: Database) -> None:
    sender = user()
    body = say(app, sender, "cho tôi nhận thông báo của phường với")
    assert body["topic"] == "campaign.subscribe"
    assert [b.name for b in WARD.blocks] == list(buttons(body))
    body = say(app, sender, payload=buttons(body)["Khối 2"])
    assert body["topic"] == "campaign.subscribe"
    assert "Đồng ý nhận thông báo" in body["messages"][0]["text"] and "Khối 2" in body["messages"][0]["text"]
    assert not service.is_subscribed(db, "web", sender)  # nothing before consent
    body = say(app, sender, payload=buttons(body)["Đồng ý"])
    assert body["topic"] == "campaign.subscribe"
    assert service.is_subscribed(db, "web", sender)
    info = service.subscription(db, "web", sender)
    assert info.block == "khoi_2" and info.consented_at is not None
    with db.session() as session:
        consents = list(session.scalars(select(Subscription.consent_text)))
    assert any("Đồng ý nhận thông báo" in text and "Khối 2" in text for text in consents)

    body = say(app, sender, "tôi ở khối nào")
    assert body["topic"] == "campaign.subscribe" and "Khối 2" in body["messages"][0]["text"]
    body = say(app, sender, payload=buttons(body)["Khối 4"])
    assert body["topic"] == "campaign.subscribe"
    assert service.subscription(db, "web", sender).block == "khoi_4"

    body = say(app, sender, "dừng nhận tin")
    assert body["topic"] == "campaign.unsubscribe"
    assert not service.is_subscribed(db, "web", sender)


def test_refusing_consent_stores_nothing(app: AppServer, db: Database) -> None:
    sender = user()
    say(app, sender, "đăng ký nhận tin")
    body = say(app, sender, payload='/subscribe{"block": "khoi_1"}')
    body = say(app, sender, "không đồng ý")
    assert body["topic"] == "campaign.subscribe"
    assert service.subscription(db, "web", sender) is None
    # a later "có" does not subscribe: consent is only taken right after the question
    say(app, sender, "có")
    assert service.subscription(db, "web", sender) is None


def test_typed_consent_after_a_typed_block(app: AppServer, db: Database) -> None:
    sender = user()
    body = say(app, sender, "đk nhận tin khối 3")
    assert body["topic"] == "campaign.subscribe" and "Khối 3" in body["messages"][0]["text"]
    say(app, sender, "đồng ý")
    assert service.subscription(db, "web", sender).block == "khoi_3"


def test_unsubscribe_when_not_subscribed_is_harmless(app: AppServer, db: Database) -> None:
    sender = user()
    body = say(app, sender, payload="/unsubscribe")
    assert body["topic"] == "campaign.unsubscribe"
    assert not service.is_subscribed(db, "web", sender)
