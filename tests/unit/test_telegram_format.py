"""The Telegram channel's pure parts: splitting long text, keyboards, callback tokens, mentions."""

from __future__ import annotations

import datetime as dt

import pytest
from telegram import Chat, InlineKeyboardMarkup, Message, MessageEntity, User

from bot.channels.telegram.channel import addressed_to_bot, file_url, strip_mention
from bot.channels.telegram.format import (
    MAX_CALLBACK_DATA,
    CallbackStore,
    button_title,
    keyboard,
    outgoing,
    split_text,
    units,
)


def test_short_text_is_one_part() -> None:
    assert split_text("xin chào") == ["xin chào"]
    assert split_text("a" * 4096) == ["a" * 4096]


def test_long_text_splits_on_paragraphs_first() -> None:
    paragraphs = [f"Đoạn {i}: " + "thủ tục hành chính " * 30 for i in range(30)]
    text = "\n\n".join(paragraphs)
    parts = split_text(text, limit=1000)
    assert len(parts) > 1
    assert all(units(p) <= 1000 for p in parts)
    assert "\n\n".join(parts) == text  # nothing lost, cuts only between paragraphs
    assert all(p.startswith("Đoạn ") for p in parts)


def test_a_long_paragraph_splits_on_lines_then_hard() -> None:
    lines = "\n".join(f"• bước {i} " + "x" * 80 for i in range(40))
    parts = split_text(lines, limit=500)
    assert all(units(p) <= 500 for p in parts)
    assert "\n".join(parts) == lines
    word = "y" * 1200
    hard = split_text(word, limit=500)
    assert [len(p) for p in hard] == [500, 500, 200]
    spaced = split_text(("từ " * 600).strip(), limit=500)
    assert all(units(p) <= 500 and not p.startswith(" ") for p in spaced)
    assert " ".join(spaced) == ("từ " * 600).strip()


def test_emoji_count_two_units_and_are_never_cut_in_half() -> None:
    text = "😀" * 3000  # 6000 UTF-16 units
    parts = split_text(text)
    assert all(units(p) <= 4096 for p in parts)
    assert "".join(parts) == text


def test_keyboard_maps_buttons_one_per_row_and_keeps_short_payloads() -> None:
    store = CallbackStore()
    markup = keyboard(
        [
            {"title": "Lệ phí", "payload": '/khai_sinh{"aspect": "le_phi"}'},
            {"title": "Cổng DVC", "payload": "https://dichvucong.gov.vn"},
            {"title": "", "payload": "/help"},
        ],
        store,
    )
    assert isinstance(markup, InlineKeyboardMarkup)
    rows = markup.inline_keyboard
    assert len(rows) == 2 and all(len(r) == 1 for r in rows)
    assert rows[0][0].callback_data == '/khai_sinh{"aspect": "le_phi"}'
    assert rows[1][0].url == "https://dichvucong.gov.vn"
    assert keyboard([], store) is None


def test_long_payloads_travel_as_tokens_and_resolve_back() -> None:
    store = CallbackStore()
    payload = '/start_guide{"guide": "' + "đăng_ký_thường_trú_" * 4 + '"}'
    data = store.callback_data(payload)
    assert len(data.encode()) <= MAX_CALLBACK_DATA and data.startswith("t:")
    assert store.callback_data(payload) == data  # same payload, same token
    assert store.resolve(data) == payload
    assert store.resolve("t:forged") is None
    assert store.resolve("not a payload") is None
    assert store.resolve('/khai_sinh{"aspect": "le_phi"}') == '/khai_sinh{"aspect": "le_phi"}'


def test_tokens_expire_and_the_store_is_bounded() -> None:
    store = CallbackStore(max_entries=2, ttl=-1)
    token = store.put("/x" + "a" * 80)
    assert store.resolve(token) is None
    store = CallbackStore(max_entries=2)
    tokens = [store.put(f"/p{i}" + "a" * 80) for i in range(3)]
    assert store.resolve(tokens[0]) is None and store.resolve(tokens[2])


def test_outgoing_puts_the_keyboard_on_the_last_part_only() -> None:
    store = CallbackStore()
    text = "\n\n".join("đoạn " + "z" * 3000 for _ in range(3))
    parts = outgoing({"text": text, "buttons": [{"title": "Menu", "payload": "/help"}]}, store)
    assert len(parts) == 3
    assert [m is not None for _, m in parts] == [False, False, True]
    assert outgoing({"buttons": [{"title": "A", "payload": "/help"}]}, store, "Chọn:")[0][0] == "Chọn:"
    assert outgoing({}, store) == []


def test_button_title_is_found_on_the_pressed_message() -> None:
    markup = keyboard([{"title": "Làm thẻ căn cước", "payload": "/can_cuoc_cap_moi"}], CallbackStore())
    assert button_title(markup, "/can_cuoc_cap_moi") == "Làm thẻ căn cước"
    assert button_title(markup, "/other") is None
    assert button_title(None, "/x") is None


BOT_ID = 123456


def group_message(
    text: str, entities: list[MessageEntity] | None = None, reply_from: int | None = None
) -> Message:
    chat = Chat(-100, "supergroup")
    reply = None
    if reply_from is not None:
        reply = Message(1, dt.datetime.now(dt.UTC), chat, from_user=User(reply_from, "Bot", True), text="x")
    return Message(
        2,
        dt.datetime.now(dt.UTC),
        chat,
        from_user=User(7, "A", False),
        text=text,
        entities=entities,
        reply_to_message=reply,
    )


@pytest.mark.parametrize(
    ("message", "addressed"),
    [
        (group_message("hello mọi người"), False),
        (group_message("@phuong_bot làm căn cước", [MessageEntity("mention", 0, 11)]), True),
        (group_message("@other_bot hi", [MessageEntity("mention", 0, 10)]), False),
        (group_message("trả lời", reply_from=BOT_ID), True),
        (group_message("trả lời", reply_from=99), False),
    ],
)
def test_group_messages_must_address_the_bot(message: Message, addressed: bool) -> None:
    assert addressed_to_bot(message, BOT_ID, "phuong_bot") is addressed


def test_strip_mention_and_file_url() -> None:
    assert strip_mention("@Phuong_Bot làm căn cước", "phuong_bot") == "làm căn cước"
    assert strip_mention("@phuong_bot", "phuong_bot") == ""
    assert file_url("http://127.0.0.1:8081/bot") == "http://127.0.0.1:8081/file/bot"


async def test_sender_waits_for_the_channel_and_refuses_bad_ids() -> None:
    from bot.channels.telegram.sender import TelegramSender

    class FakeBot:
        def __init__(self) -> None:
            self.sent: list[tuple[int, str]] = []

        async def send_message(self, chat_id: int, text: str, reply_markup: object = None) -> None:
            self.sent.append((chat_id, text))

    bot = FakeBot()
    ready = False
    sender = TelegramSender(bot, is_ready=lambda: ready)  # type: ignore[arg-type]
    assert sender.channel == "telegram"
    assert (await sender.send("42", {"text": "nhắc lịch"})).status == "retry"
    ready = True
    assert (await sender.send("abc", {"text": "nhắc lịch"})).status == "failed"
    assert (await sender.send("42", {})).status == "skipped"
    assert (await sender.send("42", {"text": "nhắc lịch"})).status == "sent"
    assert bot.sent == [(42, "nhắc lịch")]
