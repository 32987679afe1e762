"""A whole step-by-step guide on Telegram (issue 4): the stand-in Bot API → real PTB polling in
the session's app → real Rasa → guide actions, driven with the inline buttons the bot sent
(Tiếp ▶, ◀ Quay lại, Lặp lại, Tôi bị lỗi ở bước này), a typed "bước 3", a question in the middle
(answered, the guide offered back) and the end (Xong ✓)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config.settings import PROJECT_ROOT
from bot.guides import service
from bot.knowledge.kb import KnowledgeBase
from bot.storage.db import Database
from tests.support.appserver import AppServer
from tests.support.telegram_standin import Call, TelegramStandIn, new_chat_id

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]
KB = KnowledgeBase(PROJECT_ROOT / "faq")
GUIDE = KB.guides["vneid_kich_hoat_muc2"]
TOTAL = len(GUIDE.steps)
NAV = ["◀ Quay lại", "Tiếp ▶", "Lặp lại", "Tôi bị lỗi ở bước này"]


@pytest.fixture(scope="module")
def tg(app: AppServer, telegram_standin: TelegramStandIn) -> TelegramStandIn:
    """The stand-in, once the app's bot has started polling it."""
    telegram_standin.wait_for("setMyCommands", timeout=60)
    telegram_standin.wait_for("getUpdates", timeout=60)
    return telegram_standin


def titles(call: Call) -> list[str]:
    return [button["text"] for row in call.keyboard for button in row]


def keyboard_reply(tg: TelegramStandIn, chat: int, since: int) -> list[Call]:
    """The bot's messages after `since`, up to its next message with an inline keyboard."""
    found = tg.wait_for(
        "sendMessage", chat, since=since, until=lambda calls: any(c.keyboard for c in calls), timeout=45
    )
    return found[: next(i for i, c in enumerate(found) if c.keyboard) + 1]


def typed(tg: TelegramStandIn, chat: int, text: str) -> list[Call]:
    mark = tg.mark()
    tg.message(chat, text)
    return keyboard_reply(tg, chat, mark)


def pressed(tg: TelegramStandIn, chat: int, title: str) -> list[Call]:
    """Press the button `title` of the bot's newest message to the chat that has one; the press is
    answered (answerCallbackQuery for that query) and echoed ("▶ title") before the reply."""
    message, data = newest_button(tg, chat, title)
    mark = tg.mark()
    update = tg.press(message, data)
    found = keyboard_reply(tg, chat, mark)
    answers = tg.wait_for("answerCallbackQuery", since=mark)
    assert update["callback_query"]["id"] in [c.params.get("callback_query_id") for c in answers]
    assert found[0].text == f"▶ {title}"
    return found[1:]


def newest_button(tg: TelegramStandIn, chat: int, title: str) -> tuple[dict[str, Any], str]:
    for message in sorted(tg.sent.values(), key=lambda m: -m["message_id"]):
        if message["chat"]["id"] != chat:
            continue
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
            for button in row:
                if button["text"] == title:
                    assert len(button["callback_data"].encode()) <= 64
                    return message, button["callback_data"]
    raise AssertionError(f"no button {title!r} in the chat")


def assert_step(calls: list[Call], step: int, buttons: list[str] | None = None) -> None:
    """The last message is step `step` ("Bước k/n: …", the step's text) with the guide's buttons."""
    last = calls[-1]
    assert last.text.startswith(f"Bước {step}/{TOTAL}: "), last.text[:80]
    assert GUIDE.steps[step - 1].text.strip()[:40] in last.text
    if buttons is not None:
        assert titles(last) == buttons


def test_a_whole_guide_with_inline_buttons(tg: TelegramStandIn, db: Database) -> None:
    chat = new_chat_id()
    calls = typed(tg, chat, "hướng dẫn từng bước kích hoạt định danh mức 2")
    assert_step(calls, 1, NAV)

    assert_step(pressed(tg, chat, "Tiếp ▶"), 2, NAV)
    assert_step(pressed(tg, chat, "Tiếp ▶"), 3, NAV)
    assert_step(pressed(tg, chat, "◀ Quay lại"), 2, NAV)
    assert_step(pressed(tg, chat, "Lặp lại"), 2, NAV)

    calls = pressed(tg, chat, "Tôi bị lỗi ở bước này")
    text = "\n".join(c.text for c in calls)
    assert GUIDE.steps[1].problems.strip()[:40] in text  # step 2's problems and fixes
    assert "Tôi bị lỗi ở bước này" not in titles(calls[-1]) and "Tiếp ▶" in titles(calls[-1])

    assert_step(typed(tg, chat, "bước 3"), 3, NAV)
    assert service.get_progress(db, "telegram", str(chat), GUIDE.id).step == 3

    # a question in the middle: answered, then the guide is offered back at its step
    mark = tg.mark()
    tg.message(chat, "làm giấy khai sinh cho con cần mang những giấy tờ gì")
    calls = tg.wait_for(  # the answer (with its own buttons), then the offer to resume, last
        "sendMessage",
        chat,
        since=mark,
        until=lambda found: bool(found) and "Tiếp tục hướng dẫn" in titles(found[-1]),
        timeout=45,
    )
    text = "\n".join(c.text for c in calls)
    assert KB.procedures["khai_sinh"].aspects["ho_so"][:30] in text
    assert titles(calls[-1]) == ["Tiếp tục hướng dẫn"] and f"bước 3/{TOTAL}" in calls[-1].text
    assert_step(pressed(tg, chat, "Tiếp tục hướng dẫn"), 3, NAV)

    for step in range(4, TOTAL + 1):
        calls = pressed(tg, chat, "Tiếp ▶")
        assert_step(calls, step)
    assert titles(calls[-1])[1] == "Xong ✓"  # the last step: "Xong ✓" instead of "Tiếp ▶"
    assert "Tiếp ▶" not in titles(calls[-1])

    mark = tg.mark()
    message, data = newest_button(tg, chat, "Xong ✓")
    tg.press(message, data)
    found = tg.wait_for(
        "sendMessage",
        chat,
        since=mark,
        until=lambda calls: GUIDE.done.strip()[:40] in "\n".join(c.text for c in calls),
        timeout=45,
    )
    assert found[0].text == "▶ Xong ✓"
    assert tg.calls_of("answerCallbackQuery", since=mark)
    progress = service.get_progress(db, "telegram", str(chat), GUIDE.id)
    assert not progress.in_progress and progress.completed_at is not None and progress.times_completed == 1
