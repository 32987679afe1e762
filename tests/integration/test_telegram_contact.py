"""Telegram: the booking form's phone question with a share-contact keyboard (stand-in Bot API,
real PTB polling in the app, real Rasa)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.config.settings import PROJECT_ROOT
from bot.knowledge.kb import KnowledgeBase
from tests.support.appserver import AppServer
from tests.support.telegram_standin import Call, TelegramStandIn, new_chat_id

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]
KB = KnowledgeBase(PROJECT_ROOT / "faq")
TG, BOOKING = KB.messages["telegram"], KB.messages["booking"]


@pytest.fixture(scope="module")
def tg(app: AppServer, telegram_standin: TelegramStandIn) -> TelegramStandIn:
    telegram_standin.wait_for("getUpdates", timeout=60)
    return telegram_standin


def has_inline(calls: list[Call]) -> bool:
    return any(c.keyboard for c in calls)


def last_with_buttons(tg: TelegramStandIn, chat: int) -> dict[str, Any]:
    """The last message sent to the chat with inline buttons (the stand-in stores it just after
    logging the call, so wait a moment for it)."""
    deadline = time.monotonic() + 5
    while True:
        sent = [m for m in list(tg.sent.values()) if m["chat"]["id"] == chat and inline(m)]
        if sent or time.monotonic() > deadline:
            return sent[-1]
        time.sleep(0.05)


def inline(message: dict[str, Any]) -> bool:
    return bool((message.get("reply_markup") or {}).get("inline_keyboard"))


def press_first(tg: TelegramStandIn, chat: int) -> list[Call]:
    """Press the first inline button of the last keyboard; the replies after the echo."""
    message = last_with_buttons(tg, chat)
    mark = tg.mark()
    tg.press(message, message["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
    return tg.wait_for(
        "sendMessage", chat, since=mark, until=lambda c: len(c) >= 2 and c[-1].text != c[0].text
    )


def test_the_phone_can_be_shared_as_a_contact_of_ones_own(tg: TelegramStandIn) -> None:
    chat = new_chat_id()
    mark = tg.mark()
    tg.message(chat, "cho tôi hẹn làm khai sinh")
    tg.wait_for("sendMessage", chat, since=mark, until=has_inline)  # the day buttons
    press_first(tg, chat)  # a day
    calls = press_first(tg, chat)  # a slot → the name question
    assert "họ và tên" in calls[-1].text

    mark = tg.mark()
    tg.message(chat, "Nguyễn Văn An")
    [ask] = tg.wait_for("sendMessage", chat, since=mark)
    assert "số điện thoại" in ask.text
    markup = ask.params["reply_markup"]
    assert markup["one_time_keyboard"] is True
    [[button]] = markup["keyboard"]
    assert button == {"text": BOOKING["share_contact_button"], "request_contact": True}

    mark = tg.mark()  # someone else's contact is refused, the question stays
    tg.message(chat, None, contact={"phone_number": "+84911111111", "first_name": "B", "user_id": chat + 1})
    [refused] = tg.wait_for("sendMessage", chat, since=mark)
    assert refused.text == TG["contact_not_own"]

    mark = tg.mark()  # their own: the phone answer (Telegram sends it without "+")
    tg.message(chat, None, contact={"phone_number": "84912345678", "first_name": "A", "user_id": chat})
    try:
        calls = tg.wait_for("sendMessage", chat, since=mark, until=has_inline)
    except TimeoutError:
        got = [(c.text, c.params.get("reply_markup"), c.status) for c in tg.calls[mark:]]
        raise AssertionError(repr(got)) from None
    assert calls[0].params["reply_markup"] == {"remove_keyboard": True}  # the keyboard goes away
    assert "đồng ý" in calls[0].text.lower()
    assert calls[-1].keyboard  # the consent buttons follow
    calls = press_first(tg, chat)  # "Đồng ý" → the summary to confirm
    assert "+84912345678" in calls[-1].text


def test_a_contact_outside_the_phone_question_is_only_acknowledged(tg: TelegramStandIn) -> None:
    chat = new_chat_id()
    mark = tg.mark()
    tg.message(chat, None, contact={"phone_number": "+84900000000", "first_name": "A", "user_id": chat})
    assert tg.wait_for("sendMessage", chat, since=mark)[0].text == TG["contact_received"]


def test_a_typed_phone_also_takes_the_keyboard_away_and_the_consent_buttons_follow(
    tg: TelegramStandIn,
) -> None:
    chat = new_chat_id()
    mark = tg.mark()
    tg.message(chat, "cho tôi hẹn làm khai sinh")
    tg.wait_for("sendMessage", chat, since=mark, until=has_inline)
    press_first(tg, chat)
    press_first(tg, chat)
    mark = tg.mark()
    tg.message(chat, "Trần Thị Bình")
    [ask] = tg.wait_for("sendMessage", chat, since=mark)
    assert ask.params["reply_markup"]["keyboard"][0][0]["request_contact"] is True

    mark = tg.mark()
    tg.message(chat, "0912 345 678")
    calls = tg.wait_for("sendMessage", chat, since=mark, until=has_inline)
    assert calls[0].params["reply_markup"] == {"remove_keyboard": True}
    assert calls[-1].keyboard  # "Đồng ý" / "Không đồng ý" as inline buttons
    calls = press_first(tg, chat)
    assert "+84912345678" in calls[-1].text and calls[-1].keyboard  # the summary, with confirm buttons
