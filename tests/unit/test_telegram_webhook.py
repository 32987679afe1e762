"""Webhook mode: POST /telegram/webhook takes updates only with Telegram's secret header."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from bot.channels.telegram import TelegramChannel
from bot.config.settings import Settings
from bot.services import Services

UPDATE = {
    "update_id": 1,
    "message": {
        "message_id": 1,
        "date": 1_700_000_000,
        "chat": {"id": 42, "type": "private"},
        "from": {"id": 42, "is_bot": False, "first_name": "A"},
        "text": "xin chào",
    },
}


def settings(tmp_path: Path, **extra: str) -> Settings:
    values = {
        "TELEGRAM_BOT_TOKEN": "123456:TEST",
        "TELEGRAM_WEBHOOK_URL": "https://phuong.example/telegram/webhook",
        "TELEGRAM_WEBHOOK_SECRET": "s3cret-token",
        "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9/bot",
        "VAR_DIR": str(tmp_path),
        **extra,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def webhook_app(tmp_path: Path, **extra: str) -> tuple[FastAPI, TelegramChannel]:
    """What create_app does in webhook mode: the channel's router on the app."""
    config = settings(tmp_path, **extra)
    channel = TelegramChannel(config, Services.build(config))
    app = FastAPI()
    if channel.webhook:
        app.include_router(channel.webhook_router())
    return app, channel


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 403),
        ({"X-Telegram-Bot-Api-Secret-Token": "wrong"}, 403),
        ({"X-Telegram-Bot-Api-Secret-Token": ""}, 403),
        ({"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}, 200),
    ],
)
async def test_webhook_checks_the_secret_header(tmp_path: Path, headers: dict[str, str], status: int) -> None:
    app, channel = webhook_app(tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.post("/telegram/webhook", json=UPDATE, headers=headers)
    assert response.status_code == status
    queue = channel.application.update_queue
    assert queue.qsize() == (1 if status == 200 else 0)  # nothing processed without the secret
    if status == 200:
        update = queue.get_nowait()
        assert update.effective_chat.id == 42


async def test_webhook_refuses_what_is_not_an_update(tmp_path: Path) -> None:
    app, channel = webhook_app(tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.post(
            "/telegram/webhook",
            content=b"not json",
            headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"},
        )
    assert response.status_code == 400
    assert channel.application.update_queue.qsize() == 0


def test_polling_mode_has_no_webhook_route_and_webhook_needs_a_secret(tmp_path: Path) -> None:
    app, channel = webhook_app(tmp_path, TELEGRAM_WEBHOOK_URL="")
    assert not any(getattr(r, "path", "") == "/telegram/webhook" for r in app.routes)
    assert channel.application.updater is not None
    assert webhook_app(tmp_path)[1].application.updater is None
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET"):
        TelegramChannel(settings(tmp_path, TELEGRAM_WEBHOOK_SECRET=""), Services.build(settings(tmp_path)))
