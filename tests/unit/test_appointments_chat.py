"""Pieces of the appointment chat that need no Rasa: reading the request, marks, Telegram keyboards."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from telegram import InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove

from actions.appointments import ValidateRescheduleForm
from bot.appointments import service
from bot.appointments.dates import parse_when
from bot.appointments.models import Appointment
from bot.appointments.slots import Calendar
from bot.channels.telegram.format import CallbackStore, contact_request, outgoing
from bot.config.settings import PROJECT_ROOT
from bot.config.ward import load_ward
from bot.conversation.service import to_turn
from bot.storage.db import Database
from bot.storage.migrate import upgrade

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = dt.datetime(2026, 11, 28, 9, 0, tzinfo=TZ)  # a Saturday


def test_sang_is_the_preposition_when_the_rest_has_diacritics() -> None:
    assert parse_when("dời lịch sang thứ 6", NOW, TZ).part_of_day is None
    assert parse_when("đặt lịch sáng thứ 6", NOW, TZ).part_of_day == "sang"
    assert parse_when("dat lich sang thu 6", NOW, TZ).part_of_day == "sang"  # no diacritics: morning


@pytest.mark.parametrize(
    ("said", "read"),
    [
        ("doi lich sang thu 6", "doi lich thu 6"),
        ("dời hẹn qua chiều mai", "dời hẹn chiều mai"),
        ("sang thứ 2", "thứ 2"),
        ("đổi giờ hẹn sang 10h sáng", "đổi giờ hẹn 10h sáng"),
        ("sáng thứ 3", "sáng thứ 3"),
    ],
)
def test_moving_reads_sang_and_qua_as_to(said: str, read: str) -> None:
    assert ValidateRescheduleForm().when_text(said) == read


def test_marks_go_to_the_last_message_and_forget_to_the_turn() -> None:
    meta = {"topic": "appointment.book", "intent": {"name": "book_appointment", "confidence": 1.0}}
    raw = [
        {"text": "Số điện thoại?"},
        {"custom": {"meta": meta, "request_contact": "📱 Gửi số"}},
    ]
    turn = to_turn(raw)
    assert turn.messages == [{"text": "Số điện thoại?", "custom": {"request_contact": "📱 Gửi số"}}]
    assert turn.forget is False and "custom" not in str(turn.as_dict()["topic"])
    turn = to_turn([{"text": "Đã xóa"}, {"custom": {"meta": meta, "forget": True}}])
    assert turn.forget is True and turn.messages == [{"text": "Đã xóa"}]
    assert "forget" not in turn.as_dict()


def test_telegram_share_contact_keyboard_and_its_removal() -> None:
    store = CallbackStore()
    ask = {"text": "Số điện thoại?", "custom": {"request_contact": "📱 Gửi số"}}
    assert contact_request(ask) == "📱 Gửi số"
    [(text, markup)] = outgoing(ask, store)
    assert text == "Số điện thoại?" and isinstance(markup, ReplyKeyboardMarkup)
    assert markup.one_time_keyboard and markup.keyboard[0][0].request_contact
    assert markup.keyboard[0][0].text == "📱 Gửi số"

    plain = {"text": "Cảm ơn"}
    [(_, markup)] = outgoing(plain, store, remove_keyboard=True)
    assert isinstance(markup, ReplyKeyboardRemove)

    question = {"text": "Đồng ý không?", "buttons": [{"title": "Đồng ý", "payload": "/affirm"}]}
    parts = outgoing(question, store, "Anh/chị chọn:", remove_keyboard=True)
    assert [p[0] for p in parts] == ["Đồng ý không?", "Anh/chị chọn:"]
    assert isinstance(parts[0][1], ReplyKeyboardRemove) and isinstance(parts[1][1], InlineKeyboardMarkup)
    assert [type(m) for _, m in outgoing(question, store)] == [InlineKeyboardMarkup]  # unchanged otherwise


def test_attendance_is_recorded_for_the_owner_only_and_cleared_by_a_move(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ward.db'}"
    upgrade(url)
    db = Database(url)
    ward = load_ward(PROJECT_ROOT / "settings" / "ward.yml")
    calendar = Calendar(ward)
    now = dt.datetime(2026, 11, 27, 10, 0, tzinfo=ward.tz)
    slot = dt.datetime(2026, 11, 30, 9, 0, tzinfo=ward.tz)
    booking = service.book(
        db, calendar, channel="web", external_id="a", procedure="khai_sinh", start=slot, now=now
    )
    with pytest.raises(service.NotFound):
        service.confirm_attendance(db, "web", "b", booking.code, now)
    service.confirm_attendance(db, "web", "a", booking.code, now)
    with db.session() as session:
        assert session.get(Appointment, 1).confirmed_at is not None
    service.reschedule(db, calendar, "web", "a", booking.code, slot + dt.timedelta(hours=1), now)
    with db.session() as session:
        assert session.get(Appointment, 1).confirmed_at is None
    db.dispose()
