"""Appointment reminders on Zalo and the 48-hour window (issue 5): a reminder row of the outbox,
delivered by the real outbox worker through the real ZaloSender and Zalo client to the Zalo
stand-in (an HTTP server), is recorded as not sent with the reason when the citizen last wrote
more than 48 hours ago, unless proactive messages are configured (ZALO_PROACTIVE)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.channels.zalo.channel import ZaloChannel
from bot.channels.zalo.models import ZaloRefusal
from bot.channels.zalo.sender import ZaloSender
from bot.config.settings import Settings
from bot.outbox.models import OutboxMessage
from bot.outbox.service import enqueue
from bot.outbox.worker import OutboxConfig, OutboxWorker
from bot.services import Services
from bot.storage.db import Database, utcnow
from bot.storage.migrate import upgrade
from tests.support.citizens import wrote
from tests.support.zalo_standin import ZaloStandIn

REMINDER = {
    "text": "Nhắc lịch: ngày mai anh/chị có lịch hẹn ABC234 làm Đăng ký khai sinh lúc 10:00.",
    "buttons": [{"title": "Lịch hẹn của tôi", "payload": "/list_appointments"}],
}
_users = itertools.count(1)


@pytest.fixture(scope="module")
def zalo() -> Iterator[ZaloStandIn]:
    standin = ZaloStandIn()
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'ward.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def remind(db: Database, user: str) -> int:
    """A reminder due now, queued the way a booking queues it (kind "reminder", ref code:name)."""
    return enqueue(db, "zalo", user, REMINDER, kind="reminder", ref="ABC234:day_before", not_before=utcnow())


async def deliver(db: Database, zalo: ZaloStandIn, *, proactive: bool) -> None:
    """One batch of the real outbox worker with the real Zalo sender, against the stand-in."""
    settings = Settings(
        _env_file=None, DATABASE_URL=db.url, **{**zalo.env(), "ZALO_PROACTIVE": str(proactive)}
    )
    services = Services.build(settings)
    services.db.dispose()
    services.db = db
    channel = ZaloChannel(services)
    config = OutboxConfig(rate=0, per_recipient_seconds=0, quiet_start=dt.time(0), quiet_end=dt.time(0))
    worker = OutboxWorker(db, services.ward.timezone, config, senders={"zalo": ZaloSender(channel)})
    try:
        assert await worker.run_once()
    finally:
        await channel.aclose()


def row(db: Database, row_id: int) -> tuple[str, str, int]:
    with db.session() as session:
        found = session.get(OutboxMessage, row_id)
        return found.status, found.reason, found.attempts


def refusals(db: Database, user: str) -> list[tuple[str, str]]:
    with db.session() as session:
        query = select(ZaloRefusal.reason, ZaloRefusal.kind).where(ZaloRefusal.external_id == user)
        return [tuple(r) for r in session.execute(query)]


async def test_a_reminder_outside_the_window_is_recorded_as_not_sent_with_the_reason(
    db: Database, zalo: ZaloStandIn
) -> None:
    inside, outside, never = (f"zr{next(_users)}" for _ in range(3))
    wrote(db, inside, 47)
    wrote(db, outside, 49)
    ids = {user: remind(db, user) for user in (inside, outside, never)}  # `never` never wrote to the OA

    await deliver(db, zalo, proactive=False)

    assert row(db, ids[inside]) == ("sent", "", 1)
    assert [m["text"] for m in zalo.messages_to(inside)] == [REMINDER["text"]]
    for user in (outside, never):
        assert row(db, ids[user]) == ("skipped", "outside 48h window", 1)  # final: never retried
        assert zalo.calls_for(user) == []  # nothing reached Zalo
        assert refusals(db, user) == [("outside 48h window", "outbox")]
    assert refusals(db, inside) == []


async def test_with_proactive_messages_configured_the_reminder_is_sent(
    db: Database, zalo: ZaloStandIn
) -> None:
    outside, never = f"zr{next(_users)}", f"zr{next(_users)}"
    wrote(db, outside, 72)
    ids = {user: remind(db, user) for user in (outside, never)}

    await deliver(db, zalo, proactive=True)

    for user in (outside, never):
        assert row(db, ids[user]) == ("sent", "", 1)
        assert [m["text"] for m in zalo.messages_to(user)] == [REMINDER["text"]]
        assert refusals(db, user) == []
