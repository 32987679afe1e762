"""In the running app: a confirmed campaign is run by the scheduler's job and delivered by the
outbox worker with the campaign filter installed (an unsubscribed citizen gets nothing)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from rasa_sdk.executor import ActionExecutor

from bot.campaigns import service
from bot.config.settings import Settings
from bot.outbox.service import counts
from bot.subscriptions import service as subscriptions
from bot.web.app import create_app
from tests.support.campaigns import WARD_BLOCKS, staff
from tests.support.outbox import RecordingSender


def test_a_confirmed_campaign_is_scheduled_run_and_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTBOX_QUIET_START", "00:00")
    monkeypatch.setenv("OUTBOX_QUIET_END", "00:00")
    monkeypatch.setenv("OUTBOX_POLL_SECONDS", "0.05")
    monkeypatch.setattr("bot.web.app.build_executor", ActionExecutor)
    app = create_app(Settings(VAR_DIR=tmp_path, DATABASE_URL="", TELEGRAM_BOT_TOKEN=""))
    with TestClient(app):
        db = app.state.services.db
        assert "campaign" in app.state.outbox.filters
        sender = RecordingSender("telegram")
        app.state.outbox.register(sender)
        for chat in ("101", "102", "103"):
            subscriptions.subscribe(db, "telegram", chat, "khoi_1", "Đồng ý")
        subscriptions.unsubscribe(db, "telegram", "103", "user asked")
        cadre = staff(db, "can_bo_1", "cadre", ["khoi_1"])
        info = service.create(db, cadre, title="T", text="Nhắc", blocks=["khoi_1"], ward_blocks=WARD_BLOCKS)
        service.confirm(db, cadre, info.id, app.state.scheduler)
        deadline = time.monotonic() + 15
        while counts(db, "campaign")["sent"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(c[1] for c in sender.calls) == ["101", "102"]
        assert app.state.scheduler.get_job("campaigns:maintain") is not None
        assert service.report(db, cadre, info.id)["sent"] == 2
