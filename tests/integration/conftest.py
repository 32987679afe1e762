"""One real product (Rasa server with the trained model + the app) per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.storage.db import Database
from tests.support.appserver import ROOT, AppServer
from tests.support.telegram_standin import TelegramStandIn
from tests.support.zalo_standin import ZaloStandIn


@pytest.fixture(scope="session")
def zalo_standin() -> Iterator[ZaloStandIn]:
    """The local stand-in for Zalo's API; the session's app talks to it."""
    standin = ZaloStandIn()
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture(scope="session")
def telegram_standin() -> Iterator[TelegramStandIn]:
    """The local stand-in for Telegram's Bot API; the session's app polls it."""
    standin = TelegramStandIn()
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture(scope="session")
def app(
    tmp_path_factory: pytest.TempPathFactory, zalo_standin: ZaloStandIn, telegram_standin: TelegramStandIn
) -> Iterator[AppServer]:
    if not (ROOT / "models" / "ward.tar.gz").exists():
        pytest.fail("no trained model: run `make model` (make test does it)")
    # no quiet hours: what the outbox sends is checked at whatever hour the tests run (quiet hours
    # themselves are tested with a controlled clock: tests/unit/test_outbox*.py, test_campaigns_schedule.py)
    env: dict[str, str] = {"OUTBOX_QUIET_START": "00:00", "OUTBOX_QUIET_END": "00:00"}
    env.update(zalo_standin.env())  # --- Zalo: stand-in started first, the app uses it ---
    env.update(telegram_standin.env())  # --- Telegram: the app polls the stand-in ---
    server = AppServer(var_dir=tmp_path_factory.mktemp("var"), env_extra=env)
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def db(app: AppServer) -> Iterator[Database]:
    """The session app's own database, to check what a conversation stored."""
    database = Database(f"sqlite:///{app.var_dir / 'ward.db'}")
    yield database
    database.dispose()
