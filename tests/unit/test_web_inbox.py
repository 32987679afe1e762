"""The web chat's inbox: what the outbox sends to a web user waits until their page collects it."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from rasa_sdk.executor import ActionExecutor

from bot.channels import web_inbox
from bot.config.settings import Settings
from bot.outbox.service import counts, enqueue
from bot.storage.db import Database
from bot.storage.models import Base
from bot.web.app import create_app


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("OUTBOX_QUIET_START", "00:00")  # deliver at any hour of the test run
    monkeypatch.setenv("OUTBOX_QUIET_END", "00:00")
    monkeypatch.setenv("OUTBOX_POLL_SECONDS", "0.05")
    monkeypatch.setattr("bot.web.app.build_executor", ActionExecutor)  # no custom actions needed here
    app = create_app(Settings(VAR_DIR=tmp_path, DATABASE_URL="", TELEGRAM_BOT_TOKEN=""))
    with TestClient(app) as client:
        yield client


def db_of(client: TestClient) -> Database:
    return client.app.state.services.db  # type: ignore[attr-defined]


def wait_sent(db: Database, ref: str) -> None:
    deadline = time.monotonic() + 10
    while counts(db, "reminder", ref)["sent"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counts(db, "reminder", ref)["sent"] == 1


def test_a_reminder_for_a_web_user_is_collected_once_by_their_page_only(client: TestClient) -> None:
    db = db_of(client)
    message = {"text": "Nhắc lịch hẹn AB12CD", "buttons": [{"title": "Hủy", "payload": "/stop"}]}
    enqueue(db, "web", "page-1", message, kind="reminder", ref="AB12CD:day_before")
    wait_sent(db, "AB12CD:day_before")
    assert client.get("/api/chat/inbox", params={"user": "page-2"}).json() == {"messages": []}
    first = client.get("/api/chat/inbox", params={"user": "page-1"})
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    assert first.json() == {"messages": [message]}
    assert client.get("/api/chat/inbox", params={"user": "page-1"}).json() == {"messages": []}


@pytest.mark.parametrize("query", [{}, {"user": ""}, {"user": "../etc"}, {"user": "x" * 65}])
def test_a_malformed_user_is_refused(client: TestClient, query: dict[str, str]) -> None:
    response = client.get("/api/chat/inbox", params=query)
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"


def test_messages_come_oldest_first_and_at_most_a_page_at_a_time(client: TestClient) -> None:
    db = db_of(client)
    for i in range(web_inbox.MAX_TAKE + 3):
        web_inbox.store(db, "page-3", {"text": f"tin {i}", "buttons": []})
    first = web_inbox.take(db, "page-3")
    assert [m["text"] for m in first] == [f"tin {i}" for i in range(web_inbox.MAX_TAKE)]
    assert [m["text"] for m in web_inbox.take(db, "page-3")] == ["tin 20", "tin 21", "tin 22"]


def test_purge_keeps_only_recent_unread_messages(client: TestClient) -> None:
    db = db_of(client)
    web_inbox.store(db, "read", {"text": "a", "buttons": []})
    web_inbox.take(db, "read")
    web_inbox.store(db, "unread", {"text": "b", "buttons": []})
    assert web_inbox.purge(db) == 1  # the collected one
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=web_inbox.KEEP_UNREAD_DAYS + 1)
    assert web_inbox.purge(db, now=later) == 1
    assert web_inbox.take(db, "unread") == []


def test_the_migration_matches_the_model(client: TestClient) -> None:
    with db_of(client).engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diff if "web_inbox" in repr(d)] == []
