"""Campaign delivery through the real outbox worker (fake sender, fake clock): idempotent runs
across a restart, pause/resume/cancel, unsubscribe mid-campaign, quiet hours."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import func, select

from bot.campaigns import delivery, service
from bot.campaigns.models import CampaignRun
from bot.outbox import service as outbox
from bot.outbox.models import OutboxMessage
from bot.outbox.worker import OutboxConfig, OutboxWorker
from bot.storage.db import Database
from bot.subscriptions import service as subscriptions
from tests.support.campaigns import DAY, WARD_BLOCKS, _campaigns_template, _db, citizens, staff  # noqa: F401 - fixtures
from tests.support.outbox import FakeClock, RecordingSender, drain

TEXT = "Phường nhắc: kích hoạt VNeID mức 2."


def campaign(db: Database, blocks=("khoi_1",), **extra) -> int:
    admin = staff(db, "quan_tri", "admin")
    info = service.create(
        db, admin, title="T", text=TEXT, blocks=list(blocks), ward_blocks=WARD_BLOCKS, **extra
    )
    service.confirm(db, admin, info.id)
    return info.id


def worker(db: Database, clock: FakeClock, sender: RecordingSender, **overrides: object) -> OutboxWorker:
    values = {"rate": 0, "per_recipient_seconds": 0, "batch_size": 50, **overrides}
    w = OutboxWorker(
        db,
        "Asia/Ho_Chi_Minh",
        OutboxConfig(**values),
        senders={"telegram": sender},
        clock=clock,
        sleep=clock.sleep,
    )
    w.add_filter("campaign", delivery.campaign_filter(db))
    return w


def rows(db: Database) -> list[OutboxMessage]:
    with db.session() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def admin_of(db: Database):
    from bot.staff.accounts import Staff
    from bot.staff.models import StaffUser

    with db.session() as session:
        return Staff.of(session.scalar(select(StaffUser).where(StaffUser.username == "quan_tri")))


# --- runs ---------------------------------------------------------------------------------------


async def test_run_enqueues_one_row_per_recipient_and_delivers(db: Database) -> None:
    ids = citizens(db, "khoi_1", 20)
    citizens(db, "khoi_2", 5)
    cid = campaign(db)
    assert delivery.run_campaign(db, cid, DAY) == 20
    assert {r.ref for r in rows(db)} == {f"{cid}:1"} and {r.kind for r in rows(db)} == {"campaign"}
    clock = FakeClock(DAY)
    sender = RecordingSender(clock=clock)
    await drain(worker(db, clock, sender), clock)
    assert sorted(e for _t, e, _m in sender.calls) == sorted(ids)
    assert sender.calls[0][2] == {"text": TEXT, "buttons": []}
    assert delivery.maintain(db, clock()) == {cid: "done"}
    assert service.report(db, admin_of(db), cid)["sent"] == 20


def test_idempotent_enqueue_across_a_simulated_restart(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = citizens(db, "khoi_1", 30)
    cid = campaign(db)
    real = outbox.enqueue_many

    def crash_half_way(database, recipients, message, **kw):
        real(database, recipients[:12], message, **kw)  # committed, then the process "dies"
        raise SystemExit("killed mid-enqueue")

    monkeypatch.setattr(outbox, "enqueue_many", crash_half_way)
    with pytest.raises(SystemExit):
        delivery.run_campaign(db, cid, DAY)
    assert len(rows(db)) == 12
    monkeypatch.setattr(outbox, "enqueue_many", real)
    # restart: the scheduler fires the job again (misfire/coalesce), same run, same ref
    assert delivery.run_campaign(db, cid, DAY + dt.timedelta(minutes=5)) == 18
    assert delivery.run_campaign(db, cid, DAY + dt.timedelta(minutes=6)) == 0  # already done
    per_recipient = Counter(r.external_id for r in rows(db))
    assert sorted(per_recipient) == sorted(ids) and set(per_recipient.values()) == {1}
    with db.session() as session:
        run = session.scalar(select(CampaignRun))
        assert (run.run_no, run.recipients) == (1, 30) and run.enqueued_at is not None
        assert session.scalar(select(func.count()).select_from(CampaignRun)) == 1


def test_a_crash_after_enqueue_before_marking_the_run_adds_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    citizens(db, "khoi_1", 10)
    cid = campaign(db)
    real = outbox.counts
    monkeypatch.setattr(outbox, "counts", lambda *a, **k: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        delivery.run_campaign(db, cid, DAY)
    monkeypatch.setattr(outbox, "counts", real)
    assert delivery.run_campaign(db, cid, DAY) == 0
    assert len(rows(db)) == 10


def test_draft_paused_and_cancelled_campaigns_do_not_run(db: Database) -> None:
    citizens(db, "khoi_1", 3)
    admin = staff(db, "quan_tri", "admin")
    draft = service.create(db, admin, title="T", text=TEXT, blocks=["khoi_1"], ward_blocks=WARD_BLOCKS)
    assert delivery.run_campaign(db, draft.id, DAY) == 0
    service.confirm(db, admin, draft.id)
    service.pause(db, admin, draft.id)
    assert delivery.run_campaign(db, draft.id, DAY) == 0
    service.resume(db, admin, draft.id)
    service.cancel(db, admin, draft.id)
    assert delivery.run_campaign(db, draft.id, DAY) == 0
    assert rows(db) == []


# --- pause, resume, cancel ------------------------------------------------------------------------


async def test_pause_holds_resume_releases(db: Database) -> None:
    ids = citizens(db, "khoi_1", 10)
    cid = campaign(db)
    delivery.run_campaign(db, cid, DAY)
    clock = FakeClock(DAY)
    sender = RecordingSender(clock=clock)
    w = worker(db, clock, sender, batch_size=4)
    await w.run_once()
    assert len(sender.calls) == 4
    admin = admin_of(db)
    service.pause(db, admin, cid)
    assert service.report(db, admin, cid)["held"] == 6
    for _ in range(3):
        clock.advance(3600)
        assert await w.run_once() == 0
    assert len(sender.calls) == 4  # nothing while paused
    service.resume(db, admin, cid)
    await drain(w, clock)
    assert sorted(e for _t, e, _m in sender.calls) == sorted(ids)
    assert service.report(db, admin, cid)["sent"] == 10


async def test_rows_claimed_while_paused_are_held_again_by_the_filter(db: Database) -> None:
    citizens(db, "khoi_1", 5)
    cid = campaign(db)
    delivery.run_campaign(db, cid, DAY)
    admin = admin_of(db)
    with db.session() as session:  # paused, but its rows not held yet (the race pause/claim)
        from bot.campaigns.models import Campaign

        session.get(Campaign, cid).status = "paused"
    clock = FakeClock(DAY)
    sender = RecordingSender(clock=clock)
    await worker(db, clock, sender).run_once()
    assert sender.calls == [] and service.report(db, admin, cid)["held"] == 5
    with db.session() as session:
        session.get(Campaign, cid).status = "running"  # resumed, release raced: maintain fixes it
    delivery.maintain(db, DAY)
    await drain(worker(db, clock, sender), clock)
    assert len(sender.calls) == 5


async def test_cancel_stops_what_is_queued(db: Database) -> None:
    citizens(db, "khoi_1", 10)
    cid = campaign(db)
    delivery.run_campaign(db, cid, DAY)
    clock = FakeClock(DAY)
    sender = RecordingSender(clock=clock)
    w = worker(db, clock, sender, batch_size=3)
    await w.run_once()
    admin = admin_of(db)
    service.cancel(db, admin, cid)
    await drain(w, clock)
    report = service.report(db, admin, cid)
    assert len(sender.calls) == 3 and report["sent"] == 3 and report["cancelled"] == 7
    assert report["status"] == "cancelled"


# --- unsubscribe mid-campaign ------------------------------------------------------------------------


async def test_citizens_who_unsubscribe_mid_campaign_get_nothing_more(db: Database) -> None:
    ids = citizens(db, "khoi_1", 9)
    cid = campaign(db)
    delivery.run_campaign(db, cid, DAY)
    clock = FakeClock(DAY)
    sender = RecordingSender(clock=clock)
    w = worker(db, clock, sender, batch_size=3)
    await w.run_once()
    subscriptions.unsubscribe(db, "telegram", ids[5], "user asked")  # via /stop, or a 403
    subscriptions.unsubscribe(db, "telegram", ids[8], "bot was blocked")
    await drain(w, clock)
    got = [e for _t, e, _m in sender.calls]
    assert ids[5] not in got and ids[8] not in got and len(got) == 7
    report = service.report(db, admin_of(db), cid)
    assert report["skipped"] == 2 and report["sent"] == 7
    assert {r.reason for r in rows(db) if r.status == "skipped"} == {"unsubscribed"}


# --- quiet hours ----------------------------------------------------------------------------------


async def test_a_campaign_started_at_night_waits_for_the_morning(db: Database) -> None:
    ids = citizens(db, "khoi_1", 5)
    cid = campaign(db)
    night = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)  # 22:00 in Hanoi
    delivery.run_campaign(db, cid, night)
    clock = FakeClock(night)
    sender = RecordingSender(clock=clock)
    w = worker(db, clock, sender)  # default quiet hours 21:00-07:00
    await w.run_once()
    assert sender.calls == []
    await drain(w, clock)
    morning = dt.datetime(2026, 12, 2, 0, 0, tzinfo=dt.UTC)  # 07:00 in Hanoi
    assert sorted(e for _t, e, _m in sender.calls) == sorted(ids)
    assert all(t >= morning for t, _e, _m in sender.calls)
