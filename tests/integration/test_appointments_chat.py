"""Appointments in the chat beyond booking: move, words read with the request, two failed
answers, reminders' buttons, "xóa dữ liệu của tôi" (real Rasa, through /api/chat)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest

from bot.appointments import reason_message, service
from bot.appointments.dates import parse_when
from bot.appointments.slots import Calendar
from bot.channels import web_inbox
from bot.guides import service as guides
from bot.knowledge.kb import fill
from bot.storage.db import Database, utcnow
from bot.subscriptions import service as subscriptions
from tests.support.appserver import AppServer
from tests.support.booking import (
    KB,
    PROCEDURE,
    TEXTS,
    WARD,
    book_by_chat,
    book_directly,
    free_days,
    reminder_message,
    reminders,
    row_by_code,
    rows,
)
from tests.support.chat import buttons, say, text_of, user

pytestmark = pytest.mark.integration
NOT_FOUND = reason_message("not_found", "", WARD.placeholders())
WEEKDAYS = TEXTS["weekdays"]


def text(key: str, **values: str) -> str:
    return fill(str(TEXTS[key]), {**WARD.placeholders(), **values}).strip()


def label(day: dt.date) -> str:
    return f"{WEEKDAYS[day.weekday()]} {day:%d/%m}"


# --- moving an appointment ----------------------------------------------------------------


def test_move_from_the_list_moves_the_appointment_and_its_reminders(app: AppServer, db: Database) -> None:
    sender = user()
    booked = book_by_chat(app, db, sender)
    old_refs = reminders(db, booked.code)
    assert old_refs and {status for status, _ in old_refs.values()} == {"queued"}

    body = say(app, sender, "lịch hẹn của tôi")
    listed = buttons(body)
    move = listed[f"Đổi lịch {booked.code}"]
    assert f"Hủy {booked.code}" in listed

    stranger = user()  # someone else's code: the same "not found" as cancel, no hint, nothing moved
    body = say(app, stranger, payload=move)
    assert body["topic"] == "appointment.reschedule" and text_of(body) == NOT_FOUND
    body = say(app, stranger, "lịch hẹn của tôi")  # the stranger's form is over
    assert body["topic"] == "appointment.list" and booked.code not in text_of(body)

    body = say(app, sender, "đổi lịch hẹn")  # one appointment: picked without asking
    assert body["topic"] == "appointment.reschedule"
    assert text("ask_date") in text_of(body)
    days = [
        title
        for title in buttons(body)
        if not title.endswith(f"{booked.slot_start.astimezone(WARD.tz):%d/%m}")
    ]
    body = say(app, sender, payload=buttons(body)[days[0]])
    assert body["topic"] == "appointment.reschedule"
    body = say(app, sender, payload=next(iter(buttons(body).values())))  # the first slot
    assert body["topic"] == "appointment.reschedule"
    assert "Giờ cũ" in text_of(body) and "Giờ mới" in text_of(body)
    body = say(app, sender, payload=buttons(body)["Xác nhận"])
    assert body["topic"] == "appointment.reschedule" and "Đã đổi lịch hẹn" in text_of(body)

    moved = row_by_code(db, booked.code)
    assert moved.status == "booked" and moved.slot_start != booked.slot_start
    assert moved.full_name == "Nguyễn Văn An"  # the same appointment, moved
    after = reminders(db, booked.code)
    assert {ref: after[ref][0] for ref in old_refs} == dict.fromkeys(old_refs, "cancelled")
    new = {ref: at for ref, (status, at) in after.items() if status == "queued"}
    assert new and all(ref.count(":") == 2 for ref in new)
    start = moved.slot_start.replace(tzinfo=dt.UTC) if moved.slot_start.tzinfo is None else moved.slot_start
    hours_before = [at for ref, at in new.items() if ":hours_before:" in ref]
    expected = start - dt.timedelta(hours=WARD.appointments.reminder_hours_before)
    assert [at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at for at in hours_before] == [expected]


def test_move_with_several_appointments_asks_which_and_reads_the_day_said(
    app: AppServer, db: Database
) -> None:
    sender = user()
    first, second = (book_directly(db, sender, day) for day in free_days(db, 2))
    body = say(app, sender, "dời lịch sang thứ 6")
    assert body["topic"] == "appointment.reschedule"
    assert set(buttons(body)) == {f"Đổi lịch {first.code}", f"Đổi lịch {second.code}"}
    body = say(app, sender, payload=buttons(body)[f"Đổi lịch {second.code}"])
    friday = parse_when("thứ 6", utcnow(), WARD.tz).date
    verdict = Calendar(WARD).check_day(PROCEDURE, friday, utcnow(), service.occupancy(db))
    if verdict.ok:  # "sang thứ 6" is "to Friday": Friday's slots, not only the morning's
        assert text("ask_time", day=label(friday)) in text_of(body), text_of(body)
    else:
        assert text("ask_date") in text_of(body)
    body = say(app, sender, "thôi")
    assert body["topic"] == "appointment.reschedule" and text("reschedule_stopped") in text_of(body)
    assert [r.slot_start for r in rows(db, sender)] == [first.slot_start, second.slot_start]


def test_a_typed_code_of_another_citizen_is_not_found(app: AppServer, db: Database) -> None:
    owner, other = user(), user()
    theirs = book_directly(db, owner, free_days(db, 1)[0])
    for day in free_days(db, 2):
        book_directly(db, other, day)
    body = say(app, other, "đổi giờ hẹn")
    assert body["topic"] == "appointment.reschedule" and f"Đổi lịch {theirs.code}" not in buttons(body)
    body = say(app, other, theirs.code.lower())
    assert NOT_FOUND in text_of(body) and theirs.code not in text_of(body).replace(NOT_FOUND, "")
    assert row_by_code(db, theirs.code).slot_start == theirs.slot_start


# --- words said with the request ---------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "procedure", "part"),
    [
        ("đặt lịch làm căn cước sáng thứ 5", "can_cuoc.cap_moi", "sang"),
        ("dat lich lam can cuoc sang thu 5", "can_cuoc.cap_moi", "sang"),
        ("đặt lịch khai sinh chiều thứ 2", "khai_sinh", "chieu"),
        ("dat lich khai sinh chieu thu 2", "khai_sinh", "chieu"),
        ("cho tôi hẹn làm khai sinh", "khai_sinh", None),
        ("cho toi hen lam khai sinh", "khai_sinh", None),
    ],
)
def test_the_request_gives_procedure_day_and_part_of_day(
    app: AppServer, db: Database, said: str, procedure: str, part: str | None
) -> None:
    sender = user()
    body = say(app, sender, said)
    assert body["topic"] == "appointment.book", text_of(body)
    assert text("ask_procedure") not in text_of(body)  # the procedure was understood
    now = utcnow()
    if part is None:  # no day said: the day question
        assert text("ask_date") in text_of(body)
        day = free_days(db, 1, procedure)[0]
        body = say(app, sender, payload=buttons(body)[label(day)])
    else:
        day = parse_when(said, now, WARD.tz).date
        assert day is not None
        calendar = Calendar(WARD)
        if not calendar.check_day(procedure, day, now, service.occupancy(db)).ok:
            assert text("ask_date") in text_of(body)  # the reason, then the day question
            pytest.skip(f"{day} cannot be booked today; the refusal was shown")
        slots = calendar.open_slots(day, procedure, now, service.occupancy(db))
        wanted = [f"{s.start:%H:%M}" for s in slots if (s.start.hour < 12) == (part == "sang")]
        if wanted:
            assert text(f"ask_time_{part}", day=label(day)) in text_of(body), text_of(body)
            assert list(buttons(body)) == wanted[:12]
    body = say(app, sender, payload=next(iter(buttons(body).values())))
    body = say(app, sender, "Trần Văn Bảo")
    body = say(app, sender, "0987 654 321")
    body = say(app, sender, payload=buttons(body)["Đồng ý"])
    assert f"Thủ tục: {KB.procedures[procedure].title}" in text_of(body)
    assert label(day) in text_of(body)
    say(app, sender, payload=buttons(body)["Hủy"])
    assert rows(db, sender) == []


# --- two failed answers -------------------------------------------------------------------


def test_two_failed_answers_explain_and_ask_whether_to_go_on(app: AppServer, db: Database) -> None:
    sender = user()
    say(app, sender, payload=f'/book_appointment{{"procedure": "{PROCEDURE}"}}')
    body = say(app, sender, "30/2")  # first failure: the reason and the question again
    assert "30/2 không có trên lịch" in text_of(body) and text("explain_booking_date") not in text_of(body)
    body = say(app, sender, "ngày 45")  # second failure: what is expected, then "go on?"
    assert text("explain_booking_date") in text_of(body) and text("ask_continue") in text_of(body)
    assert set(buttons(body)) == {"Tiếp tục", "Dừng lại"}
    body = say(app, sender, payload=buttons(body)["Tiếp tục"])
    assert text("ask_date") in text_of(body) and buttons(body)  # the same question, from zero
    body = say(app, sender, "30/2")
    assert text("ask_continue") not in text_of(body)  # counting started again
    body = say(app, sender, "31/4")
    assert text("ask_continue") in text_of(body)
    body = say(app, sender, payload=buttons(body)["Dừng lại"])
    assert body["topic"] == "appointment.book" and text("stopped") in text_of(body)
    assert rows(db, sender) == []
    body = say(app, sender, "lịch hẹn của tôi")  # the form is over
    assert body["topic"] == "appointment.list"


def test_failures_on_the_phone_are_explained_too(app: AppServer, db: Database) -> None:
    sender = user()
    say(app, sender, payload=f'/book_appointment{{"procedure": "{PROCEDURE}"}}')
    body = say(app, sender, f"{free_days(db)[-1]:%d/%m}")
    body = say(app, sender, payload=next(iter(buttons(body).values())))
    say(app, sender, "Lê Thị Hoa")
    body = say(app, sender, "12345")
    assert text("explain_phone") not in text_of(body)
    body = say(app, sender, "999")
    assert text("explain_phone") in text_of(body) and text("ask_continue") in text_of(body)
    body = say(app, sender, payload=buttons(body)["Tiếp tục"])
    assert "số điện thoại" in text_of(body)
    body = say(app, sender, "0912 345 678")
    assert "đồng ý" in text_of(body).lower()


# --- reminders' buttons -------------------------------------------------------------------


def test_reminders_carry_confirm_move_and_cancel_and_confirm_is_answered(
    app: AppServer, db: Database
) -> None:
    sender = user()
    booked = book_by_chat(app, db, sender)
    message = reminder_message(db, booked.code)
    payloads = {b["title"]: b["payload"] for b in message["buttons"]}
    assert payloads == {
        "Tôi sẽ đến": f'/confirm_appointment{{"code": "{booked.code}"}}',
        f"Đổi lịch {booked.code}": f'/reschedule_appointment{{"code": "{booked.code}"}}',
        f"Hủy {booked.code}": f'/cancel_appointment{{"code": "{booked.code}"}}',
    }
    body = say(app, user(), payload=payloads["Tôi sẽ đến"])  # someone else's: not found
    assert text_of(body) == NOT_FOUND and row_by_code(db, booked.code).confirmed_at is None
    body = say(app, sender, payload=payloads["Tôi sẽ đến"])
    assert body["topic"] == "appointment.list"
    assert booked.code in text_of(body) and "Cảm ơn anh/chị đã xác nhận" in text_of(body)
    assert row_by_code(db, booked.code).confirmed_at is not None  # recorded
    body = say(app, sender, "tôi sẽ đến đúng hẹn")  # typed, one appointment: the same answer
    assert "Cảm ơn anh/chị đã xác nhận" in text_of(body)


# --- xóa dữ liệu của tôi ------------------------------------------------------------------


def tracker_texts(app: AppServer, sender: str) -> list[str]:
    with sqlite3.connect(app.var_dir / "rasa-tracker.db") as connection:
        rows_ = connection.execute("SELECT data FROM events WHERE sender_id = ?", (f"web:{sender}",))
        return [json.dumps(json.loads(row[0]), ensure_ascii=False) for row in rows_]


def test_delete_my_data_explains_asks_and_deletes(app: AppServer, db: Database) -> None:
    sender = user()
    booked = book_by_chat(app, db, sender)
    subscriptions.subscribe(db, "web", sender, "khoi_2", "đồng ý nhận tin")
    subscriptions.add_tag(db, "web", sender, "vneid_muc2", "chat")
    guides.save_step(db, "web", sender, "tam_tru_online", 2, 6)
    web_inbox.store(db, sender, {"text": f"Nhắc lịch hẹn {booked.code}", "buttons": []})  # page closed

    body = say(app, sender, "xóa dữ liệu của tôi")
    assert body["topic"] == "privacy.delete" and "lịch sử trò chuyện" in text_of(body)
    body = say(app, sender, payload=buttons(body)["Không xóa"])
    assert body["topic"] == "privacy.delete" and KB.messages["privacy"]["kept"] in text_of(body)
    assert rows(db, sender)[0].full_name == "Nguyễn Văn An"
    assert subscriptions.is_subscribed(db, "web", sender)

    body = say(app, sender, "xoa du lieu cua toi")
    assert body["topic"] == "privacy.delete"
    assert any("Nguyễn Văn An" in data for data in tracker_texts(app, sender))
    body = say(app, sender, payload=buttons(body)["Xóa dữ liệu"])
    assert body["topic"] == "privacy.delete" and KB.messages["privacy"]["deleted"] in text_of(body)

    assert rows(db, sender) == []  # no appointment is attached to this chat any more
    gone = row_by_code(db, booked.code)
    assert gone.status == "cancelled" and gone.full_name is None and gone.phone is None
    assert {status for status, _ in reminders(db, booked.code).values()} == {"cancelled"}
    assert subscriptions.subscription(db, "web", sender) is None
    assert subscriptions.tags(db, "web", sender) == set()
    assert guides.get_progress(db, "web", sender, "tam_tru_online") is None
    assert web_inbox.take(db, sender) == []
    assert tracker_texts(app, sender) == []  # Rasa's history of the conversation is gone

    body = say(app, sender, "xin chào")  # the conversation starts afresh
    assert body["topic"] == "greet"
    assert not any("Nguyễn Văn An" in data for data in tracker_texts(app, sender))


def test_a_part_of_day_typed_for_the_slot_narrows_the_buttons(app: AppServer, db: Database) -> None:
    sender = user()
    say(app, sender, payload=f'/book_appointment{{"procedure": "{PROCEDURE}"}}')
    day = next(d for d in free_days(db, 6) if d.weekday() < 5)  # a day with an afternoon
    body = say(app, sender, f"{day:%d/%m}")
    assert text("ask_time", day=label(day)) in text_of(body)
    body = say(app, sender, "chiều")
    slots = Calendar(WARD).open_slots(day, PROCEDURE, utcnow(), service.occupancy(db))
    afternoon = [f"{s.start:%H:%M}" for s in slots if s.start.hour >= 12]
    assert text("ask_time_chieu", day=label(day)) in text_of(body), text_of(body)
    assert list(buttons(body)) == afternoon[:12]
    body = say(app, sender, "sáng")
    assert text("ask_time_sang", day=label(day)) in text_of(body)
    assert all(int(title[:2]) < 12 for title in buttons(body))
    assert text("ask_continue") not in text_of(body)  # narrowing is not a failed answer
