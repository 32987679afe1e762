"""The Zalo channel through the real product: signed webhook posts → app → Rasa → Zalo stand-in."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.channels.zalo.api import signature_header
from bot.channels.zalo.channel import ZaloChannel
from bot.channels.zalo.models import ZaloRefusal, ZaloToken
from bot.channels.zalo.sender import ZaloSender
from bot.config.settings import PROJECT_ROOT, Settings
from bot.config.ward import load_ward
from bot.knowledge.kb import KnowledgeBase
from bot.services import Services
from bot.storage.db import Database
from bot.storage.models import Citizen
from tests.support.appserver import AppServer
from tests.support.zalo_standin import APP_ID, OA_SECRET_KEY, ZaloStandIn

pytestmark = pytest.mark.integration
KB = KnowledgeBase(PROJECT_ROOT / "faq")
WARD = load_ward(PROJECT_ROOT / "settings" / "ward.yml")


def user() -> str:
    return str(uuid.uuid4().int)[:19]  # Zalo user ids are long digit strings


def event(name: str, user_id: str, message: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "app_id": APP_ID,
        "user_id_by_app": "app" + user_id,
        "event_name": name,
        "timestamp": str(int(time.time() * 1000)),
    }
    if name in {"follow", "unfollow"}:
        body |= {"oa_id": "1111", "follower": {"id": user_id}, "source": "oa_profile"}
    else:
        body |= {"sender": {"id": user_id}, "recipient": {"id": "1111"}}
        body["message"] = {"msg_id": uuid.uuid4().hex, **(message or {})}
    return body


def post(app: AppServer, payload: dict[str, Any], *, signature: str | None = "sign") -> httpx.Response:
    raw = json.dumps(payload, ensure_ascii=False).encode()
    headers = {"content-type": "application/json"}
    if signature == "sign":
        signature = signature_header(APP_ID, raw, payload["timestamp"], OA_SECRET_KEY)
    if signature is not None:
        headers["X-ZEvent-Signature"] = signature
    return httpx.post(f"{app.url}/zalo/webhook", content=raw, headers=headers, timeout=10)


def replies(zalo: ZaloStandIn, user_id: str, count: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
    found = zalo.wait_for(
        lambda: len(zalo.messages_to(user_id)) >= count and zalo.messages_to(user_id), timeout
    )
    assert found, f"no reply to {user_id} at the Zalo stand-in"
    return zalo.messages_to(user_id)


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return message.get("attachment", {}).get("payload", {}).get("buttons", [])


def test_signed_text_gets_a_reply_with_buttons_quoting_the_message(
    app: AppServer, zalo_standin: ZaloStandIn
) -> None:
    uid = user()
    payload = event("user_send_text", uid, {"text": "xin chào"})
    started = time.monotonic()
    response = post(app, payload)
    assert response.status_code == 200
    assert time.monotonic() - started < 1.5  # Zalo wants an answer within 2 s
    messages = replies(zalo_standin, uid)
    first = messages[0]
    assert WARD.name in first["text"]
    assert first["quote_message_id"] == payload["message"]["msg_id"]
    first_buttons = buttons(first)
    assert 1 <= len(first_buttons) <= 5
    assert all(b["type"] == "oa.query.hide" and b["payload"].startswith("/") for b in first_buttons)
    calls = zalo_standin.calls_for(uid)
    assert calls and all(c.headers.get("access_token") for c in calls)


def test_a_button_click_is_read_as_its_payload(app: AppServer, zalo_standin: ZaloStandIn) -> None:
    uid = user()
    post(app, event("user_send_text", uid, {"text": "bot làm được những gì"}))
    menu = replies(zalo_standin, uid)
    payload = buttons(menu[0])[0]["payload"]
    before = len(menu)
    post(app, event("user_send_text", uid, {"text": payload}))
    after = replies(zalo_standin, uid, before + 1)
    answer = after[before]["text"]
    assert answer and KB.message("out_of_scope", **WARD.placeholders()) not in answer


@pytest.mark.parametrize("signature", [None, "mac=" + "0" * 64, "forged"])
def test_forged_or_missing_signature_is_refused(
    app: AppServer, zalo_standin: ZaloStandIn, signature: str | None
) -> None:
    uid = user()
    payload = event("user_send_text", uid, {"text": "xin chào"})
    if signature == "forged":  # signed with another secret
        signature = signature_header(APP_ID, json.dumps(payload).encode(), payload["timestamp"], "wrong")
    assert post(app, payload, signature=signature).status_code == 401
    time.sleep(2)
    assert zalo_standin.calls_for(uid) == []


def test_malformed_json_is_a_400(app: AppServer) -> None:
    response = httpx.post(
        f"{app.url}/zalo/webhook", content=b"{not json", headers={"X-ZEvent-Signature": "mac=00"}
    )
    assert response.status_code == 400


def test_a_retried_delivery_is_processed_once(app: AppServer, zalo_standin: ZaloStandIn) -> None:
    uid = user()
    payload = event("user_send_text", uid, {"text": "giờ làm việc của phường"})
    assert post(app, payload).status_code == 200
    assert post(app, payload).status_code == 200
    replies(zalo_standin, uid)
    time.sleep(3)  # time for a second (wrong) processing to show up
    quoted = [m for m in zalo_standin.messages_to(uid) if m.get("quote_message_id")]
    assert len(quoted) == 1


def test_an_image_gets_a_clear_answer(app: AppServer, zalo_standin: ZaloStandIn) -> None:
    uid = user()
    attachment = {"type": "image", "payload": {"url": "https://example.invalid/a.jpg", "thumbnail": ""}}
    post(app, event("user_send_image", uid, {"attachments": [attachment]}))
    text = replies(zalo_standin, uid)[0]["text"]
    assert KB.messages["zalo_kinds"]["image"] in text
    assert "chữ" in text and WARD.phone in text


def test_follow_greets_and_unfollow_unsubscribes(
    app: AppServer, zalo_standin: ZaloStandIn, db: Database
) -> None:
    subscriptions = pytest.importorskip("bot.subscriptions.service")
    uid = user()
    assert post(app, event("follow", uid)).status_code == 200
    greeting = replies(zalo_standin, uid)
    assert WARD.name in greeting[0]["text"] and buttons(greeting[0])
    subscriptions.subscribe(db, "zalo", uid, "khoi-1", "Đồng ý nhận thông báo của phường")
    assert subscriptions.is_subscribed(db, "zalo", uid)
    sent = len(zalo_standin.calls_for(uid))
    assert post(app, event("unfollow", uid)).status_code == 200
    assert zalo_standin.wait_for(lambda: not subscriptions.is_subscribed(db, "zalo", uid), 15)
    assert len(zalo_standin.calls_for(uid)) == sent  # nothing is sent to someone who left


def test_an_expired_token_is_refreshed_stored_and_the_send_retried(
    app: AppServer, zalo_standin: ZaloStandIn, db: Database
) -> None:
    uid = user()
    refreshes = len(zalo_standin.refreshes())
    zalo_standin.expire_access_token()
    post(app, event("user_send_text", uid, {"text": "đăng ký tạm trú lệ phí bao nhiêu"}))
    replies(zalo_standin, uid)
    assert len(zalo_standin.refreshes()) == refreshes + 1
    refused = [c for c in zalo_standin.calls_for(uid) if c.answer.get("error") == -216]
    assert len(refused) == 1  # the first try, then the retry with the new token succeeded
    with db.session() as session:
        row = session.get(ZaloToken, 1)
        assert (row.access_token, row.refresh_token) == (
            zalo_standin.access_token,
            zalo_standin.refresh_token,
        )


def test_a_send_outside_the_48h_window_is_refused_and_recorded(
    app: AppServer, zalo_standin: ZaloStandIn, db: Database
) -> None:
    uid = user()
    post(app, event("user_send_text", uid, {"text": "xin chào"}))
    replies(zalo_standin, uid)
    with db.session() as session:
        citizen = session.scalar(select(Citizen).where(Citizen.channel == "zalo", Citizen.external_id == uid))
        citizen.last_message_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=49)
    calls = len(zalo_standin.calls_for(uid))

    settings = Settings(_env_file=None, DATABASE_URL=db.url, **zalo_standin.env())
    services = Services.build(settings)
    sender = ZaloSender(ZaloChannel(services))

    async def send() -> Any:
        try:
            return await sender.send(uid, {"text": "Nhắc lịch hẹn ngày mai", "buttons": []})
        finally:
            await sender.zalo.aclose()
            services.db.dispose()

    result = asyncio.run(send())
    assert (result.status, result.reason) == ("skipped", "outside 48h window")
    assert len(zalo_standin.calls_for(uid)) == calls
    with db.session() as session:
        refusal = session.scalar(select(ZaloRefusal).where(ZaloRefusal.external_id == uid))
        assert refusal is not None and refusal.reason == "outside 48h window"


def test_a_send_zalo_refuses_is_recorded_with_the_reason(
    app: AppServer, zalo_standin: ZaloStandIn, db: Database
) -> None:
    uid = user()
    zalo_standin.fail_with = -230
    try:
        post(app, event("user_send_text", uid, {"text": "xin chào"}))
        assert zalo_standin.wait_for(lambda: zalo_standin.calls_for(uid))
        query = select(ZaloRefusal.reason).where(ZaloRefusal.external_id == uid)

        def recorded() -> str | None:
            with db.session() as session:  # a new read each time (WAL snapshots)
                return session.scalar(query)

        reason = zalo_standin.wait_for(recorded, 15)
    finally:
        zalo_standin.fail_with = None
    assert reason == "zalo error -230"
    assert zalo_standin.messages_to(uid) == []  # nothing counted as sent
