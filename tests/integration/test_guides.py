"""Step-by-step guides through the real product: /api/chat → Rasa (rules, slots) → actions → database."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config.settings import PROJECT_ROOT
from bot.guides import service
from bot.knowledge.kb import KnowledgeBase
from bot.storage.db import Database
from bot.subscriptions.service import tags
from tests.support.appserver import AppServer
from tests.support.chat import say, user

pytestmark = pytest.mark.integration
KB = KnowledgeBase(PROJECT_ROOT / "faq")
GUIDE = KB.guides["vneid_kich_hoat_muc2"]
TOTAL = len(GUIDE.steps)
START = '/start_guide{"procedure": "vneid.kich_hoat_muc2"}'
NAV = ["◀ Quay lại", "Tiếp ▶", "Lặp lại", "Tôi bị lỗi ở bước này"]


def last(body: dict[str, Any]) -> dict[str, Any]:
    return body["messages"][-1]


def titles(message: dict[str, Any]) -> list[str]:
    return [b["title"] for b in message.get("buttons") or []]


def assert_step(body: dict[str, Any], step: int) -> None:
    assert last(body)["text"].startswith(f"Bước {step}/{TOTAL}: "), last(body)["text"][:80]


def test_a_whole_guide_typed_and_clicked(app: AppServer, db: Database) -> None:
    sender = user()
    body = say(app, sender, "hướng dẫn từng bước kích hoạt định danh mức 2")
    assert body["topic"] == "guide.start" and body["intent"]["name"] == "start_guide"
    assert_step(body, 1)
    assert titles(last(body)) == NAV

    body = say(app, sender, "tiếp")
    assert body["topic"] == "vneid.kich_hoat_muc2"
    assert_step(body, 2)
    body = say(app, sender, payload="/guide_next")
    assert_step(body, 3)
    body = say(app, sender, "quay lại")
    assert body["topic"] == "vneid.kich_hoat_muc2"
    assert_step(body, 2)
    body = say(app, sender, "nhắc lại")
    assert_step(body, 2)
    body = say(app, sender, "tôi bị lỗi ở bước này")
    assert body["topic"] == "vneid.kich_hoat_muc2"
    assert GUIDE.steps[1].problems.strip()[:40] in body["messages"][0]["text"]
    body = say(app, sender, "bước 3")
    assert body["topic"] == "vneid.kich_hoat_muc2"
    assert_step(body, 3)
    assert service.get_progress(db, "web", sender, GUIDE.id).step == 3

    for step in range(4, TOTAL + 1):
        assert_step(say(app, sender, payload="/guide_next"), step)
    body = say(app, sender, payload="/guide_repeat")
    assert titles(last(body))[1] == "Xong ✓"
    body = say(app, sender, "xong")
    assert body["topic"] == "vneid.kich_hoat_muc2"
    assert GUIDE.done.strip()[:40] in body["messages"][0]["text"]

    progress = service.get_progress(db, "web", sender, GUIDE.id)
    assert not progress.in_progress and progress.completed_at is not None and progress.times_completed == 1
    assert "vneid_muc2" in tags(db, "web", sender)
    # the guide is over: flow-control words go back to the general menu
    assert say(app, sender, "tiếp")["topic"] == "help"


def test_flow_control_outside_a_guide_gets_the_menu(app: AppServer) -> None:
    body = say(app, user(), "quay lại")
    assert body["topic"] == "help" and len(titles(last(body))) >= 4


def test_a_question_mid_guide_is_answered_then_the_guide_resumes(app: AppServer) -> None:
    sender = user()
    say(app, sender, payload=START)
    assert_step(say(app, sender, "tiếp"), 2)
    body = say(app, sender, "làm giấy khai sinh cho con cần mang những giấy tờ gì")
    assert body["topic"] == "khai_sinh.ho_so"
    assert KB.procedures["khai_sinh"].aspects["ho_so"][:30] in body["messages"][0]["text"]
    assert titles(last(body)) == ["Tiếp tục hướng dẫn"] and "bước 2/" in last(body)["text"]
    body = say(app, sender, payload=last(body)["buttons"][0]["payload"])
    assert body["topic"] == "vneid.kich_hoat_muc2"
    assert_step(body, 2)
    assert_step(say(app, sender, "tiếp"), 3)


def test_resume_is_offered_on_greet_after_stopping(app: AppServer) -> None:
    sender = user()
    say(app, sender, payload=START)
    say(app, sender, payload="/guide_next")
    say(app, sender, payload="/guide_next")
    body = say(app, sender, "thôi")
    assert body["topic"] == "vneid.kich_hoat_muc2" and f"bước 3/{TOTAL}" in body["messages"][0]["text"]
    assert say(app, sender, "tiếp")["topic"] == "help"  # no guide running any more

    body = say(app, sender, "xin chào")
    assert body["topic"] == "greet"
    assert f"bước 3/{TOTAL}" in last(body)["text"] and titles(last(body)) == ["Tiếp tục hướng dẫn"]
    body = say(app, sender, payload=last(body)["buttons"][0]["payload"])
    assert body["topic"] == "guide.start"
    assert_step(body, 3)
    assert_step(say(app, sender, "tiếp"), 4)


def test_resume_is_offered_in_a_new_session_days_later(app: AppServer, db: Database) -> None:
    """Progress saved in an earlier session (no Rasa conversation for it now) is offered back."""
    sender = user()
    service.save_step(db, "web", sender, GUIDE.id, 5, TOTAL)
    body = say(app, sender, "hướng dẫn từng bước")
    assert body["topic"] == "guide.start"
    assert f"bước 5/{TOTAL}" in body["messages"][0]["text"]
    assert titles(body["messages"][0])[0] == "Tiếp tục hướng dẫn"
    assert len(titles(body["messages"][0])) == 1 + len(KB.guides)
    body = say(app, sender, payload=body["messages"][0]["buttons"][0]["payload"])
    assert_step(body, 5)
    body = say(app, sender, payload='/guide_next{"step": "1"}')  # "Làm lại từ đầu"
    assert_step(body, 1)


def test_self_report_of_vneid_level_2_is_stored_as_a_tag(app: AppServer, db: Database) -> None:
    sender = user()
    body = say(app, sender, "đã kích hoạt xong")
    assert body["topic"] == "vneid.kich_hoat_muc2"
    assert tags(db, "web", sender) == {"vneid_muc2"}
