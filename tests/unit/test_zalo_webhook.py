"""POST /zalo/webhook in-process, with a stub conversation instead of Rasa and a fake Zalo API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.channels.zalo.api import signature_header
from bot.channels.zalo.models import ZaloInbound
from bot.channels.zalo.webhook import zalo_router
from bot.conversation.service import ConversationService, Turn
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import Citizen
from tests.unit.test_zalo import APP_ID, SECRET, FakeZalo, services_for


class StubConversation(ConversationService):
    """Answers every turn with one text and six menu buttons; remembers what it was asked."""

    def __init__(self) -> None:
        super().__init__(None, None, frozenset({"greet", "khai_sinh"}))  # type: ignore[arg-type]
        self.turns: list[tuple[str, str, dict[str, Any] | None]] = []

    async def handle(self, sender: str, message: str, metadata: dict[str, Any] | None = None) -> Turn:
        self.turns.append((sender, message, metadata))
        buttons = [{"title": f"Mục {i}", "payload": f'/khai_sinh{{"n": {i}}}'} for i in range(6)]
        return Turn(topic="greet", intent={"name": "greet"}, messages=[{"text": "Chào", "buttons": buttons}])


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[TestClient, FakeZalo, StubConversation, Database]]:
    url = f"sqlite:///{tmp_path / 'ward.db'}"
    upgrade(url)
    db = Database(url)
    services = services_for(db)
    app = FastAPI()
    app.state.services = services
    conversation = StubConversation()
    app.state.conversation = conversation
    app.include_router(zalo_router())
    fake = FakeZalo()
    with TestClient(app) as client:
        webhook = app.state.zalo_webhook
        real, webhook.zalo.client = webhook.zalo.client, fake.client(db)
        client.portal.call(real.aclose)
        yield client, fake, conversation, db
    db.dispose()


def post(client: TestClient, event: dict[str, Any], signature: str | None = "sign") -> Any:
    raw = json.dumps(event).encode()
    headers = {"content-type": "application/json"}
    if signature == "sign":
        signature = signature_header(APP_ID, raw, event["timestamp"], SECRET)
    if signature:
        headers["X-ZEvent-Signature"] = signature
    return client.post("/zalo/webhook", content=raw, headers=headers)


def text_event(text: str, msg_id: str = "m1", user_id: str = "u1") -> dict[str, Any]:
    return {
        "app_id": APP_ID,
        "event_name": "user_send_text",
        "sender": {"id": user_id},
        "recipient": {"id": "oa"},
        "message": {"msg_id": msg_id, "text": text},
        "timestamp": "1764240000000",
    }


def wait(predicate: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.02)
    return predicate()


def test_signed_text_is_answered_through_the_cs_api(env: Any) -> None:
    client, fake, conversation, db = env
    assert post(client, text_event("xin chào")).status_code == 200
    assert wait(lambda: len(fake.sent) == 2)
    assert conversation.turns == [("zalo:u1", "xin chào", {"channel": "zalo"})]
    first, second = fake.sent
    assert first["message"]["quote_message_id"] == "m1"
    assert len(first["message"]["attachment"]["payload"]["buttons"]) == 5
    assert second["message"]["text"] == "Các lựa chọn khác:"
    with db.session() as session:
        assert session.scalar(select(Citizen.external_id).where(Citizen.channel == "zalo")) == "u1"


def test_bad_signatures_and_bad_json(env: Any) -> None:
    client, fake, conversation, _ = env
    assert post(client, text_event("x"), signature=None).status_code == 401
    assert post(client, text_event("x"), signature="mac=" + "0" * 64).status_code == 401
    bad = client.post("/zalo/webhook", content=b"{oops", headers={"X-ZEvent-Signature": "mac=00"})
    assert bad.status_code == 400
    time.sleep(0.3)
    assert fake.sent == [] and conversation.turns == []


def test_a_button_click_reaches_rasa_as_its_payload(env: Any) -> None:
    client, _, conversation, _ = env
    post(client, text_event('/khai_sinh{"n": 1}'))
    assert wait(lambda: conversation.turns)
    assert conversation.turns[0][1] == '/khai_sinh{"n": 1}'


def test_duplicates_are_processed_once(env: Any) -> None:
    client, fake, conversation, db = env
    for _ in range(3):
        assert post(client, text_event("xin chào", msg_id="same")).status_code == 200
    assert wait(lambda: len(fake.sent) >= 2)
    time.sleep(0.3)
    assert len(conversation.turns) == 1
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ZaloInbound)) == 1


def test_other_media_get_the_clear_answer_and_follow_greets(env: Any) -> None:
    client, fake, conversation, _ = env
    sticker = text_event("", msg_id="s1") | {"event_name": "user_send_sticker"}
    post(client, sticker)
    assert wait(lambda: fake.sent)
    assert "nhãn dán" in fake.sent[0]["message"]["text"]
    assert conversation.turns == []
    follow = {
        "app_id": APP_ID,
        "event_name": "follow",
        "oa_id": "oa",
        "follower": {"id": "u9"},
        "timestamp": "1764240000001",
    }
    post(client, follow)
    assert wait(lambda: conversation.turns)
    assert conversation.turns[0][:2] == ("zalo:u9", "/greet")


def test_unknown_events_are_ignored(env: Any) -> None:
    client, fake, conversation, db = env
    oa_echo = text_event("hi") | {"event_name": "oa_send_text"}
    assert post(client, oa_echo).status_code == 200
    time.sleep(0.3)
    assert fake.sent == [] and conversation.turns == []
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ZaloInbound)) == 0


class FakeOutbox:
    def __init__(self) -> None:
        self.senders: dict[str, Any] = {}
        self.stopped = 0

    def register(self, sender: Any) -> None:
        self.senders[sender.channel] = sender

    async def stop(self) -> None:
        self.stopped += 1


def test_the_sender_is_registered_with_the_outbox_and_the_outbox_stops_first(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ward.db'}"
    upgrade(url)
    db = Database(url)
    app = FastAPI()
    app.state.services = services_for(db)
    app.state.conversation = StubConversation()
    app.state.outbox = outbox = FakeOutbox()
    app.include_router(zalo_router())
    with TestClient(app):
        assert outbox.senders["zalo"] is app.state.zalo_sender
    assert outbox.stopped == 1
    db.dispose()
