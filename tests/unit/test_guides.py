"""Guide progress service, and the guide/subscription actions run against a tracker (no Rasa)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import answers, guides, subscriptions
from bot.config.settings import PROJECT_ROOT, Settings
from bot.config.ward import load_ward
from bot.guides import service
from bot.knowledge.kb import KnowledgeBase
from bot.services import Services, set_services
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.subscriptions import service as subs

GUIDE = "vneid_kich_hoat_muc2"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'ward.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


@pytest.fixture
def services(db: Database) -> Iterator[Services]:
    built = Services(
        settings=Settings(),
        ward=load_ward(PROJECT_ROOT / "settings" / "ward.yml"),
        kb=KnowledgeBase(PROJECT_ROOT / "faq"),
        db=db,
    )
    set_services(built)
    yield built
    set_services(None)


# --- service -------------------------------------------------------------


def test_progress_is_saved_and_unfinished_guides_listed_newest_first(db: Database) -> None:
    service.save_step(db, "web", "u", GUIDE, 1, 8)
    service.save_step(db, "web", "u", "tam_tru_online", 2, 6)
    service.save_step(db, "web", "u", GUIDE, 4, 8)
    progress = service.get_progress(db, "web", "u", GUIDE)
    assert (progress.step, progress.total_steps, progress.in_progress) == (4, 8, True)
    assert [p.guide_id for p in service.unfinished(db, "web", "u")] == [GUIDE, "tam_tru_online"]
    assert service.unfinished(db, "telegram", "u") == []


def test_completion_is_recorded_with_its_tag_and_survives_a_restart(db: Database) -> None:
    service.save_step(db, "web", "u", GUIDE, 8, 8)
    service.complete(db, "web", "u", GUIDE, 8, "vneid_muc2")
    done = service.get_progress(db, "web", "u", GUIDE)
    assert not done.in_progress and done.completed_at is not None and done.times_completed == 1
    assert subs.tags(db, "web", "u") == {"vneid_muc2"}
    assert service.unfinished(db, "web", "u") == []
    service.save_step(db, "web", "u", GUIDE, 1, 8)
    again = service.get_progress(db, "web", "u", GUIDE)
    assert again.in_progress and again.step == 1
    assert again.completed_at == done.completed_at and again.times_completed == 1


# --- actions -------------------------------------------------------------


class Conversation:
    """Runs our custom actions the way Rasa would, keeping the slots between turns."""

    def __init__(self, sender: str = "web:tester") -> None:
        self.sender = sender
        self.slots: dict[str, Any] = {}

    def run(
        self, action: Any, intent: str, text: str = "", entities: list[dict[str, Any]] | None = None
    ) -> tuple[str, list[dict[str, Any]]]:
        tracker = Tracker(
            sender_id=self.sender,
            slots=dict(self.slots),
            latest_message={
                "text": text,
                "intent": {"name": intent, "confidence": 0.99},
                "intent_ranking": [{"name": intent, "confidence": 0.99}],
                "entities": entities or [],
            },
            events=[],
            paused=False,
            followup_action=None,
            active_loop={},
            latest_action_name="action_listen",
        )
        dispatcher = CollectingDispatcher()
        events = asyncio.run(action.run(dispatcher, tracker, {}))
        for event in events:
            if event.get("event") == "slot":
                self.slots[event["name"]] = event["value"]
        *messages, meta = dispatcher.messages
        assert "meta" in meta["custom"], "every reply ends with the meta message"
        return meta["custom"]["meta"]["topic"], messages


def titles(message: dict[str, Any]) -> list[str]:
    return [b["title"] for b in message.get("buttons") or []]


def test_a_whole_guide_with_back_repeat_problem_jump_and_finish(services: Services) -> None:
    guide = services.kb.guides[GUIDE]
    total = len(guide.steps)
    chat = Conversation()
    topic, messages = chat.run(
        guides.ActionStartGuide(),
        "start_guide",
        entities=[{"entity": "procedure", "value": "vneid.kich_hoat_muc2"}],
    )
    assert topic == "guide.start"
    assert messages[-1]["text"].startswith(f"Bước 1/{total}: ")
    assert titles(messages[-1]) == ["◀ Quay lại", "Tiếp ▶", "Lặp lại", "Tôi bị lỗi ở bước này"]
    assert chat.slots == {"active_guide": GUIDE, "guide_step": 1}

    topic, messages = chat.run(guides.ActionGuideNext(), "guide_next", "tiếp")
    assert topic == "vneid.kich_hoat_muc2" and messages[-1]["text"].startswith(f"Bước 2/{total}: ")
    _, messages = chat.run(guides.ActionGuideBack(), "guide_back", "quay lại")
    assert messages[-1]["text"].startswith(f"Bước 1/{total}: ")
    _, messages = chat.run(guides.ActionGuideBack(), "guide_back", "quay lại")
    assert messages[0]["text"] == services.kb.messages["guides"]["first_step"]
    _, messages = chat.run(guides.ActionGuideRepeat(), "guide_repeat", "nhắc lại")
    assert messages[-1]["text"].startswith(f"Bước 1/{total}: ")
    _, messages = chat.run(guides.ActionGuideNext(), "guide_next", "bước ba")
    assert messages[-1]["text"].startswith(f"Bước 3/{total}: ")
    _, messages = chat.run(
        guides.ActionGuideNext(), "guide_next", "bước 5", [{"entity": "step", "value": "5"}]
    )
    assert messages[-1]["text"].startswith(f"Bước 5/{total}: ")
    _, messages = chat.run(guides.ActionGuideNext(), "guide_next", "bước 40")
    assert f"có {total} bước" in messages[0]["text"] and messages[-1]["text"].startswith(f"Bước 5/{total}")
    topic, messages = chat.run(guides.ActionGuideProblem(), "guide_problem", "bị lỗi")
    assert topic == "vneid.kich_hoat_muc2"
    assert guide.steps[4].problems.strip()[:40] in messages[0]["text"]
    assert service.get_progress(services.db, "web", "tester", GUIDE).step == 5

    _, messages = chat.run(guides.ActionGuideNext(), "guide_next", f"bước {total}")
    assert titles(messages[-1])[1] == "Xong ✓"
    topic, messages = chat.run(guides.ActionGuideNext(), "guide_next", "xong")
    assert topic == "vneid.kich_hoat_muc2" and guide.done.strip()[:40] in messages[0]["text"]
    assert chat.slots == {"active_guide": None, "guide_step": None}
    assert not service.get_progress(services.db, "web", "tester", GUIDE).in_progress
    assert subs.tags(services.db, "web", "tester") == {"vneid_muc2"}


def test_picker_resume_offer_on_greet_and_resume(services: Services) -> None:
    chat = Conversation("telegram:42")
    topic, messages = chat.run(guides.ActionStartGuide(), "start_guide", "hướng dẫn từng bước")
    assert topic == "guide.start" and len(titles(messages[0])) == len(services.kb.guides)
    chat.run(guides.ActionStartGuide(), "start_guide", entities=[{"entity": "procedure", "value": "tam_tru"}])
    chat.run(guides.ActionGuideNext(), "guide_next", "tiếp")
    chat.run(guides.ActionGuideNext(), "guide_next", "tiếp")
    _, messages = chat.run(guides.ActionGuideStop(), "stop", "thôi")
    assert "bước 3/" in messages[0]["text"] and chat.slots["active_guide"] is None

    later = Conversation("telegram:42")  # days later: a new session, no slots
    topic, messages = later.run(answers.ActionGreet(), "greet", "chào")
    assert topic == "greet"
    assert "bước 3/" in messages[-1]["text"]
    payload = messages[-1]["buttons"][0]["payload"]
    assert payload == '/start_guide{"procedure": "tam_tru"}'
    _, messages = later.run(guides.ActionStartGuide(), "start_guide", "hướng dẫn")
    assert titles(messages[0])[0] == "Tiếp tục hướng dẫn"
    topic, messages = later.run(
        guides.ActionStartGuide(), "start_guide", entities=[{"entity": "procedure", "value": "tam_tru"}]
    )
    assert topic == "guide.start" and re.match(r"Bước 3/\d+: ", messages[-1]["text"])
    assert later.slots == {"active_guide": "tam_tru_online", "guide_step": 3}


def test_a_question_mid_guide_is_answered_and_the_guide_offered_back(services: Services) -> None:
    chat = Conversation()
    chat.run(guides.ActionStartGuide(), "start_guide", entities=[{"entity": "procedure", "value": GUIDE}])
    chat.run(guides.ActionGuideNext(), "guide_next", "tiếp")
    topic, messages = chat.run(guides.ActionAnswerInGuide(), "khai_sinh", "khai sinh cần gì")
    assert topic == "khai_sinh"
    assert messages[0]["text"].startswith("ĐĂNG KÝ KHAI SINH") or "KHAI SINH" in messages[0]["text"]
    assert titles(messages[-1]) == ["Tiếp tục hướng dẫn"] and "bước 2/" in messages[-1]["text"]
    assert chat.slots["active_guide"] == GUIDE


def test_report_done_outside_a_guide_tags_vneid_level_2(services: Services) -> None:
    chat = Conversation("zalo:99")
    topic, _ = chat.run(guides.ActionReportDone(), "report_done", "đã kích hoạt xong")
    assert topic == "vneid.kich_hoat_muc2"
    assert subs.tags(services.db, "zalo", "99") == {"vneid_muc2"}


def test_xong_mid_guide_moves_on_but_kich_hoat_xong_finishes(services: Services) -> None:
    chat = Conversation()
    chat.run(guides.ActionStartGuide(), "start_guide", entities=[{"entity": "procedure", "value": GUIDE}])
    _, messages = chat.run(guides.ActionReportDone(), "report_done", "xong rồi")
    assert messages[-1]["text"].startswith("Bước 2/")
    chat.run(guides.ActionReportDone(), "report_done", "đã kích hoạt xong")
    assert chat.slots["active_guide"] is None
    assert subs.tags(services.db, "web", "tester") == {"vneid_muc2"}


def test_subscribe_pick_block_consent_change_and_unsubscribe(services: Services) -> None:
    db = services.db
    chat = Conversation()
    topic, messages = chat.run(subscriptions.ActionSubscribe(), "subscribe", "nhận thông báo")
    assert topic == "campaign.subscribe"
    assert titles(messages[0]) == [b.name for b in services.ward.blocks]
    _, messages = chat.run(
        subscriptions.ActionSubscribe(), "subscribe", entities=[{"entity": "block", "value": "khoi_2"}]
    )
    assert "Đồng ý nhận thông báo" in messages[0]["text"] and chat.slots["pending_block"] == "khoi_2"
    _, messages = chat.run(subscriptions.ActionSubscribeConsent(), "deny", "không")
    assert not subs.is_subscribed(db, "web", "tester") and subs.subscription(db, "web", "tester") is None
    chat.run(subscriptions.ActionSubscribe(), "subscribe", "đăng ký nhận tin khối 3")
    assert chat.slots["pending_block"] == "khoi_3"
    topic, _ = chat.run(subscriptions.ActionSubscribeConsent(), "affirm", "đồng ý")
    assert topic == "campaign.subscribe" and subs.subscription(db, "web", "tester").block == "khoi_3"
    _, messages = chat.run(subscriptions.ActionSubscribe(), "subscribe", "tôi ở khối nào")
    assert "Khối 3" in messages[0]["text"] and "Dừng nhận tin" in titles(messages[0])
    chat.run(subscriptions.ActionSubscribe(), "subscribe", entities=[{"entity": "block", "value": "khoi_5"}])
    assert subs.subscription(db, "web", "tester").block == "khoi_5"
    topic, _ = chat.run(subscriptions.ActionUnsubscribe(), "unsubscribe", "dừng nhận tin")
    assert topic == "campaign.unsubscribe" and not subs.is_subscribed(db, "web", "tester")
    _, messages = chat.run(subscriptions.ActionUnsubscribe(), "unsubscribe", "dừng nhận tin")
    assert "không nhận" in messages[0]["text"]


def test_the_action_endpoint_registers_every_domain_action() -> None:
    import yaml

    from bot.web.actions import build_executor

    executor = build_executor()
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    missing = set(domain["actions"]) - set(executor.actions)
    assert missing <= {"action_default_fallback"}  # Rasa's own, when not overridden


@pytest.mark.parametrize(
    ("text", "guide"),
    [
        ("hướng dẫn từng bước kích hoạt định danh mức 2", GUIDE),
        ("chi tung buoc dang ky tam tru tren dien thoai giup toi", "tam_tru_online"),
        ("hd từng bước lấy lại mk vneid giúp mk với", "vneid_quen_mat_khau"),
        ("hướng dẫn từng bước", None),
        ("cầm tay chỉ việc giúp tôi đổi số điện thoại VNeID", None),  # a procedure without a guide
    ],
)
def test_guide_named_in_the_text_when_the_nlu_found_no_entity(text: str, guide: str | None) -> None:
    found = guides.guide_named_in(KnowledgeBase(PROJECT_ROOT / "faq"), text)
    assert (found.id if found else None) == guide
