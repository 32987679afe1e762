"""The outbox on SQLite: enqueue, claim, recovery and the worker, with fake senders and a fake clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from bot.outbox import service
from bot.outbox.models import OutboxMessage
from bot.outbox.service import cancel, claim, counts, enqueue, enqueue_many, finish, recover_stale
from bot.outbox.types import SendResult
from bot.outbox.worker import OutboxConfig, OutboxWorker
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from tests.support.outbox import FakeClock, RecordingSender, drain

# 10:00 in Hanoi (UTC+7): outside quiet hours.
DAY = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
MSG = {"text": "Nhắc lịch hẹn", "buttons": []}


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def config(**overrides: object) -> OutboxConfig:
    values = {"rate": 0, "per_recipient_seconds": 0, "batch_size": 50, "backoff_seconds": 30}
    values.update(overrides)
    return OutboxConfig(**values)


def make_worker(
    db: Database, clock: FakeClock, *senders: RecordingSender, **overrides: object
) -> OutboxWorker:
    return OutboxWorker(
        db,
        "Asia/Ho_Chi_Minh",
        config(**overrides),
        senders={s.channel: s for s in senders},
        clock=clock,
        sleep=clock.sleep,
        worker_id="w-test",
    )


def rows(db: Database) -> list[OutboxMessage]:
    with db.session() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def add(db: Database, n: int, *, channel: str = "telegram", kind: str = "campaign", ref: str = "c1") -> None:
    for i in range(n):
        enqueue(db, channel, f"u{i}", MSG, kind=kind, ref=ref, not_before=DAY - dt.timedelta(minutes=1))


# --- enqueue, cancel, counts ------------------------------------------------------------------


def test_migration_creates_outbox_with_claim_index(db: Database) -> None:
    indexes = {ix["name"] for ix in inspect(db.engine).get_indexes("outbox")}
    assert {"ix_outbox_claim", "ix_outbox_lease"} <= indexes


def test_enqueue_is_idempotent_per_kind_ref_and_recipient(db: Database) -> None:
    first = enqueue(db, "telegram", "42", MSG, kind="reminder", ref="appt-7")
    again = enqueue(db, "telegram", "42", {"text": "khác"}, kind="reminder", ref="appt-7")
    other_ref = enqueue(db, "telegram", "42", MSG, kind="reminder", ref="appt-8")
    other_channel = enqueue(db, "zalo", "42", MSG, kind="reminder", ref="appt-7")
    assert first == again
    assert len({first, other_ref, other_channel}) == 3
    assert rows(db)[0].message == MSG  # the duplicate changed nothing
    # Without a ref there is no key to deduplicate on.
    assert enqueue(db, "web", "x", MSG, kind="notice") != enqueue(db, "web", "x", MSG, kind="notice")


def test_enqueue_many_adds_only_new_recipients(db: Database) -> None:
    recipients = [("telegram", str(i)) for i in range(30)]
    assert enqueue_many(db, recipients[:20], MSG, kind="campaign", ref="c9") == 20
    assert enqueue_many(db, recipients, MSG, kind="campaign", ref="c9") == 10
    assert counts(db, "campaign", "c9")["queued"] == 30


def test_enqueue_refuses_naive_not_before(db: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        enqueue(db, "telegram", "1", MSG, kind="reminder", not_before=dt.datetime(2026, 1, 1))


async def test_cancel_stops_queued_rows_only_and_counts_report_every_status(db: Database) -> None:
    add(db, 5)
    clock = FakeClock(DAY)
    worker = make_worker(db, clock, RecordingSender(clock=clock), batch_size=2)
    assert await worker.run_once() == 2
    assert cancel(db, "campaign", "c1") == 3
    assert cancel(db, "campaign", "c1") == 0
    report = counts(db, "campaign", "c1")
    assert report == {
        "queued": 0,
        "sending": 0,
        "sent": 2,
        "failed": 0,
        "blocked": 0,
        "skipped": 0,
        "cancelled": 3,
    }
    assert await worker.run_once() == 0


# --- claiming ---------------------------------------------------------------------------------


def test_two_workers_claiming_in_parallel_never_share_a_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    upgrade(url)
    setup = Database(url)
    enqueue_many(setup, [("telegram", str(i)) for i in range(600)], MSG, kind="campaign", ref="big")
    setup.dispose()
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    taken: dict[str, list[int]] = {"a": [], "b": []}
    sizes: list[int] = []
    start, first_claims = threading.Barrier(2), threading.Barrier(2)

    def work(name: str) -> None:
        database = Database(url)  # its own engine and connections, as another process would have
        start.wait()
        while batch := claim(database, name, 7, now, ["telegram"]):
            sizes.append(len(batch))
            taken[name].extend(r.id for r in batch)
            outcomes = [service.Outcome(r.id, "sent", sent_at=now) for r in batch]
            finish(database, name, batch, outcomes)
            if len(taken[name]) == len(batch):  # after its first batch, wait for the other's:
                first_claims.wait()  # neither can drain the queue alone before the other starts
        database.dispose()

    threads = [threading.Thread(target=work, args=(n,)) for n in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert taken["a"] and taken["b"], "both workers should have taken part"
    assert not set(taken["a"]) & set(taken["b"])
    assert max(sizes) == 7  # a claim takes at most its limit
    assert len(taken["a"]) + len(taken["b"]) == 600
    check = Database(url)
    assert counts(check, "campaign", "big")["sent"] == 600
    check.dispose()


async def test_two_workers_in_one_loop_send_each_row_exactly_once(db: Database) -> None:
    add(db, 300)
    clock = FakeClock(DAY)
    sender = RecordingSender(clock=clock)
    second = Database(db.url)
    workers = [
        make_worker(db, clock, sender, batch_size=16),
        make_worker(second, clock, sender, batch_size=16),
    ]
    workers[1].worker_id = "w-other"
    await asyncio.gather(*(drain(w, clock) for w in workers))
    second.dispose()
    sent_to = Counter(external_id for _, external_id, _ in sender.calls)
    assert len(sent_to) == 300 and set(sent_to.values()) == {1}
    assert counts(db, "campaign", "c1")["sent"] == 300


def test_claim_takes_only_due_rows_of_registered_channels_in_order(db: Database) -> None:
    enqueue(db, "telegram", "later", MSG, kind="reminder", ref="1", not_before=DAY + dt.timedelta(hours=1))
    enqueue(db, "zalo", "z", MSG, kind="reminder", ref="2", not_before=DAY - dt.timedelta(hours=1))
    enqueue(db, "telegram", "b", MSG, kind="reminder", ref="3", not_before=DAY - dt.timedelta(minutes=1))
    enqueue(db, "telegram", "a", MSG, kind="reminder", ref="4", not_before=DAY - dt.timedelta(minutes=2))
    batch = claim(db, "w", 10, DAY, ["telegram"])
    assert [r.external_id for r in batch] == ["a", "b"]
    assert claim(db, "w", 10, DAY, ["telegram"]) == []


def test_a_worker_that_lost_its_lease_cannot_overwrite_the_new_owner(db: Database) -> None:
    add(db, 1)
    old = claim(db, "old", 10, DAY, ["telegram"])
    later = DAY + dt.timedelta(minutes=10)
    assert recover_stale(db, later, dt.timedelta(minutes=5), max_attempts=5) == 1
    new = claim(db, "new", 10, later, ["telegram"])
    assert [r.id for r in new] == [r.id for r in old]
    assert finish(db, "old", old, [service.Outcome(old[0].id, "failed", "late")]) == 0
    (row,) = rows(db)
    assert (row.status, row.claimed_by) == ("sending", "new")


# --- crash recovery ---------------------------------------------------------------------------


async def test_rows_left_sending_by_a_crashed_worker_are_sent_after_the_lease(db: Database) -> None:
    add(db, 10)
    in_flight = claim(db, "crashed", 4, DAY, ["telegram"])  # the worker dies here
    assert len(in_flight) == 4
    clock = FakeClock(DAY + dt.timedelta(seconds=30))
    sender = RecordingSender(clock=clock)
    worker = make_worker(db, clock, sender, lease_seconds=120)
    assert await worker.recover_if_due() == 0  # lease not expired: still someone else's
    await drain(worker, clock)
    assert counts(db, "campaign", "c1")["sending"] == 4 and len(sender.calls) == 6

    clock.advance(120)  # the lease expires
    assert await worker.recover_if_due() == 4
    await drain(worker, clock)
    report = counts(db, "campaign", "c1")
    assert report["sent"] == 10 and report["sending"] == 0
    assert len(sender.calls) == 10  # nothing lost; the in-flight 4 were re-sent once
    recovered = [r for r in rows(db) if r.id in {c.id for c in in_flight}]
    assert all(r.attempts == 2 for r in recovered)  # the lost try counts


def test_a_row_that_keeps_killing_its_worker_ends_failed(db: Database) -> None:
    add(db, 1)
    now = DAY
    for _ in range(3):
        claim(db, "doomed", 1, now, ["telegram"])
        now += dt.timedelta(minutes=10)
        recover_stale(db, now, dt.timedelta(minutes=5), max_attempts=3)
    (row,) = rows(db)
    assert row.status == "failed" and "lease expired" in row.reason and row.attempts == 3


# --- the worker: results, retries, pacing ---------------------------------------------------


async def test_worker_marks_sent_with_time_and_attempt(db: Database) -> None:
    add(db, 3)
    clock = FakeClock(DAY)
    sender = RecordingSender(clock=clock)
    await drain(make_worker(db, clock, sender), clock)
    assert [(c[1], c[2]) for c in sender.calls] == [("u0", MSG), ("u1", MSG), ("u2", MSG)]
    for row in rows(db):
        assert (row.status, row.attempts, row.sent_at, row.claimed_by) == ("sent", 1, DAY, None)


async def test_blocked_skipped_and_failed_are_final_with_their_reason(db: Database) -> None:
    add(db, 4)
    answers = {
        "u0": SendResult("blocked", "bot was blocked"),
        "u1": SendResult("skipped", "outside 48h window"),
        "u2": SendResult("failed", "HTTP 400 chat not found"),
        "u3": SendResult("sent"),
    }
    clock = FakeClock(DAY)
    sender = RecordingSender(clock=clock, answer=lambda ext, _m: answers[ext])
    await drain(make_worker(db, clock, sender), clock)
    assert [(r.status, r.reason, r.attempts) for r in rows(db)] == [
        ("blocked", "bot was blocked", 1),
        ("skipped", "outside 48h window", 1),
        ("failed", "HTTP 400 chat not found", 1),
        ("sent", "", 1),
    ]
    assert len(sender.calls) == 4  # final states are never retried


async def test_retry_after_is_honoured_and_pauses_the_channel(db: Database) -> None:
    add(db, 3)
    clock = FakeClock(DAY)
    refused = set()

    def answer(external_id: str, _message: dict) -> SendResult:
        if not refused:
            refused.add(external_id)
            return SendResult("retry", "HTTP 429", retry_after=7)
        return SendResult("sent")

    sender = RecordingSender(clock=clock, answer=answer)
    worker = make_worker(db, clock, sender, concurrency=1, send_timeout=1)
    assert await worker.run_once() == 3
    first, *others = rows(db)
    assert (first.status, first.attempts, first.not_before) == ("queued", 1, DAY + dt.timedelta(seconds=7))
    assert first.reason == "HTTP 429"
    # The rest of the batch waited with it instead of hammering a rate-limited channel.
    assert all(r.status == "queued" and r.not_before >= DAY + dt.timedelta(seconds=7) for r in others)
    assert all(r.attempts == 0 for r in others)
    assert await worker.run_once() == 0  # nothing due before the wait is over
    clock.advance(7)
    await drain(worker, clock)
    assert all(r.status == "sent" for r in rows(db))
    assert min(c[0] for c in sender.calls[1:]) >= DAY + dt.timedelta(seconds=7)


async def test_network_errors_back_off_exponentially_then_fail(db: Database) -> None:
    add(db, 1)
    clock = FakeClock(DAY)

    def broken(_id: str, _message: dict) -> SendResult:
        raise ConnectionError("network down")

    sender = RecordingSender(clock=clock, answer=broken)
    await drain(make_worker(db, clock, sender, max_attempts=4, backoff_seconds=10), clock)
    times = [c[0] for c in sender.calls]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(times)] == [10, 20, 40]
    (row,) = rows(db)
    assert row.status == "failed" and row.attempts == 4
    assert row.reason == "ConnectionError (gave up after 4 attempts)"


async def test_retry_results_without_a_wait_use_backoff_too(db: Database) -> None:
    add(db, 1)
    clock = FakeClock(DAY)
    results = iter([SendResult("retry", "HTTP 502"), SendResult("sent")])
    sender = RecordingSender(clock=clock, answer=lambda _i, _m: next(results))
    await drain(make_worker(db, clock, sender, backoff_seconds=30), clock)
    assert (sender.calls[1][0] - sender.calls[0][0]).total_seconds() == 30
    assert rows(db)[0].status == "sent" and rows(db)[0].attempts == 2


async def test_slow_sends_time_out_and_are_retried(db: Database) -> None:
    add(db, 1)
    calls = []

    class Hanging:
        channel = "telegram"

        async def send(self, external_id: str, message: dict) -> SendResult:
            calls.append(external_id)
            if len(calls) == 1:
                await asyncio.sleep(10)
            return SendResult("sent")

    clock = FakeClock(DAY)
    worker = OutboxWorker(
        db, config=config(send_timeout=0.05), senders={"telegram": Hanging()}, clock=clock, sleep=clock.sleep
    )
    await drain(worker, clock)
    (row,) = rows(db)
    assert (row.status, row.attempts, len(calls)) == ("sent", 2, 2)


async def test_rows_of_a_channel_without_sender_wait_for_one(db: Database) -> None:
    add(db, 2, channel="zalo")
    clock = FakeClock(DAY)
    worker = make_worker(db, clock, RecordingSender("telegram", clock=clock))
    assert await worker.run_once() == 0
    zalo = RecordingSender("zalo", clock=clock)
    worker.register(zalo)
    await drain(worker, clock)
    assert len(zalo.calls) == 2


async def test_global_rate_and_per_recipient_spacing_are_respected(db: Database) -> None:
    for i in range(20):
        enqueue(db, "telegram", f"u{i}", MSG, kind="campaign", ref="c", not_before=DAY)
    for n in range(3):  # one recipient with three messages due at once
        enqueue(db, "telegram", "busy", MSG, kind="reminder", ref=str(n), not_before=DAY)
    clock = FakeClock(DAY)
    sender = RecordingSender(clock=clock)
    await drain(
        make_worker(db, clock, sender, rate=10, per_recipient_seconds=1.0, concurrency=1, send_timeout=1),
        clock,
    )
    times = [c[0] for c in sender.calls]
    assert len(times) == 23
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.1 - 1e-6  # never faster than 10 a second overall
    busy = [c[0] for c in sender.calls if c[1] == "busy"]
    assert all((b - a).total_seconds() >= 1.0 - 1e-6 for a, b in itertools.pairwise(busy))
    offsets = [(t - DAY).total_seconds() for t in times]
    # 21 sends 0.1 s apart, then the busy recipient's 2nd and 3rd message a second apart each.
    assert offsets == pytest.approx([i / 10 for i in range(21)] + [3.0, 4.0], abs=1e-3)


# --- quiet hours ------------------------------------------------------------------------------


async def test_quiet_hours_hold_campaigns_until_the_morning(db: Database) -> None:
    evening = dt.datetime(2026, 12, 1, 15, 30, tzinfo=dt.UTC)  # 22:30 in Hanoi
    enqueue(db, "telegram", "c", MSG, kind="campaign", ref="x", not_before=evening)
    enqueue(db, "telegram", "r", MSG, kind="reminder", ref="y", not_before=evening)
    clock = FakeClock(evening)
    sender = RecordingSender(clock=clock)
    worker = make_worker(db, clock, sender, quiet_exempt="reminder")
    assert await worker.run_once() == 2
    assert [c[1] for c in sender.calls] == ["r"]  # the exempt kind goes at night
    held = rows(db)[0]
    morning = dt.datetime(2026, 12, 2, 0, 0, tzinfo=dt.UTC)  # 07:00 in Hanoi
    assert (held.status, held.not_before, held.attempts, held.reason) == ("queued", morning, 0, "quiet hours")
    await drain(worker, clock)
    assert [c[1] for c in sender.calls] == ["r", "c"] and sender.calls[1][0] == morning


async def test_quiet_hours_can_be_switched_off(db: Database) -> None:
    night = dt.datetime(2026, 12, 1, 18, 0, tzinfo=dt.UTC)  # 01:00 in Hanoi
    enqueue(db, "telegram", "c", MSG, kind="campaign", ref="x", not_before=night)
    clock = FakeClock(night)
    sender = RecordingSender(clock=clock)
    await drain(make_worker(db, clock, sender, quiet_start="00:00", quiet_end="00:00"), clock)
    assert sender.calls[0][0] == night


# --- shutdown ---------------------------------------------------------------------------------


ALWAYS = {"quiet_start": "00:00", "quiet_end": "00:00"}  # real-clock tests run at any hour


def add_due_now(db: Database, n: int) -> None:
    enqueue_many(db, [("telegram", f"u{i}") for i in range(n)], MSG, kind="campaign", ref="c1")


async def test_stop_finishes_in_flight_sends_and_puts_the_rest_back(db: Database) -> None:
    add_due_now(db, 40)
    started = asyncio.Event()

    class Slow:
        channel = "telegram"
        sent: list[str] = []  # noqa: RUF012 - a test double

        async def send(self, external_id: str, message: dict) -> SendResult:
            started.set()
            await asyncio.sleep(0.02)
            self.sent.append(external_id)
            return SendResult("sent")

    sender = Slow()
    worker = OutboxWorker(db, config=config(rate=20, batch_size=40, **ALWAYS), senders={"telegram": sender})
    worker.start()
    await asyncio.wait_for(started.wait(), 5)
    await worker.stop(timeout=5)
    assert not worker.running
    report = counts(db, "campaign", "c1")
    assert report["sending"] == 0
    assert report["sent"] == len(sender.sent) and 0 < report["sent"] < 40
    assert report["queued"] == 40 - report["sent"]
    assert all(r.attempts == (1 if r.status == "sent" else 0) for r in rows(db))


async def test_stop_after_timeout_cancels_and_releases_in_flight_rows(db: Database) -> None:
    add_due_now(db, 3)
    started = asyncio.Event()

    class Stuck:
        channel = "telegram"

        async def send(self, external_id: str, message: dict) -> SendResult:
            started.set()
            await asyncio.sleep(60)
            return SendResult("sent")

    worker = OutboxWorker(db, config=config(send_timeout=60, **ALWAYS), senders={"telegram": Stuck()})
    worker.start()
    await asyncio.wait_for(started.wait(), 5)
    await worker.stop(timeout=0.2)
    report = counts(db, "campaign", "c1")
    assert report["queued"] == 3 and report["sending"] == 0


async def test_telegram_groups_get_one_message_every_three_seconds(db: Database) -> None:
    for n in range(3):
        enqueue(db, "telegram", "-1001234", MSG, kind="notice", ref=str(n), not_before=DAY)
    clock = FakeClock(DAY)
    sender = RecordingSender(clock=clock)
    await drain(make_worker(db, clock, sender, per_recipient_seconds=1.0), clock)
    assert [(c[0] - DAY).total_seconds() for c in sender.calls] == [0, 3, 6]


async def test_in_flight_window_concurrency_sends_and_one_mark_per_batch(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window docs/outbox.md describes: at most `concurrency` sends at once, and the rows of
    a batch (at most batch_size: what a crash can re-send) marked together, each exactly once."""
    add(db, 45)
    clock = FakeClock(DAY)
    in_flight = peak = 0

    class Slow:
        channel = "telegram"

        async def send(self, external_id: str, message: dict) -> SendResult:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.001)
            in_flight -= 1
            return SendResult("sent")

    marks: list[list[int]] = []
    real_finish = service.finish

    def recording_finish(db_: Database, worker: str, claimed: list, outcomes: list) -> int:
        outcomes = list(outcomes)
        marks.append([o.id for o in outcomes])
        return real_finish(db_, worker, claimed, outcomes)

    monkeypatch.setattr(service, "finish", recording_finish)
    worker = OutboxWorker(
        db, config=config(batch_size=20, concurrency=4), senders={"telegram": Slow()}, clock=clock
    )
    while await worker.run_once():
        pass
    assert peak == 4
    assert [len(batch) for batch in marks] == [20, 20, 5]  # one finish (one transaction) a batch
    marked = Counter(row_id for batch in marks for row_id in batch)
    assert len(marked) == 45 and set(marked.values()) == {1}
    assert counts(db, "campaign", "c1")["sent"] == 45
