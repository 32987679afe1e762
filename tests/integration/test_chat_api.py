"""The whole path through the real product: HTTP → app → Rasa → custom action → faq/."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from bot.config.settings import PROJECT_ROOT
from bot.config.ward import load_ward
from bot.knowledge.kb import KnowledgeBase, fill
from tests.support.appserver import AppServer
from tests.support.chat import user

pytestmark = pytest.mark.integration
KB = KnowledgeBase(PROJECT_ROOT / "faq")
WARD = load_ward(PROJECT_ROOT / "settings" / "ward.yml")


def test_health_reports_every_part(app: AppServer) -> None:
    response = httpx.get(f"{app.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "rasa": "ready", "database": "ok", "scheduler": "running"}


def test_greeting_shows_the_menu(app: AppServer) -> None:
    body = app.chat(user(), "xin chào").json()
    assert body["topic"] == "greet"
    assert body["intent"]["name"] == "greet"
    assert 0 < body["intent"]["confidence"] <= 1
    assert WARD.name in body["messages"][0]["text"]
    assert len(body["messages"][0]["buttons"]) >= 4


def test_help_menu_buttons_are_clickable(app: AppServer) -> None:
    body = app.chat(user(), "bot làm được những gì").json()
    assert body["topic"] == "help"
    payloads = [b["payload"] for b in body["messages"][0]["buttons"]]
    clicked = app.chat(user(), payload=payloads[0]).json()
    assert clicked["topic"] != "out_of_scope" and clicked["messages"]


@pytest.mark.parametrize(
    ("text", "topic", "procedure", "aspect"),
    [
        ("làm giấy khai sinh cho con cần mang những giấy tờ gì", "khai_sinh.ho_so", "khai_sinh", "ho_so"),
        ("kich hoat dinh danh muc 2 ntn a", "vneid.kich_hoat_muc2", "vneid.kich_hoat_muc2", None),
        ("đăng ký tạm trú lệ phí bao nhiêu tiền", "tam_tru.le_phi", "tam_tru", "le_phi"),
        ("bộ phận một cửa phường mấy giờ mở cửa", "mot_cua", "mot_cua", None),
    ],
)
def test_knowledge_base_answers_carry_topic_and_faq_content(
    app: AppServer, text: str, topic: str, procedure: str, aspect: str | None
) -> None:
    body = app.chat(user(), text).json()
    assert body["topic"] == topic
    answer = body["messages"][0]["text"]
    entry = KB.procedures[procedure]
    expected = entry.aspects.get(aspect) if aspect else entry.summary
    assert fill(expected, WARD.placeholders())[:30] in answer
    assert entry.checked.strftime("%d/%m/%Y") in answer


def test_aspect_button_answers_that_aspect(app: AppServer) -> None:
    body = app.chat(user(), payload='/khai_sinh{"aspect": "le_phi"}').json()
    assert body["topic"] == "khai_sinh.le_phi"
    assert KB.procedures["khai_sinh"].aspects["le_phi"][:30] in body["messages"][0]["text"]


def test_out_of_scope_is_refused_politely(app: AppServer) -> None:
    body = app.chat(user(), "hôm nay thời tiết Cửa Lò thế nào, có mưa không").json()
    assert body["topic"] == "out_of_scope"
    assert "chỉ hỗ trợ" in body["messages"][0]["text"]


def citizen_count(app: AppServer) -> int:
    with sqlite3.connect(app.var_dir / "ward.db") as connection:
        return connection.execute("SELECT count(*) FROM citizens").fetchone()[0]


@pytest.mark.parametrize(
    ("kwargs", "status", "needle"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
        ({"json": {"user": "u1"}}, 422, "exactly one"),
        ({"json": {"user": "u1", "text": ""}}, 422, "empty"),
        ({"json": {"user": "u1", "text": "   "}}, 422, "empty"),
        ({"json": {"user": "u1", "text": "a" * 4001}}, 413, "4000"),
        ({"json": {"user": "u1", "text": 12}}, 422, "text"),
        ({"json": {"user": 5, "text": "xin chào"}}, 422, "user"),
        ({"json": {"user": "u1", "text": "hi", "payload": "/greet"}}, 422, "exactly one"),
        ({"json": {"user": "u1", "payload": "/drop_everything"}}, 422, "unknown button payload"),
        ({"json": {"user": "u1", "text": "abc\u0000def"}}, 422, "control characters"),
        ({"json": {"user": "../../etc", "text": "hi"}}, 422, "user"),
        ({"json": ["user", "text"]}, 422, "body"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    app: AppServer, kwargs: dict, status: int, needle: str
) -> None:
    before = citizen_count(app)
    response = httpx.post(f"{app.url}/api/chat", **kwargs)
    assert response.status_code == status
    assert needle in response.json()["detail"]
    assert citizen_count(app) == before


def test_action_endpoint_refuses_callers_without_the_token(app: AppServer) -> None:
    response = httpx.post(f"{app.url}/webhook", json={"next_action": "action_greet", "tracker": {}})
    assert response.status_code == 403


def test_conversations_are_kept_in_the_sql_tracker_store(app: AppServer) -> None:
    sender = user()
    app.chat(sender, "xin chào")
    with sqlite3.connect(app.var_dir / "rasa-tracker.db") as connection:
        rows = connection.execute(
            "SELECT count(*) FROM events WHERE sender_id = ?", (f"web:{sender}",)
        ).fetchone()
    assert rows[0] > 0


def test_the_web_page_is_served(app: AppServer) -> None:
    response = httpx.get(app.url)
    assert response.status_code == 200
    assert 'lang="vi"' in response.text and "/static/chat.js" in response.text
    assert httpx.get(f"{app.url}/static/chat.js").status_code == 200


def test_no_personal_data_in_logs(app: AppServer) -> None:
    secret_phone, secret_name = "0912345678", "Nguyễn Thị Bíchhh"
    app.chat(user(), f"tôi là {secret_name}, số điện thoại {secret_phone}, làm căn cước ở đâu")
    for log in (app.log_path, app.var_dir / "rasa.log"):
        text = log.read_text(encoding="utf-8", errors="replace")
        assert secret_phone not in text and secret_name not in text


def test_every_catalog_procedure_is_answered_with_its_topic(app: AppServer) -> None:
    """Each procedure, and one aspect of each that takes aspects, through the whole path."""
    catalog = KB.catalog
    sender = user()
    for procedure, entry in KB.procedures.items():
        intent = procedure.replace(".", "_")
        body = app.chat(sender, payload=f"/{intent}").json()
        assert body["topic"] == procedure
        assert entry.title.upper() in body["messages"][0]["text"]
        for aspect in list(entry.aspects)[:1]:
            body = app.chat(sender, payload=f'/{intent}{{"aspect": "{aspect}"}}').json()
            assert body["topic"] == catalog.topic(intent, [aspect])
            expected = fill(entry.aspects[aspect], WARD.placeholders())[:20]
            assert expected in body["messages"][0]["text"]


def test_a_vague_message_gets_the_two_best_candidates_as_buttons(app: AppServer) -> None:
    body = app.chat(user(), "làm giấy tờ").json()
    buttons = body["messages"][0]["buttons"]
    assert "chưa chắc" in body["messages"][0]["text"]
    assert len(buttons) == 3 and buttons[-1]["payload"] == "/help"
    assert body["topic"] in KB.catalog.all_ids


@pytest.mark.parametrize(
    ("payload", "topic"),
    [
        ("/greet", "greet"),
        ("/goodbye", "goodbye"),
        ("/thanks", "thanks"),
        ("/help", "help"),
        ("/handoff", "handoff"),
        ("/out_of_scope", "out_of_scope"),
        ("/subscribe", "campaign.subscribe"),
        ("/unsubscribe", "campaign.unsubscribe"),
        ("/start_guide", "guide.start"),
        ("/list_appointments", "appointment.list"),
    ],
)
def test_dialogue_topics_are_reported(app: AppServer, payload: str, topic: str) -> None:
    body = app.chat(user(), payload=payload).json()
    assert body["topic"] == topic
    assert body["messages"] and body["messages"][0]["text"]
