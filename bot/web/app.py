"""The app's ASGI application: chat page and API, health, Rasa's action endpoint."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import yaml
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from bot.campaigns.delivery import record_press
from bot.channels.web import web_router
from bot.channels.web_inbox import WebInboxSender
from bot.config.settings import PROJECT_ROOT, Settings
from bot.conversation.rasa_client import RasaClient
from bot.conversation.service import ConversationService
from bot.outbox.worker import OutboxWorker
from bot.scheduler import build_scheduler, install_jobs
from bot.services import Services, set_services
from bot.storage.migrate import upgrade
from bot.web.actions import action_router, build_executor

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")


def domain_intents(path: Path = PROJECT_ROOT / "domain.yml") -> frozenset[str]:
    """Intents a button payload may name: those of Rasa's domain."""
    return frozenset(yaml.safe_load(path.read_text(encoding="utf-8"))["intents"])


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """Build the app; services are validated here so bad settings fail at start."""
    services = services or Services.build(settings)
    action_token = os.environ.get("ACTION_TOKEN", "")
    # --- Telegram channel (bot/channels/telegram): on when TELEGRAM_BOT_TOKEN is set ---
    telegram = None
    if settings.telegram_bot_token:
        from bot.channels.telegram import TelegramChannel

        telegram = TelegramChannel(settings, services)
    # --- end Telegram ---

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        upgrade(services.db.url)
        set_services(services)
        scheduler = build_scheduler(services.db, services.ward.timezone)
        scheduler.start()
        install_jobs(scheduler, services.ward.timezone)  # the app's own jobs (retention)
        rasa = RasaClient(
            settings.effective_rasa_url, settings.rasa_timeout, os.environ.get("RASA_TOKEN", "")
        )
        app.state.services = services
        app.state.scheduler = scheduler
        app.state.rasa = rasa
        app.state.conversation = ConversationService(services, rasa, domain_intents())
        app.state.conversation.payload_hooks.append(record_press)  # campaign button presses
        # --- outbox (bot/outbox): the delivery worker; channels register their Sender with it ---
        outbox = OutboxWorker(services.db, services.ward.timezone)
        app.state.outbox = outbox
        outbox.register(WebInboxSender(services.db))  # the web chat collects its messages
        outbox.start()
        # --- end outbox ---
        # --- campaigns (bot/campaigns): the outbox filter for campaign rows, the upkeep job ---
        from bot.campaigns.jobs import install as install_campaigns

        install_campaigns(outbox, scheduler, services.db)
        # --- end campaigns ---
        log.info("app ready on %s:%s, rasa at %s", settings.host, settings.port, settings.effective_rasa_url)
        # --- Telegram: start (in the background) once the conversation service exists ---
        if telegram is not None:
            telegram.staff.scheduler = scheduler  # /chiendich confirms campaigns into the app's scheduler
            # the outbox takes Telegram rows once the bot runs: none wait out a retry after a start
            telegram.on_ready.append(lambda: outbox.register(telegram.sender))
            await telegram.start(app.state.conversation)
        # --- end Telegram ---
        try:
            yield
        finally:
            await app.state.outbox.stop()  # outbox first: it still uses the channels' senders
            if telegram is not None:  # Telegram (stop before the Rasa client closes)
                await telegram.stop()
            scheduler.shutdown(wait=False)
            await rasa.aclose()
            services.db.dispose()
            set_services(None)

    app = FastAPI(title="Trợ lý phường", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(web_router())
    app.include_router(action_router(build_executor(), action_token))
    # --- Zalo OA channel (bot/channels/zalo): on when ZALO_APP_ID and ZALO_OA_SECRET_KEY are set ---
    if settings.zalo_enabled:
        from bot.channels.zalo.webhook import zalo_router

        app.include_router(zalo_router())
    # --- end Zalo ---
    # --- Telegram webhook mode: POST /telegram/webhook (secret header checked) ---
    app.state.telegram = telegram
    if telegram is not None and telegram.webhook:
        app.include_router(telegram.webhook_router())
    # --- end Telegram webhook ---
    # --- staff pages (bot/staff): /staff login, queue, CSV, summary, admin ---
    from bot.staff.web import staff_router

    app.include_router(staff_router(services))
    # --- end staff ---
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        rasa_ready = await app.state.rasa.ready()
        db_ok = app.state.services.db.ping()
        scheduler_ok = bool(app.state.scheduler.running)
        body = {
            "status": "ok" if rasa_ready and db_ok and scheduler_ok else "degraded",
            "rasa": "ready" if rasa_ready else "unavailable",
            "database": "ok" if db_ok else "error",
            "scheduler": "running" if scheduler_ok else "stopped",
        }
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    return app
