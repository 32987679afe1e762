"""Outbox throughput: how fast the worker drains 10,000 rows through a no-op sender.

    .venv/bin/python tests/bench/outbox.py [--rows 10000] [--workers 1 4] [--batch 100]

Runs on SQLite (a temporary file) and, when PostgreSQL is available
(DATABASE_URL_POSTGRES or the Debian binaries, see tests/support/postgres.py), on
PostgreSQL too. The rate limit is off (rate=0) to measure the queue itself: in
production the configured rate (25/s by default) is the ceiling, far below these
numbers. `--rated N` also sends N rows at the default rate to show the pacing holds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.outbox.service import counts, enqueue_many
from bot.outbox.types import SendResult
from bot.outbox.worker import OutboxConfig, OutboxWorker
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from tests.support.postgres import PostgresUnavailable, fresh_database, postgres_server

MESSAGE = {"text": "Phường thông báo: kích hoạt định danh điện tử mức 2.", "buttons": []}


class NoopSender:
    channel = "telegram"

    def __init__(self) -> None:
        self.count = 0

    async def send(self, external_id: str, message: dict) -> SendResult:
        self.count += 1
        return SendResult("sent")


async def drain(url: str, rows: int, workers: int, config: OutboxConfig, ref: str) -> tuple[float, float]:
    """Enqueue `rows` and let `workers` workers (each its own engine) send them; returns seconds."""
    setup = Database(url)
    started = time.perf_counter()
    enqueue_many(setup, [("telegram", f"user{i}") for i in range(rows)], MESSAGE, kind="bench", ref=ref)
    enqueued = time.perf_counter() - started
    sender = NoopSender()
    databases = [Database(url) for _ in range(workers)]
    pool = [OutboxWorker(db, config=config, senders={"telegram": sender}) for db in databases]

    async def run(worker: OutboxWorker) -> None:
        while await worker.run_once():
            pass

    started = time.perf_counter()
    await asyncio.gather(*(run(w) for w in pool))
    elapsed = time.perf_counter() - started
    report = counts(setup, "bench", ref)
    if report["sent"] != rows or sender.count != rows:
        raise SystemExit(f"lost or duplicated rows: {report}, sender saw {sender.count}")
    for db in [setup, *databases]:
        db.dispose()
    return enqueued, elapsed


def bench(name: str, url: str, args: argparse.Namespace) -> None:
    upgrade(url)
    unlimited = OutboxConfig(
        rate=0, per_recipient_seconds=0, batch_size=args.batch, quiet_start="00:00", quiet_end="00:00"
    )
    for workers in args.workers:
        enqueued, elapsed = asyncio.run(drain(url, args.rows, workers, unlimited, f"{name}-{workers}"))
        print(
            f"{name:10} workers={workers} batch={args.batch}: {args.rows} rows sent in {elapsed:.2f} s "
            f"= {args.rows / elapsed:,.0f} msg/s (enqueue_many: {args.rows / enqueued:,.0f} rows/s)"
        )
    if args.rated:
        rated = OutboxConfig(batch_size=args.batch, quiet_start="00:00", quiet_end="00:00")
        _, elapsed = asyncio.run(drain(url, args.rated, 1, rated, f"{name}-rated"))
        print(
            f"{name:10} rate limit {rated.rate:g}/s: {args.rated} rows in {elapsed:.2f} s "
            f"= {args.rated / elapsed:.1f} msg/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rated", type=int, default=0, help="also send N rows at the default rate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bench("sqlite", f"sqlite:///{folder}/outbox.db", args)
    try:
        with postgres_server() as server, fresh_database(server) as url:
            bench("postgresql", url, args)
    except PostgresUnavailable as exc:
        print(f"postgresql skipped: {exc}")


if __name__ == "__main__":
    main()
