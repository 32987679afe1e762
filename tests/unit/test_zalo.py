"""Zalo channel without Rasa: signatures, buttons, the 48-hour rule, tokens, deduplication."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.channels.zalo import window
from bot.channels.zalo.api import (
    MAX_BUTTONS,
    ZaloClient,
    build_bodies,
    compute_signature,
    signature_header,
    to_zalo_buttons,
    verify_signature,
)
from bot.channels.zalo.channel import ZaloChannel
from bot.channels.zalo.models import ZaloRefusal, ZaloSent, ZaloToken
from bot.channels.zalo.sender import ZaloSender
from bot.channels.zalo.webhook import claim, event_key, event_user, read_message
from bot.config.settings import Settings
from bot.conversation.service import ConversationService
from bot.conversation.text import BadInput
from bot.services import Services
from bot.storage.citizens import touch_citizen
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import Citizen

APP_ID, SECRET = "123456789", "oa-secret"
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'ward.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


# --- signatures ---


def test_signature_is_sha256_of_app_id_body_timestamp_secret() -> None:
    body = b'{"event_name":"user_send_text","timestamp":"1700000000000"}'
    expected = hashlib.sha256(f"{APP_ID}{body.decode()}1700000000000{SECRET}".encode()).hexdigest()
    assert compute_signature(APP_ID, body, "1700000000000", SECRET) == expected
    assert signature_header(APP_ID, body, "1700000000000", SECRET) == f"mac={expected}"


def test_verify_accepts_the_mac_header_and_bare_hex() -> None:
    body = b'{"a": 1}'
    header = signature_header(APP_ID, body, "17", SECRET)
    assert verify_signature(header, APP_ID, body, "17", SECRET)
    assert verify_signature(header.removeprefix("mac="), APP_ID, body, "17", SECRET)
    assert verify_signature(header.upper().replace("MAC=", "mac="), APP_ID, body, "17", SECRET)


@pytest.mark.parametrize(
    ("header", "app_id", "body", "timestamp", "secret"),
    [
        (None, APP_ID, b'{"a": 1}', "17", SECRET),
        ("", APP_ID, b'{"a": 1}', "17", SECRET),
        ("mac=deadbeef", APP_ID, b'{"a": 1}', "17", SECRET),
        ("good", APP_ID, b'{"a": 2}', "17", SECRET),  # body changed
        ("good", APP_ID, b'{"a": 1}', "18", SECRET),  # timestamp changed
        ("good", "999", b'{"a": 1}', "17", SECRET),  # another app
        ("good", APP_ID, b'{"a": 1}', "17", "other"),  # another secret
        ("good", APP_ID, b'{"a": 1}', "17", ""),  # no secret configured
    ],
)
def test_verify_refuses_anything_else(
    header: str | None, app_id: str, body: bytes, timestamp: str, secret: str
) -> None:
    if header == "good":
        header = signature_header(APP_ID, b'{"a": 1}', "17", SECRET)
    assert not verify_signature(header, app_id, body, timestamp, secret)


# --- buttons and message bodies ---


def test_rasa_buttons_become_hidden_query_buttons() -> None:
    buttons = to_zalo_buttons(
        [{"title": "Khai sinh", "payload": "/khai_sinh"}, {"title": "x" * 150, "payload": "/a"}]
    )
    assert buttons[0] == {"title": "Khai sinh", "type": "oa.query.hide", "payload": "/khai_sinh"}
    assert len(buttons[1]["title"]) == 100
    assert to_zalo_buttons([{"title": "no payload"}]) == []


def test_text_without_buttons_is_a_plain_quoted_text() -> None:
    bodies = build_bodies("u1", {"text": "Xin chào"}, "Thêm:", quote_id="m1")
    assert bodies == [
        {"recipient": {"user_id": "u1"}, "message": {"text": "Xin chào", "quote_message_id": "m1"}}
    ]


def test_more_buttons_than_zalo_shows_are_split_over_messages() -> None:
    buttons = [{"title": f"Mục {i}", "payload": f"/intent_{i}"} for i in range(7)]
    bodies = build_bodies("u1", {"text": "Chọn:", "buttons": buttons}, "Thêm:", quote_id="m1")
    assert len(bodies) == 2
    first, second = (b["message"] for b in bodies)
    assert first["text"] == "Chọn:" and first["quote_message_id"] == "m1"
    assert [b["payload"] for b in first["attachment"]["payload"]["buttons"]] == [
        f"/intent_{i}" for i in range(MAX_BUTTONS)
    ]
    assert second["text"] == "Thêm:" and "quote_message_id" not in second
    assert [b["payload"] for b in second["attachment"]["payload"]["buttons"]] == ["/intent_5", "/intent_6"]


def test_a_button_click_maps_back_to_its_payload_and_typed_slashes_stay_text() -> None:
    conversation = ConversationService(None, None, frozenset({"khai_sinh", "greet"}))  # type: ignore[arg-type]
    assert read_message("/khai_sinh", conversation) == "/khai_sinh"
    assert read_message("/unknown_intent", conversation) == "unknown_intent"  # typed text, slash dropped
    assert read_message("làm khai sinh", conversation) == "làm khai sinh"
    with pytest.raises(BadInput):
        read_message("   ", conversation)


def test_event_user_and_dedup_key() -> None:
    text = {"event_name": "user_send_text", "sender": {"id": "u1"}, "message": {"msg_id": "abc"}}
    follow = {"event_name": "follow", "follower": {"id": "u2"}, "timestamp": "17"}
    assert event_user(text) == "u1" and event_key(text, "u1") == "msg:abc"
    assert event_user(follow) == "u2" and event_key(follow, "u2") == "follow:u2:17"
    assert event_user({"event_name": "x"}) is None


def test_an_event_is_claimed_once(db: Database) -> None:
    assert claim(db, "msg:abc", "user_send_text")
    assert not claim(db, "msg:abc", "user_send_text")
    assert claim(db, "msg:def", "user_send_text")


# --- the 48-hour window ---


def test_window_is_48_hours_from_the_last_message() -> None:
    assert window.within_window(NOW - dt.timedelta(hours=47, minutes=59), NOW)
    assert not window.within_window(NOW - dt.timedelta(hours=48), NOW)
    assert not window.within_window(None, NOW)
    assert window.within_window(NOW + dt.timedelta(minutes=1), NOW)  # clock skew


def test_refusal_reason_honours_proactive() -> None:
    old = NOW - dt.timedelta(days=3)
    assert window.refusal_reason(old, NOW, proactive=False) == "outside 48h window"
    assert window.refusal_reason(old, NOW, proactive=True) is None
    assert window.refusal_reason(NOW, NOW, proactive=False) is None


def test_window_reads_the_citizens_last_message(db: Database) -> None:
    assert window.check(db, "u1", proactive=False) == "outside 48h window"  # never wrote to us
    touch_citizen(db, "zalo", "u1")
    assert window.check(db, "u1", proactive=False) is None
    touch_citizen(db, "web", "u2")  # another channel's user with the same id does not count
    assert window.check(db, "u2", proactive=False) == "outside 48h window"


# --- the client: error 0 only, token refresh ---


class FakeZalo:
    """An httpx transport that plays Zalo: one valid access token, rotating refresh tokens."""

    def __init__(self, access: str = "a0", refresh: str = "r0") -> None:
        self.access, self.refresh = access, refresh
        self.sent: list[dict[str, Any]] = []
        self.refreshes = 0
        self.fail_with: int | None = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/access_token"):
            form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
            if form.get("refresh_token") != self.refresh or request.headers.get("secret_key") != "app-secret":
                return httpx.Response(200, json={"error": -14014, "error_name": "Invalid refresh token"})
            self.refreshes += 1
            self.access, self.refresh = f"a{self.refreshes}", f"r{self.refreshes}"
            return httpx.Response(200, json={"access_token": self.access, "refresh_token": self.refresh})
        if request.headers.get("access_token") != self.access:
            return httpx.Response(200, json={"error": -216, "message": "Access token is invalid"})
        if self.fail_with is not None:
            return httpx.Response(200, json={"error": self.fail_with, "message": "nope"})
        self.sent.append(json.loads(request.content))
        return httpx.Response(200, json={"error": 0, "data": {"message_id": "m"}})

    def client(self, db: Database, access: str = "a0", refresh: str = "r0") -> ZaloClient:
        return ZaloClient(
            db,
            app_id=APP_ID,
            app_secret="app-secret",
            access_token=access,
            refresh_token=refresh,
            api_base_url="https://zalo.test",
            oauth_base_url="https://oauth.zalo.test",
            transport=httpx.MockTransport(self.handler),
        )


BODY = {"recipient": {"user_id": "u1"}, "message": {"text": "hi"}}


async def test_success_only_when_error_is_zero(db: Database) -> None:
    fake = FakeZalo()
    client = fake.client(db)
    assert (await client.send_cs(BODY)).ok
    fake.fail_with = -230
    result = await client.send_cs(BODY)
    assert not result.ok and result.error == -230 and result.reason == "zalo error -230"
    await client.aclose()


async def test_an_expired_token_is_refreshed_once_stored_and_the_send_retried(db: Database) -> None:
    fake = FakeZalo()
    fake.access = "a-new-only-after-refresh"  # the configured "a0" is stale
    client = fake.client(db)
    results = await asyncio.gather(*(client.send_cs(BODY) for _ in range(3)))
    assert all(r.ok for r in results)
    assert fake.refreshes == 1  # the lock: one refresh for three concurrent sends
    with db.session() as session:
        row = session.get(ZaloToken, 1)
        assert (row.access_token, row.refresh_token) == ("a1", "r1")
    await client.aclose()
    # a restarted app uses the stored tokens, not the (used) ones of its settings
    restarted = fake.client(db)
    assert (await restarted.send_cs(BODY)).ok
    assert fake.refreshes == 1
    await restarted.aclose()


async def test_a_refused_refresh_gives_up_without_looping(db: Database) -> None:
    fake = FakeZalo(access="other", refresh="other")
    client = fake.client(db)
    result = await client.send_cs(BODY)
    assert not result.ok and result.error == -216
    with db.session() as session:
        assert session.get(ZaloToken, 1) is None
    await client.aclose()


async def test_network_trouble_is_transient(db: Database) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down")

    client = ZaloClient(
        db,
        app_id=APP_ID,
        app_secret="s",
        access_token="a",
        refresh_token="r",
        api_base_url="https://zalo.test",
        oauth_base_url="https://zalo.test",
        transport=httpx.MockTransport(broken),
    )
    result = await client.send_cs(BODY)
    assert not result.ok and result.transient
    await client.aclose()


# --- the outbox sender ---


def services_for(db: Database, *, proactive: bool = False) -> Services:
    settings = Settings(
        _env_file=None,
        DATABASE_URL=db.url,
        ZALO_APP_ID=APP_ID,
        ZALO_OA_SECRET_KEY=SECRET,
        ZALO_PROACTIVE=proactive,
    )
    built = Services.build(settings)
    built.db.dispose()
    built.db = db
    return built


async def test_sender_skips_outside_the_window_and_records_why(db: Database) -> None:
    fake = FakeZalo()
    services = services_for(db)
    sender = ZaloSender(ZaloChannel(services, fake.client(db)))
    assert sender.channel == "zalo"
    touch_citizen(db, "zalo", "u1")
    with db.session() as session:
        citizen = session.scalar(select(Citizen).where(Citizen.external_id == "u1"))
        citizen.last_message_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=49)
    result = await sender.send("u1", {"text": "Nhắc lịch hẹn", "buttons": []})
    assert (result.status, result.reason) == ("skipped", "outside 48h window")
    assert fake.sent == []
    with db.session() as session:
        refusal = session.scalar(select(ZaloRefusal))
        assert (refusal.external_id, refusal.reason, refusal.kind) == ("u1", "outside 48h window", "outbox")
    await sender.zalo.aclose()


async def test_sender_sends_within_the_window_or_when_proactive(db: Database) -> None:
    fake = FakeZalo()
    sender = ZaloSender(ZaloChannel(services_for(db), fake.client(db)))
    touch_citizen(db, "zalo", "u1")
    assert (await sender.send("u1", {"text": "Nhắc lịch hẹn"})).status == "sent"
    proactive = ZaloSender(ZaloChannel(services_for(db, proactive=True), fake.client(db)))
    assert (await proactive.send("stranger", {"text": "Thông báo"})).status == "sent"
    assert [b["recipient"]["user_id"] for b in fake.sent] == ["u1", "stranger"]
    fake.fail_with = -213
    failed = await sender.send("u1", {"text": "x"})
    assert (failed.status, failed.reason) == ("failed", "zalo error -213")
    await sender.zalo.aclose()
    await proactive.zalo.aclose()


# --- the quota of messages per interaction ---


def test_allowance_counts_messages_sent_since_the_last_interaction(db: Database) -> None:
    assert window.allowance(db, "u1", proactive=False) == ("outside 48h window", 0)
    assert window.allowance(db, "u1", proactive=True) == (None, None)
    touch_citizen(db, "zalo", "u1")
    assert window.allowance(db, "u1", proactive=False) == (None, window.QUOTA)
    for _ in range(window.QUOTA - 1):
        window.record_sent(db, "u1")
    assert window.allowance(db, "u1", proactive=False) == (None, 1)
    window.record_sent(db, "u1")
    assert window.allowance(db, "u1", proactive=False) == ("48h message quota used", 0)
    touch_citizen(db, "zalo", "u1")  # the citizen writes again: a new allowance
    assert window.allowance(db, "u1", proactive=False) == (None, window.QUOTA)


def test_sent_rows_older_than_the_window_are_dropped(db: Database) -> None:
    window.record_sent(db, "u1", now=NOW - dt.timedelta(days=3))
    window.record_sent(db, "u1", now=NOW)
    with db.session() as session:
        assert session.scalars(select(ZaloSent.sent_at)).all() == [NOW]


async def test_delivery_stops_at_the_quota_and_records_why(db: Database) -> None:
    fake = FakeZalo()
    channel = ZaloChannel(services_for(db), fake.client(db))
    touch_citizen(db, "zalo", "u1")
    messages = [{"text": f"Tin {i}"} for i in range(window.QUOTA + 2)]
    result = await channel.deliver("u1", messages, kind="reply")
    assert (result.status, result.reason) == ("skipped", "48h message quota used")
    assert len(fake.sent) == window.QUOTA
    with db.session() as session:
        assert session.scalar(select(ZaloRefusal.reason)) == "48h message quota used"
    await channel.aclose()
