"""The outbox worker: claim due rows, send them through their channel's Sender, mark them.

One asyncio task in the app process (started in the lifespan). Interactive
replies never pass through here, so a big campaign cannot delay them: the
worker only paces what it sends itself.

Delivery guarantee: at least once. A row is claimed ("sending", with a lease)
before its send and marked after; the marks of a batch are written together
when the batch ends. If the process dies, rows left "sending" past the lease are
re-queued at the next start, so nothing is lost and at most one batch
(`batch_size` rows, the ones in flight) can be sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.outbox import service
from bot.outbox.pacing import QuietHours, RateLimiter
from bot.outbox.service import Claimed, Outcome
from bot.outbox.types import Sender, SendResult
from bot.storage.db import Database, utcnow

log = logging.getLogger(__name__)


class OutboxConfig(BaseSettings):
    """Tuning, from OUTBOX_* environment variables; the defaults suit one ward on Telegram."""

    model_config = SettingsConfigDict(env_prefix="OUTBOX_", env_file=".env", extra="ignore")

    rate: float = Field(25.0, ge=0, description="messages a second overall; 0 = unlimited")
    per_recipient_seconds: float = Field(1.0, ge=0)
    group_seconds: float = Field(3.0, ge=0, description="Telegram groups (negative chat ids): 20 a minute")
    batch_size: int = Field(100, ge=1, le=10_000)
    concurrency: int = Field(32, ge=1, description="sends in flight at once")
    poll_seconds: float = Field(1.0, gt=0)
    lease_seconds: float = Field(300.0, gt=0)
    send_timeout: float = Field(30.0, gt=0)
    max_attempts: int = Field(6, ge=1)
    backoff_seconds: float = Field(30.0, ge=0)
    backoff_max_seconds: float = Field(3600.0, ge=0)
    quiet_start: dt.time = dt.time(21, 0)
    quiet_end: dt.time = dt.time(7, 0)
    quiet_exempt: str = Field("", description="comma-separated kinds sent during quiet hours")

    @model_validator(mode="after")
    def _lease_outlasts_a_batch(self) -> OutboxConfig:
        """A live worker's rows must never look abandoned: the lease covers a whole slow batch."""
        pacing = self.batch_size / self.rate if self.rate > 0 else 0.0
        worst = pacing + self.send_timeout * -(-self.batch_size // self.concurrency)
        if self.lease_seconds <= worst:
            raise ValueError(
                f"OUTBOX_LEASE_SECONDS ({self.lease_seconds:g}) must exceed the longest a batch can take "
                f"({worst:g} s: batch_size/rate + send_timeout per wave of `concurrency` sends)"
            )
        return self

    def quiet_hours(self, timezone: str) -> QuietHours:
        exempt = frozenset(k.strip() for k in self.quiet_exempt.split(",") if k.strip())
        return QuietHours(ZoneInfo(timezone), self.quiet_start, self.quiet_end, exempt)


def default_worker_id() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class OutboxWorker:
    """Loops claim → send → mark until stopped. `clock` and `sleep` are injectable for tests."""

    def __init__(
        self,
        db: Database,
        timezone: str = "Asia/Ho_Chi_Minh",
        config: OutboxConfig | None = None,
        *,
        senders: dict[str, Sender] | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.db = db
        self.config = config or OutboxConfig()
        self.quiet = self.config.quiet_hours(timezone)
        self.limiter = RateLimiter(self.config.rate, self.config.per_recipient_seconds)
        self.senders: dict[str, Sender] = dict(senders or {})
        self.clock = clock
        self._sleep = sleep or self._interruptible_sleep
        self.worker_id = worker_id or default_worker_id()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_recovery: dt.datetime | None = None
        self.filters: dict[str, Callable[[list[Claimed]], dict[int, Outcome]]] = {}
        self.sent = 0

    # --- registry and lifecycle ---------------------------------------------------------------

    def register(self, sender: Sender) -> None:
        """Channels register their Sender (at start, or later: the next claim includes it)."""
        self.senders[sender.channel] = sender

    def add_filter(self, kind: str, check: Callable[[list[Claimed]], dict[int, Outcome]]) -> None:
        """Check a batch's rows of `kind` just before sending: `check(rows)` (synchronous, run in
        a thread, once per batch) returns {row id: Outcome} for rows not to send now (e.g. the
        campaign was paused or the citizen unsubscribed); Outcome(attempted=False) is usual."""
        self.filters[kind] = check

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self.run(), name="outbox-worker")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; let in-flight sends finish (up to `timeout`), put unsent rows back."""
        self._stop.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def run(self) -> None:
        log.info("outbox worker %s started", self.worker_id)
        while not self._stop.is_set():
            try:
                await self.recover_if_due()
                handled = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox worker: batch failed; retrying after a pause")
                handled = 0
            if not handled:
                await self._sleep(self.config.poll_seconds)
        log.info("outbox worker %s stopped", self.worker_id)

    async def recover_if_due(self) -> int:
        """Re-queue rows whose worker died (lease expired): at start, then once per lease."""
        now = self.clock()
        lease = dt.timedelta(seconds=self.config.lease_seconds)
        if self._last_recovery is not None and now - self._last_recovery < lease:
            return 0
        self._last_recovery = now
        count = await asyncio.to_thread(service.recover_stale, self.db, now, lease, self.config.max_attempts)
        if count:
            log.warning("outbox: re-queued %d rows left sending by a lost worker", count)
        return count

    # --- one batch ----------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim one batch and handle it completely; returns how many rows were claimed."""
        channels = sorted(self.senders)
        now = self.clock()
        rows = await asyncio.to_thread(
            service.claim, self.db, self.worker_id, self.config.batch_size, now, channels
        )
        if not rows:
            return 0
        outcomes: dict[int, Outcome] = {}
        tasks: list[asyncio.Task[None]] = []
        gate = asyncio.Semaphore(self.config.concurrency)
        try:
            for kind, check in self.filters.items():
                mine = [row for row in rows if row.kind == kind]
                if mine:
                    outcomes.update(await asyncio.to_thread(check, mine))
            for row in rows:
                if row.id in outcomes:  # decided by a filter
                    continue
                held = self.quiet.hold_until(row.kind, self.clock())
                if held is not None:
                    outcomes[row.id] = Outcome(row.id, "queued", "quiet hours", False, held)
                    continue
                await gate.acquire()  # a send slot first, so a pause learned meanwhile is seen
                if self._stop.is_set():
                    gate.release()
                    break
                ok, at = self.limiter.reserve(
                    row.channel, row.external_id, self.clock().timestamp(), self._spacing(row)
                )
                if ok:
                    wait = at - self.clock().timestamp()
                    if wait > 0:
                        await self._sleep(wait)
                    if self._stop.is_set():
                        gate.release()
                        break
                    paused = self.limiter.paused_until(row.channel, self.clock().timestamp())
                    if paused is None:
                        tasks.append(asyncio.create_task(self._send(row, outcomes, gate)))
                        continue
                    at = paused
                gate.release()
                outcomes[row.id] = Outcome(row.id, "queued", "", False, _at(at))
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for row in rows:  # stopped or cancelled: what was not sent goes back untouched
                outcomes.setdefault(row.id, Outcome(row.id, "queued", "", False, row.not_before))
            for task in tasks:
                task.cancel()
            await asyncio.shield(
                asyncio.to_thread(service.finish, self.db, self.worker_id, rows, list(outcomes.values()))
            )
        self.limiter.prune(self.clock().timestamp())
        self.sent += sum(1 for o in outcomes.values() if o.status == "sent")
        return len(rows)

    def _spacing(self, row: Claimed) -> float | None:
        if row.channel == "telegram" and row.external_id.startswith("-"):
            return self.config.group_seconds  # a group or channel chat
        return None

    async def _send(self, row: Claimed, outcomes: dict[int, Outcome], gate: asyncio.Semaphore) -> None:
        try:
            sender = self.senders[row.channel]
            try:
                result = await asyncio.wait_for(
                    sender.send(row.external_id, row.message), self.config.send_timeout
                )
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                result = SendResult("retry", "send timed out")
            except Exception as exc:  # noqa: BLE001 - network errors and sender bugs are retried
                result = SendResult("retry", f"{type(exc).__name__}")
            outcomes[row.id] = self.decide(row, result, self.clock())
        finally:
            gate.release()

    def decide(self, row: Claimed, result: SendResult, now: dt.datetime) -> Outcome:
        """Turn a SendResult into the row's next state."""
        if result.status == "sent":
            return Outcome(row.id, "sent", result.reason, sent_at=now)
        if result.status in ("failed", "blocked", "skipped"):
            log.info("outbox: row %d %s (%s): %s", row.id, result.status, row.channel, result.reason)
            return Outcome(row.id, result.status, result.reason or result.status)
        attempts = row.attempts + 1
        reason = result.reason or "retry"
        if attempts >= self.config.max_attempts:
            log.warning("outbox: row %d failed after %d attempts: %s", row.id, attempts, reason)
            return Outcome(row.id, "failed", f"{reason} (gave up after {attempts} attempts)")
        if result.retry_after is not None and result.retry_after >= 0:
            until = now + dt.timedelta(seconds=result.retry_after)
            self.limiter.pause(row.channel, until.timestamp())
            log.warning("outbox: %s asked to wait %.1fs", row.channel, result.retry_after)
        else:
            delay = min(self.config.backoff_seconds * 2 ** (attempts - 1), self.config.backoff_max_seconds)
            until = now + dt.timedelta(seconds=delay)
        return Outcome(row.id, "queued", reason, True, until)

    async def _interruptible_sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)


def _at(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)
