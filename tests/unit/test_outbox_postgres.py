"""The outbox on a real PostgreSQL server: SKIP LOCKED claiming shared by parallel workers.

Uses DATABASE_URL_POSTGRES when set, else starts a throwaway cluster
(tests/support/postgres.py); skips only when PostgreSQL is not installed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections import Counter

import pytest
from sqlalchemy import text

from bot.outbox.service import Outcome, claim, counts, enqueue, enqueue_many, finish, recover_stale
from bot.outbox.worker import OutboxConfig, OutboxWorker
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from tests.support import postgres
from tests.support.outbox import FakeClock, RecordingSender, drain
from tests.support.postgres import _postgres_server_url, _postgres_url  # noqa: F401 - fixtures

MSG = {"text": "Thông báo của phường", "buttons": []}
DAY = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)


def migrated(url: str) -> Database:
    upgrade(url)
    return Database(url)


def test_enqueue_is_idempotent_on_postgres(postgres_url: str) -> None:
    db = migrated(postgres_url)
    first = enqueue(db, "telegram", "1", MSG, kind="reminder", ref="a")
    assert enqueue(db, "telegram", "1", MSG, kind="reminder", ref="a") == first
    assert enqueue_many(db, [("telegram", "1"), ("telegram", "2")], MSG, kind="reminder", ref="a") == 1
    assert counts(db, "reminder", "a")["queued"] == 2
    db.dispose()


def test_parallel_workers_skip_each_others_locked_rows(postgres_url: str) -> None:
    db = migrated(postgres_url)
    enqueue_many(db, [("telegram", str(i)) for i in range(2000)], MSG, kind="campaign", ref="big")
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    names = [f"w{i}" for i in range(4)]
    taken: dict[str, list[int]] = {n: [] for n in names}
    sizes: list[int] = []
    start = threading.Barrier(len(names))

    def work(name: str) -> None:
        database = Database(postgres_url)
        start.wait()
        while batch := claim(database, name, 25, now, ["telegram"]):
            sizes.append(len(batch))
            taken[name].extend(r.id for r in batch)
            finish(database, name, batch, [Outcome(r.id, "sent", sent_at=now) for r in batch])
        database.dispose()

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for ids in taken.values() for i in ids]
    assert len(every) == len(set(every)) == 2000
    assert max(sizes) == 25  # a claim takes at most its limit
    assert sum(1 for ids in taken.values() if ids) >= 2, "claims should have been shared"
    assert counts(db, "campaign", "big")["sent"] == 2000
    db.dispose()


def test_a_locked_row_is_skipped_not_waited_for(postgres_url: str) -> None:
    db = migrated(postgres_url)
    for i in range(3):
        enqueue(db, "telegram", str(i), MSG, kind="campaign", ref="c", not_before=DAY)
    with db.engine.connect() as holder:  # another transaction holds the first row
        holder.execute(text("SELECT id FROM outbox ORDER BY id LIMIT 1 FOR UPDATE"))
        batch = claim(db, "w", 10, DAY, ["telegram"])
        assert [r.external_id for r in batch] == ["1", "2"]
        holder.rollback()
    db.dispose()


async def test_workers_on_postgres_send_each_row_once_and_recover_a_crash(postgres_url: str) -> None:
    db = migrated(postgres_url)
    for i in range(200):
        enqueue(db, "telegram", str(i), MSG, kind="campaign", ref="c", not_before=DAY)
    crashed = claim(db, "crashed", 10, DAY, ["telegram"])
    clock = FakeClock(DAY + dt.timedelta(minutes=10))
    assert recover_stale(db, clock(), dt.timedelta(minutes=5), max_attempts=5) == len(crashed) == 10
    sender = RecordingSender(clock=clock)
    config = OutboxConfig(rate=0, per_recipient_seconds=0, batch_size=20)
    others = [Database(postgres_url) for _ in range(3)]
    workers = [
        OutboxWorker(d, config=config, senders={"telegram": sender}, clock=clock, sleep=clock.sleep)
        for d in [db, *others]
    ]
    await asyncio.gather(*(drain(w, clock) for w in workers))
    assert set(Counter(ext for _, ext, _ in sender.calls).values()) == {1}
    assert counts(db, "campaign", "c")["sent"] == 200
    for d in [db, *others]:
        d.dispose()


def test_without_postgres_installed_the_skip_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(postgres.ENV, raising=False)
    monkeypatch.setattr(postgres, "find_bin_dir", lambda: None)
    with pytest.raises(postgres.PostgresUnavailable, match="make postgres"), postgres.postgres_server():
        pass
