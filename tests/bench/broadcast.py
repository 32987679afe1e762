"""Campaign broadcast benchmark: 10,000 subscribed citizens on Telegram, through the campaign
service, the real outbox worker and the real TelegramSender (python-telegram-bot) against the
Telegram stand-in (tests/support/telegram_standin.py), which counts what it received.

    .venv/bin/python tests/bench/broadcast.py [--citizens 10000] [--only a b c] [--rates 25 30]

(a) rate-limited: the stand-in refuses beyond 30 sendMessage/s (429 + retry_after), the
    outbox paces at OUTBOX_RATE (the --rates, default the configured 25/s) and PTB's limiter
    (the channel's ChannelRateLimiter) is on: wall time, sustained rate as a share of the
    configured rate, 429s, lost and duplicates (counted at the stand-in).
(b) no limit: outbox rate 0, PTB without its flood limiter, the stand-in unlimited: throughput
    on SQLite, and on PostgreSQL when available (tests/support/postgres.py).
(c) crash: the worker runs in a child process, killed with SIGKILL at about half way and
    started again: every citizen received it; duplicates (at most the in-flight batch).

The stand-in runs in a process of its own (tests/bench/standin_process.py), as Telegram is
another machine: it does not share the worker's GIL, and (b) reports each one's CPU a message.
The worker runs on the event loop the app uses (`asyncio.run` in bot/cli.py: the standard
loop); `--uvloop` shows what uvloop would give.
(b) runs with `--concurrency` sends in flight (default 8, OUTBOX_CONCURRENCY): against a local
server 8 is enough, and every extra connection costs CPU (httpcore checks each pooled connection
on every request); the default 32 is for Telegram's round trip time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402
from telegram.ext import Application, ApplicationBuilder  # noqa: E402

from bot.campaigns import delivery, service  # noqa: E402
from bot.channels.telegram.format import CallbackStore  # noqa: E402
from bot.channels.telegram.limits import ChannelRateLimiter  # noqa: E402
from bot.channels.telegram.sender import TelegramSender  # noqa: E402
from bot.outbox.service import counts  # noqa: E402
from bot.outbox.worker import OutboxConfig, OutboxWorker  # noqa: E402
from bot.staff.accounts import Staff  # noqa: E402
from bot.staff.models import StaffUser  # noqa: E402
from bot.storage.db import Database, utcnow  # noqa: E402
from bot.storage.migrate import upgrade  # noqa: E402
from bot.storage.models import Citizen  # noqa: E402
from bot.subscriptions.models import Subscription  # noqa: E402
from tests.bench.standin_process import StandInProcess  # noqa: E402
from tests.support.postgres import PostgresUnavailable, fresh_database, postgres_server  # noqa: E402

BLOCKS = ["khoi_1", "khoi_2", "khoi_3", "khoi_4", "khoi_5"]
TEXT = (
    "Phường Cửa Lò thông báo: bà con chưa kích hoạt tài khoản định danh điện tử mức 2 "
    "vui lòng làm theo hướng dẫn dưới đây hoặc đặt lịch tại bộ phận một cửa."
)
BUTTONS = [
    service.guide_button("Hướng dẫn kích hoạt", "vneid.kich_hoat_muc2"),
    service.booking_button("Đặt lịch hẹn"),
]
FIRST_CHAT = 1_000_000_000
QUIET_OFF = {"quiet_start": "00:00", "quiet_end": "00:00"}


# --- set-up ---------------------------------------------------------------------------------


def populate(url: str, n: int) -> tuple[Database, int]:
    """Migrate, subscribe n Telegram citizens (spread over the blocks), create and confirm a
    ward-wide campaign as an admin, and run it (enqueue). Returns (db, campaign id)."""
    upgrade(url)
    db = Database(url)
    now = utcnow()
    with db.session() as session:
        session.execute(
            insert(Citizen),
            [
                {
                    "channel": "telegram",
                    "external_id": str(FIRST_CHAT + i),
                    "created_at": now,
                    "last_message_at": now,
                }
                for i in range(n)
            ],
        )
        ids = session.scalars(select(Citizen.id).order_by(Citizen.id)).all()
        session.execute(
            insert(Subscription),
            [
                {
                    "citizen_id": cid,
                    "block": BLOCKS[i % len(BLOCKS)],
                    "active": True,
                    "consent_text": "Đồng ý nhận thông báo của phường",
                    "consented_at": now,
                    "updated_at": now,
                }
                for i, cid in enumerate(ids)
            ],
        )
        admin = StaffUser(
            username="quan_tri", display_name="Quản trị", password_hash="-", role="admin", blocks=[],
            active=True, failed_logins=0, session_version=0,
        )  # fmt: skip
        session.add(admin)
        session.flush()
        actor = Staff.of(admin)
    info = service.create(
        db, actor, title="Project 06", text=TEXT, buttons=BUTTONS, blocks=BLOCKS, ward_blocks=BLOCKS
    )
    assert service.preview(db, actor, info.id).recipients == n
    service.confirm(db, actor, info.id)
    started = time.perf_counter()
    added = delivery.run_campaign(db, info.id)
    print(f"  enqueue: {added} outbox rows in {time.perf_counter() - started:.2f} s")
    return db, info.id


def run(main: Coroutine[Any, Any, float], use_uvloop: bool = False) -> float:
    """Run the worker on the app's event loop (the standard one), or on uvloop."""
    if not use_uvloop:
        return asyncio.run(main)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def telegram_sender(
    standin: StandInProcess, db: Database, limited: bool
) -> tuple[Application, TelegramSender]:
    """The channel's PTB bot (as TelegramChannel builds it) and the real TelegramSender."""
    builder = ApplicationBuilder().token(standin.token).base_url(standin.base_url).updater(None)
    if limited:
        builder = builder.rate_limiter(ChannelRateLimiter(max_retries=3))
    application = builder.build()
    await application.initialize()
    return application, TelegramSender(application.bot, db, CallbackStore(), "…")


async def deliver(db: Database, standin: StandInProcess, config: OutboxConfig, limited: bool) -> float:
    """Run the worker until no campaign row is queued or sending; returns the wall time."""
    application, sender = await telegram_sender(standin, db, limited)
    worker = OutboxWorker(db, "Asia/Ho_Chi_Minh", config, senders={"telegram": sender})
    worker.add_filter(delivery.KIND, delivery.campaign_filter(db))
    started = time.perf_counter()
    worker.start()
    while True:
        await asyncio.sleep(0.25)
        state = await asyncio.to_thread(counts, db, delivery.KIND)
        if state["queued"] + state["sending"] == 0:
            break
    elapsed = time.perf_counter() - started
    await worker.stop()
    await application.shutdown()
    return elapsed


def received(standin: StandInProcess, n: int) -> dict[str, float]:
    ok = [c for c in standin.calls_of("sendMessage") if c.status == 200]
    per_chat = Counter(c.chat_id for c in ok)
    expected = {FIRST_CHAT + i for i in range(n)}
    span = ok[-1].at - ok[0].at if len(ok) > 1 else 0.0
    return {
        "delivered": len(ok),
        "lost": len(expected - set(per_chat)),
        "duplicates": sum(count - 1 for count in per_chat.values()),
        "rate": (len(ok) - 1) / span if span else 0.0,
        "refused_429": standin.rate_refusals,
    }


# --- the scenarios ----------------------------------------------------------------------------


def scenario_a(n: int, rate: float, limit: float, use_uvloop: bool) -> None:
    print(
        f"(a) stand-in limited to {limit:g} msg/s (429 + retry_after), outbox rate {rate:g}/s, PTB limiter on"
    )
    with tempfile.TemporaryDirectory() as folder:
        db, _ = populate(f"sqlite:///{folder}/broadcast.db", n)
        standin = StandInProcess()
        standin.start()
        standin.limit_rate(limit)
        try:
            config = OutboxConfig(rate=rate, **QUIET_OFF)
            elapsed = run(deliver(db, standin, config, limited=True), use_uvloop)
        finally:
            standin.stop()
        got = received(standin, n)
        report = counts(db, delivery.KIND)
        db.dispose()
    print(
        f"  {n} citizens: wall {elapsed:.1f} s; sustained {got['rate']:.2f} msg/s = "
        f"{got['rate'] / rate:.1%} of the configured {rate:g}/s; 429s {got['refused_429']:.0f}; "
        f"lost {got['lost']:.0f}; duplicates {got['duplicates']:.0f}; outbox sent {report['sent']}, "
        f"failed {report['failed']}; load {load()}"
    )


def scenario_b(n: int, concurrency: int, use_uvloop: bool) -> None:
    loop = "uvloop" if use_uvloop else "asyncio"
    print(
        f"(b) no limit: outbox rate 0, {concurrency} sends in flight, PTB limiter off, "
        f"stand-in unlimited, {loop} loop"
    )
    # send_timeout 20 s (PTB's own timeouts are 5 s each) keeps a slow batch within the lease
    config = OutboxConfig(
        rate=0, per_recipient_seconds=0, concurrency=concurrency, send_timeout=20, **QUIET_OFF
    )

    def one(name: str, url: str) -> None:
        db, _ = populate(url, n)
        standin = StandInProcess()
        standin.start()
        try:
            cpu, server_cpu = time.process_time(), standin.cpu()
            elapsed = run(deliver(db, standin, config, limited=False), use_uvloop)
            cpu, server_cpu = time.process_time() - cpu, standin.cpu() - server_cpu
        finally:
            standin.stop()
        got = received(standin, n)
        db.dispose()
        print(
            f"  {name}: {n} messages in {elapsed:.1f} s = {n / elapsed:,.0f} msg/s "
            f"(CPU a message: app {1000 * cpu / n:.2f} ms, stand-in {1000 * server_cpu / n:.2f} ms); "
            f"lost {got['lost']:.0f}; duplicates {got['duplicates']:.0f}; load {load()}"
        )

    with tempfile.TemporaryDirectory() as folder:
        one("sqlite", f"sqlite:///{folder}/broadcast.db")
    try:
        with postgres_server() as server, fresh_database(server) as url:
            one("postgresql", url)
    except PostgresUnavailable as exc:
        print(f"  postgresql skipped: {exc}")


def child_worker(url: str, base_url: str, token: str) -> None:
    """(c)'s worker process: sends until killed (or until nothing is left)."""
    standin = StandInProcess(token)
    standin.port = int(base_url.split(":")[2].split("/")[0])
    db = Database(url)
    config = OutboxConfig(rate=0, per_recipient_seconds=0, lease_seconds=10, send_timeout=2, **QUIET_OFF)
    asyncio.run(deliver(db, standin, config, limited=False))


def scenario_c(n: int) -> None:
    print("(c) worker process killed (SIGKILL) at about half way, then started again (lease 10 s)")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/broadcast.db"
        db, _ = populate(url, n)
        standin = StandInProcess()
        standin.start()
        command = [sys.executable, __file__, "--child", url, standin.base_url, standin.token]
        try:
            started = time.perf_counter()
            first = subprocess.Popen(command, cwd=ROOT)
            while standin.sent() < n // 2 + 37:  # mid-batch, not at its end
                time.sleep(0.01)
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
            at_kill = received(standin, n)["delivered"]
            stuck = counts(db, delivery.KIND)["sending"]
            second = subprocess.Popen(command, cwd=ROOT)
            second.wait(timeout=600)
            elapsed = time.perf_counter() - started
        finally:
            standin.stop()
        got = received(standin, n)
        report = counts(db, delivery.KIND)
        db.dispose()
    print(
        f"  killed after {at_kill:.0f} deliveries with {stuck} rows left 'sending' (batch 100); "
        f"restarted; total {elapsed:.1f} s"
    )
    print(
        f"  every citizen received it: {got['lost'] == 0} (lost {got['lost']:.0f}); "
        f"duplicates {got['duplicates']:.0f} (bound: the in-flight batch, 100); "
        f"outbox sent {report['sent']}; load {load()}"
    )


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child_worker(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=10_000)
    parser.add_argument("--only", nargs="+", choices=["a", "b", "c"], default=["a", "b", "c"])
    parser.add_argument("--rates", type=float, nargs="+", default=[OutboxConfig().rate])
    parser.add_argument("--limit", type=float, default=30.0, help="the stand-in's messages a second in (a)")
    parser.add_argument("--concurrency", type=int, default=8, help="sends in flight in (b)")
    parser.add_argument("--uvloop", action="store_true", help="run the worker on uvloop")
    args = parser.parse_args()
    print(f"load average {load()}")
    if "a" in args.only:
        for rate in args.rates:
            scenario_a(args.citizens, rate, args.limit, args.uvloop)
    if "b" in args.only:
        scenario_b(args.citizens, args.concurrency, args.uvloop)
    if "c" in args.only:
        scenario_c(args.citizens)


if __name__ == "__main__":
    main()
