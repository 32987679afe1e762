"""The app's lifespan runs the outbox worker: senders registered on app.state.outbox deliver."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from rasa_sdk.executor import ActionExecutor

from bot.config.settings import Settings
from bot.outbox.service import counts, enqueue
from bot.web.app import create_app
from tests.support.outbox import RecordingSender


def test_the_app_starts_and_stops_the_outbox_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOX_QUIET_START", "00:00")  # deliver at any hour of the test run
    monkeypatch.setenv("OUTBOX_QUIET_END", "00:00")
    monkeypatch.setenv("OUTBOX_POLL_SECONDS", "0.05")
    monkeypatch.setattr("bot.web.app.build_executor", ActionExecutor)  # custom actions are not tested here
    settings = Settings(VAR_DIR=tmp_path, DATABASE_URL="", TELEGRAM_BOT_TOKEN="")
    app = create_app(settings)
    with TestClient(app):
        worker = app.state.outbox
        assert worker.running
        sender = RecordingSender("web")
        worker.register(sender)
        db = app.state.services.db
        enqueue(db, "web", "abc", {"text": "Xin chào", "buttons": []}, kind="notice", ref="n1")
        deadline = time.monotonic() + 10
        while counts(db, "notice", "n1")["sent"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert counts(db, "notice", "n1")["sent"] == 1
        assert [c[1] for c in sender.calls] == ["abc"]
    assert not worker.running
