"""Telegram end to end: stand-in Bot API → real PTB polling in the app → real Rasa → replies.

The session's app polls the stand-in (tests/support/telegram_standin.py); every
test uses its own chat id, so the tests do not see each other's messages.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from telegram.ext import ExtBot

from bot.channels.telegram.format import CallbackStore
from bot.channels.telegram.limits import ChannelRateLimiter
from bot.channels.telegram.sender import TelegramSender
from bot.config.settings import PROJECT_ROOT
from bot.config.ward import load_ward
from bot.knowledge.kb import KnowledgeBase
from bot.outbox.service import counts, enqueue_many
from bot.storage.db import Database
from bot.subscriptions.service import is_subscribed, subscribe
from tests.support.appserver import AppServer
from tests.support.telegram_standin import TelegramStandIn, new_chat_id

pytestmark = [
    pytest.mark.integration,
    # PTB 22 warns inside RetryAfter itself about its future timedelta type
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]
KB = KnowledgeBase(PROJECT_ROOT / "faq")
WARD = load_ward(PROJECT_ROOT / "settings" / "ward.yml")
TG = KB.messages["telegram"]


@pytest.fixture(scope="module")
def tg(app: AppServer, telegram_standin: TelegramStandIn) -> TelegramStandIn:
    """The stand-in, once the app's bot has started polling it."""
    telegram_standin.wait_for("setMyCommands", timeout=60)
    telegram_standin.wait_for("getUpdates", timeout=60)
    return telegram_standin


def replies(tg: TelegramStandIn, chat: int, since: int, count: int = 1, timeout: float = 30):
    return tg.wait_for("sendMessage", chat, since=since, count=count, timeout=timeout)


def test_commands_are_registered_in_vietnamese(tg: TelegramStandIn) -> None:
    commands = tg.calls_of("setMyCommands")[0].params["commands"]
    names = {c["command"]: c["description"] for c in commands}
    assert {"start", "menu", "help", "huy", "stop"} <= set(names)
    assert names["huy"] == TG["commands"]["huy"]


def test_start_greets_with_privacy_notice_and_menu(tg: TelegramStandIn, app: AppServer) -> None:
    chat, mark = new_chat_id(), tg.mark()
    tg.message(chat, "/start")
    reply = replies(tg, chat, mark)[0]
    assert WARD.name in reply.text
    assert KB.messages["privacy_notice"].strip()[:40] in reply.text
    payloads = [row[0]["callback_data"] for row in reply.keyboard]
    assert payloads == [item["payload"] for item in KB.messages["menu"]]
    with sqlite3.connect(app.var_dir / "ward.db") as conn:
        rows = conn.execute(
            "select count(*) from citizens where channel='telegram' and external_id=?", (str(chat),)
        ).fetchone()
    assert rows == (1,)


def test_question_is_answered_with_an_inline_keyboard(tg: TelegramStandIn) -> None:
    chat, mark = new_chat_id(), tg.mark()
    tg.message(chat, "làm giấy khai sinh cho con cần mang những giấy tờ gì")
    found = tg.wait_for("sendMessage", chat, since=mark, until=lambda calls: any(c.keyboard for c in calls))
    text = "\n".join(c.text for c in found)
    assert KB.procedures["khai_sinh"].aspects["ho_so"][:30] in text
    keyboard = next(c.keyboard for c in found if c.keyboard)
    assert all(len(b["callback_data"].encode()) <= 64 for row in keyboard for b in row)


def test_pressing_a_button_is_answered_and_echoed(tg: TelegramStandIn) -> None:
    chat, mark = new_chat_id(), tg.mark()
    tg.message(chat, "/menu")
    menu = replies(tg, chat, mark)[0]
    sent = next(m for m in tg.sent.values() if m["chat"]["id"] == chat)
    button = menu.keyboard[1][0]  # "Làm thẻ căn cước"
    mark = tg.mark()
    tg.press(sent, button["callback_data"])
    tg.wait_for("answerCallbackQuery", since=mark)
    found = replies(tg, chat, mark, count=2)
    assert found[0].text == f"▶ {button['text']}"
    assert "căn cước" in found[1].text.lower()


@pytest.mark.parametrize("data", ["t:forged-token", "/not_an_intent", "hello"])
def test_a_forged_or_stale_button_gets_a_clear_reply(tg: TelegramStandIn, data: str) -> None:
    chat, mark = new_chat_id(), tg.mark()
    tg.message(chat, "/menu")
    replies(tg, chat, mark)
    sent = next(m for m in tg.sent.values() if m["chat"]["id"] == chat)
    mark = tg.mark()
    tg.press(sent, data)
    assert replies(tg, chat, mark)[0].text == TG["button_expired"]
    assert tg.calls_of("answerCallbackQuery", since=mark)
    mark = tg.mark()
    tg.message(chat, "xin chào")  # the bot carries on
    assert WARD.name in replies(tg, chat, mark)[0].text


def test_media_get_the_text_only_reply_and_a_contact_is_acknowledged(tg: TelegramStandIn) -> None:
    chat = new_chat_id()
    photo = [{"file_id": "f1", "file_unique_id": "u1", "width": 90, "height": 90}]
    media = [
        {"photo": photo},
        {"sticker": {"file_id": "s", "file_unique_id": "s", "width": 1, "height": 1, "is_animated": False,
                     "is_video": False, "type": "regular"}},
        {"voice": {"file_id": "v", "file_unique_id": "v", "duration": 2}},
        {"location": {"latitude": 18.8, "longitude": 105.7}},
        {"document": {"file_id": "d", "file_unique_id": "d", "file_name": "cccd.pdf"}},
    ]  # fmt: skip
    for item in media:
        mark = tg.mark()
        tg.message(chat, None, **item)
        assert replies(tg, chat, mark)[0].text == TG["text_only"].strip()
    mark = tg.mark()
    tg.message(chat, None, contact={"phone_number": "+84900000000", "first_name": "A", "user_id": chat})
    assert replies(tg, chat, mark)[0].text == TG["contact_received"]


def test_in_a_group_only_mentions_and_replies_are_answered(tg: TelegramStandIn) -> None:
    group = -new_chat_id()
    mark = tg.mark()
    tg.message(group, "xin chào mọi người", from_id=77)
    tg.message(
        group, None, from_id=77, photo=[{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]
    )
    assert tg.quiet(group, 2.0, since=mark)
    tg.message(group, "xin chào", from_id=77, mention=True)
    reply = replies(tg, group, mark)[0]
    assert WARD.name in reply.text
    bot_message = next(m for m in tg.sent.values() if m["chat"]["id"] == group)
    mark = tg.mark()
    tg.message(group, "bộ phận một cửa mấy giờ mở cửa", from_id=78, reply_to=bot_message)
    assert replies(tg, group, mark)
    mark = tg.mark()
    tg.message(group, "/menu", from_id=79)
    assert replies(tg, group, mark)[0].text == TG["menu"]


def test_rate_limited_send_is_retried_after_retry_after(tg: TelegramStandIn) -> None:
    chat, mark = new_chat_id(), tg.mark()
    tg.fail_next("sendMessage", 1, retry_after=1)
    tg.message(chat, "/menu")
    ok = tg.wait_for("sendMessage", chat, since=mark, status=200)[0]
    refused = tg.calls_of("sendMessage", chat, since=mark)[0]
    assert refused.status == 429
    assert ok.at - refused.at >= 1.0
    assert ok.text == TG["menu"]


def test_an_update_that_fails_does_not_stop_the_bot(tg: TelegramStandIn, app: AppServer) -> None:
    chat, mark = new_chat_id(), tg.mark()
    tg.fail_next("sendMessage", 1, status=400, description="Bad Request: chat not found")
    tg.message(chat, "/menu")
    tg.wait_for("sendMessage", chat, since=mark, status=400)
    mark = tg.mark()
    tg.message(chat, "/menu")
    assert replies(tg, chat, mark)[0].text == TG["menu"]
    log = app.log_path.read_text(encoding="utf-8", errors="replace")
    assert "telegram update failed: BadRequest" in log
    # no message text or phone number in the app's log
    assert "khai sinh cho con" not in log and "+84900000000" not in log


def test_blocked_by_the_user_unsubscribes(tg: TelegramStandIn, db: Database) -> None:
    chat = new_chat_id()
    database = db
    subscribe(database, "telegram", str(chat), "Khối 1", "Đồng ý nhận thông báo")
    assert is_subscribed(database, "telegram", str(chat))
    tg.block(chat)
    mark = tg.mark()
    tg.message(chat, "xin chào")
    tg.wait_for("sendMessage", chat, since=mark, status=403)
    deadline = time.monotonic() + 10
    while is_subscribed(database, "telegram", str(chat)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not is_subscribed(database, "telegram", str(chat))


def test_kicked_from_a_chat_and_stop_command_unsubscribe(tg: TelegramStandIn, db: Database) -> None:
    database = db
    kicked, stopping = new_chat_id(), new_chat_id()
    for chat in (kicked, stopping):
        subscribe(database, "telegram", str(chat), "Khối 1", "Đồng ý nhận thông báo")
    tg.member_update(kicked, "kicked")
    mark = tg.mark()
    tg.message(stopping, "/stop")
    assert replies(tg, stopping, mark)[0].text == TG["unsubscribed"].strip()
    deadline = time.monotonic() + 10
    while is_subscribed(database, "telegram", str(kicked)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not is_subscribed(database, "telegram", str(kicked))
    assert not is_subscribed(database, "telegram", str(stopping))


def test_huy_leaves_the_current_flow(tg: TelegramStandIn) -> None:
    chat, mark = new_chat_id(), tg.mark()
    tg.message(chat, "tôi muốn đặt lịch hẹn")
    replies(tg, chat, mark)
    mark = tg.mark()
    tg.message(chat, "/huy")
    assert replies(tg, chat, mark)[0].text


def test_outbox_sender_splits_long_text_and_reports_refusals(tg: TelegramStandIn) -> None:
    """TelegramSender through the real PTB client and rate limiter against the stand-in."""

    async def run() -> list:
        bot = ExtBot(tg.token, base_url=tg.base_url, rate_limiter=ChannelRateLimiter(max_retries=0))
        async with bot:
            sender = TelegramSender(bot, None, CallbackStore())
            long_text = "\n\n".join(f"Mục {i}: " + "giấy tờ cần mang theo " * 40 for i in range(12))
            chat, blocked = new_chat_id(), new_chat_id()
            tg.block(blocked)
            mark = tg.mark()
            sent = await sender.send(
                str(chat), {"text": long_text, "buttons": [{"title": "Menu", "payload": "/help"}]}
            )
            parts = tg.calls_of("sendMessage", chat, since=mark)
            tg.fail_next("sendMessage", 1, retry_after=3)
            limited = await sender.send(str(chat), {"text": "nhắc lịch hẹn"})
            refused = await sender.send(str(blocked), {"text": "nhắc lịch hẹn"})
            return [sent, parts, long_text, limited, refused]

    sent, parts, long_text, limited, refused = asyncio.run(run())
    assert sent.status == "sent"
    assert len(parts) > 1 and all(p.status == 200 for p in parts)
    assert [bool(p.keyboard) for p in parts] == [False] * (len(parts) - 1) + [True]
    assert "\n\n".join(p.text for p in parts) == long_text.strip()
    assert (limited.status, limited.retry_after) == ("retry", 3.0)
    assert refused.status == "blocked"


def test_a_citizen_is_answered_while_a_broadcast_is_still_going_out(
    tg: TelegramStandIn, db: Database
) -> None:
    """Interactive replies do not queue behind the outbox: a citizen who writes while 300
    messages go out at the outbox's 25 a second is answered long before the last of them."""
    ref = f"broadcast-{new_chat_id()}"
    recipients = [("telegram", str(new_chat_id())) for _ in range(300)]
    enqueue_many(db, recipients, {"text": "Thông báo của phường", "buttons": []}, kind="notice", ref=ref)
    first = int(recipients[0][1])
    tg.wait_for("sendMessage", first, timeout=30)  # the broadcast has started

    chat, mark = new_chat_id(), tg.mark()
    started = time.monotonic()
    tg.message(chat, "làm căn cước cần giấy tờ gì")
    replies(tg, chat, mark, timeout=30)
    waited = time.monotonic() - started
    left = counts(db, "notice", ref)
    assert left["queued"] + left["sending"] >= 100, (waited, left)  # answered mid-broadcast
