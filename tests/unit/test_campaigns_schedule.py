"""Campaign scheduling: APScheduler jobs in the database (survive a restart), weekly runs until a
date, and relative reminder events (N days before each citizen's appointment)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import select

from bot.campaigns import delivery, jobs, service
from bot.campaigns.models import Campaign
from bot.outbox.models import OutboxMessage
from bot.scheduler import build_scheduler
from bot.storage.db import Database
from tests.support.campaigns import DAY, WARD_BLOCKS, _campaigns_template, _db, appointment, citizens, staff  # noqa: F401 - fixtures
from tests.support.outbox import FakeClock, RecordingSender, drain

WEEK = dt.timedelta(days=7)
TZ = "Asia/Ho_Chi_Minh"


def rows(db: Database) -> list[OutboxMessage]:
    with db.session() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def status(db: Database, cid: int) -> str:
    with db.session() as session:
        return session.get(Campaign, cid).status


async def test_jobs_are_stored_in_the_database_and_survive_a_restart(db: Database) -> None:
    admin = staff(db, "quan_tri", "admin")
    weekly = service.create(
        db, admin, title="T", text="x", blocks=["khoi_1"], ward_blocks=WARD_BLOCKS,
        schedule="weekly", run_at=DAY + WEEK, until=DAY + 4 * WEEK,
    )  # fmt: skip
    scheduler = build_scheduler(db, TZ)
    scheduler.start(paused=True)
    service.confirm(db, admin, weekly.id, scheduler)
    scheduler.shutdown(wait=False)

    again = build_scheduler(db, TZ)  # the app restarted
    again.start(paused=True)
    job = again.get_job(jobs.job_id(weekly.id))
    assert job is not None and job.args == (weekly.id,) and job.func is jobs.run_job
    fires, at = [], DAY
    while (at := job.trigger.get_next_fire_time(None if not fires else fires[-1], at)) is not None:
        fires.append(at)
        at = at + dt.timedelta(seconds=1)
    assert fires == [DAY + WEEK * k for k in (1, 2, 3, 4)]
    assert again.get_job("campaigns:maintain") is not None
    service.cancel(db, admin, weekly.id, again)
    assert again.get_job(jobs.job_id(weekly.id)) is None
    again.shutdown(wait=False)


def test_weekly_runs_until_the_date(db: Database) -> None:
    admin = staff(db, "quan_tri", "admin")
    ids = citizens(db, "khoi_1", 3)
    info = service.create(
        db, admin, title="T", text="x", blocks=["khoi_1"], ward_blocks=WARD_BLOCKS,
        schedule="weekly", run_at=DAY, until=DAY + 2 * WEEK + dt.timedelta(days=1),
    )  # fmt: skip
    service.confirm(db, admin, info.id)
    assert delivery.run_campaign(db, info.id, DAY - dt.timedelta(hours=1)) == 0  # not yet
    assert delivery.run_campaign(db, info.id, DAY) == 3
    assert delivery.run_campaign(db, info.id, DAY + dt.timedelta(minutes=30)) == 0  # a double fire
    citizens(db, "khoi_1", 1, start=50)  # subscribed since: in the next run
    assert delivery.run_campaign(db, info.id, DAY + WEEK) == 4
    assert delivery.run_campaign(db, info.id, DAY + 2 * WEEK) == 4
    assert delivery.run_campaign(db, info.id, DAY + 3 * WEEK) == 0  # after `until`
    assert Counter(r.ref for r in rows(db)) == {f"{info.id}:1": 3, f"{info.id}:2": 4, f"{info.id}:3": 4}
    assert Counter(r.external_id for r in rows(db))[ids[0]] == 3
    report = service.report(db, admin, info.id)
    assert report["runs"] == 3 and report["recipients"] == 11


async def test_weekly_status_between_runs_and_done_after_the_last(db: Database) -> None:
    admin = staff(db, "quan_tri", "admin")
    citizens(db, "khoi_1", 2)
    info = service.create(
        db, admin, title="T", text="x", blocks=["khoi_1"], ward_blocks=WARD_BLOCKS,
        schedule="weekly", run_at=DAY, until=DAY + WEEK,
    )  # fmt: skip
    service.confirm(db, admin, info.id)
    clock = FakeClock(DAY)
    from bot.outbox.worker import OutboxConfig, OutboxWorker

    worker = OutboxWorker(
        db, TZ, OutboxConfig(rate=0, per_recipient_seconds=0), senders={"telegram": RecordingSender()},
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    delivery.run_campaign(db, info.id, DAY)
    assert status(db, info.id) == "running"
    await drain(worker, clock)
    assert delivery.maintain(db, DAY + dt.timedelta(hours=1)) == {info.id: "scheduled"}
    delivery.run_campaign(db, info.id, DAY + WEEK)
    await drain(worker, clock)
    assert delivery.maintain(db, DAY + WEEK + dt.timedelta(hours=1)) == {info.id: "done"}


def test_relative_reminders_n_days_before_each_appointment(db: Database) -> None:
    cadre = staff(db, "can_bo_1", "cadre", ["khoi_1"])
    mine = citizens(db, "khoi_1", 3)
    other = citizens(db, "khoi_2", 1)
    info = service.create(
        db, cadre, title="Nhắc lịch hẹn", text="Anh/chị có lịch hẹn {date} lúc {time}, mã {code}.",
        blocks=["khoi_1"], ward_blocks=WARD_BLOCKS, schedule="relative", offset_days=2,
    )  # fmt: skip
    service.confirm(db, cadre, info.id)
    slot = dt.datetime(2026, 12, 4, 1, 30, tzinfo=dt.UTC)  # 08:30 in Hanoi, 3 days after DAY
    a1 = appointment(db, mine[0], slot, code="AAA111")
    appointment(db, mine[1], slot + dt.timedelta(days=10), code="BBB222")  # too far ahead
    appointment(db, other[0], slot, code="CCC333")  # another block: not this cadre's campaign
    appointment(db, mine[2], DAY - dt.timedelta(days=1), code="DDD444")  # past
    assert delivery.run_campaign(db, info.id, DAY, TZ) == 1
    assert delivery.run_campaign(db, info.id, DAY + dt.timedelta(minutes=15), TZ) == 0  # idempotent
    [row] = rows(db)
    assert row.external_id == mine[0] and row.ref == f"{info.id}:a{a1}@202612040130"
    assert row.not_before == slot - dt.timedelta(days=2)
    assert row.message["text"] == "Anh/chị có lịch hẹn 04/12/2026 lúc 08:30, mã AAA111."
    assert status(db, info.id) == "running"

    # rescheduled: a new reminder for the new slot; the old one is dropped at send time
    from bot.appointments.models import Appointment

    with db.session() as session:
        session.get(Appointment, a1).slot_start = slot + dt.timedelta(hours=1)
    assert delivery.run_campaign(db, info.id, DAY, TZ) == 1
    old, new = rows(db)
    check = delivery.campaign_filter(db)
    from bot.outbox.service import Claimed

    claimed = [
        Claimed(r.id, r.channel, r.external_id, r.message, r.kind, r.ref, 0, r.not_before) for r in (old, new)
    ]
    decided = check(claimed)
    assert decided[old.id].status == "skipped" and decided[old.id].reason == "appointment changed"
    assert new.id not in decided


def test_due_appointments_are_reusable_by_appointment_reminders(db: Database) -> None:
    slot = DAY + dt.timedelta(days=1, hours=2)
    appointment(db, "42", slot, code="EEE555")
    appointment(db, "43", slot, code="FFF666", channel="zalo")
    found = delivery.due_appointments(db, 1, DAY, channels=["telegram"])
    assert [a.code for a in found] == ["EEE555"]
    assert delivery.due_appointments(db, 0, DAY, channels=["telegram"], lookahead=dt.timedelta(hours=1)) == []
