"""Test helpers for the outbox: a controllable clock and fake channel senders."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

from sqlalchemy import func, select

from bot.outbox.models import OutboxMessage
from bot.outbox.types import SendResult
from bot.outbox.worker import OutboxWorker
from bot.storage.db import Database


class FakeClock:
    """Time that only moves when the worker sleeps (or the test says so)."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)


class RecordingSender:
    """A fake channel: records (time, external_id, message) and answers what `answer` says."""

    def __init__(
        self,
        channel: str = "telegram",
        clock: Callable[[], dt.datetime] | None = None,
        answer: Callable[[str, dict], SendResult] | None = None,
    ) -> None:
        self.channel = channel
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.answer = answer or (lambda _id, _msg: SendResult("sent"))
        self.calls: list[tuple[dt.datetime, str, dict]] = []

    async def send(self, external_id: str, message: dict) -> SendResult:
        self.calls.append((self.clock(), external_id, message))
        return self.answer(external_id, message)


def next_due(db: Database, channels: list[str]) -> dt.datetime | None:
    with db.session() as session:
        return session.scalar(
            select(func.min(OutboxMessage.not_before)).where(
                OutboxMessage.status == "queued", OutboxMessage.channel.in_(channels)
            )
        )


async def drain(worker: OutboxWorker, clock: FakeClock, max_rounds: int = 10_000) -> None:
    """Run batches, jumping the fake clock to the next due row, until nothing is queued."""
    for _ in range(max_rounds):
        if await worker.run_once():
            continue
        due = next_due(worker.db, sorted(worker.senders))
        if due is None:
            return
        clock.now = max(clock.now, due)
    raise AssertionError("outbox did not drain")
