"""Staff side on Telegram, the parts without Telegram: run reports and staff group notices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from bot.appointments import notify
from bot.appointments import service as appointments
from bot.campaigns import delivery, jobs, reports, service
from bot.config.settings import PROJECT_ROOT, Settings
from bot.config.ward import load_ward
from bot.knowledge.kb import KnowledgeBase
from bot.outbox.models import OutboxMessage
from bot.services import Services
from bot.staff.models import StaffUser
from bot.staff.tgtexts import text
from bot.storage.db import Database, utcnow
from tests.support.campaigns import DAY, WARD_BLOCKS, _campaigns_template, _db, appointment, citizens, staff  # noqa: F401 - fixtures

WARD = load_ward(PROJECT_ROOT / "settings" / "ward.yml")
KB = KnowledgeBase(PROJECT_ROOT / "faq")
GROUP = "-100123"


@pytest.fixture(name="services")
def _services(db: Database) -> Iterator[Services]:
    yield Services(settings=Settings(), ward=WARD, kb=KB, db=db)
    notify.install(Services(settings=Settings(), ward=WARD, kb=KB, db=db), "")  # no listener left behind


def rows(db: Database, kind: str) -> list[OutboxMessage]:
    with db.session() as session:
        return list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)))


def link(db: Database, staff_id: int, telegram_id: int) -> None:
    with db.session() as session:
        session.get(StaffUser, staff_id).telegram_user_id = telegram_id


# --- run reports -----------------------------------------------------------------------------


def test_a_finished_run_is_reported_once_to_its_creator(db: Database) -> None:
    cadre = staff(db, "can_bo_1", "cadre", ["khoi_1"])
    link(db, cadre.id, 555001)
    citizens(db, "khoi_1", 3)
    info = service.create(
        db, cadre, title="Nhắc VNeID", text="Nhắc", blocks=["khoi_1"], ward_blocks=WARD_BLOCKS
    )
    service.confirm(db, cadre, info.id)
    assert delivery.run_campaign(db, info.id, DAY) == 3
    assert reports.push_finished(db, DAY) == 0  # rows still queued: not finished
    ref = delivery.ref(info.id, 1)
    with db.session() as session:
        ids = list(session.scalars(select(OutboxMessage.id).where(OutboxMessage.ref == ref)))
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids[:2])).values(status="sent"))
        session.execute(update(OutboxMessage).where(OutboxMessage.id == ids[2]).values(status="blocked"))
    assert reports.push_finished(db, DAY) == 1
    assert reports.push_finished(db, DAY) == 0  # once per run
    [row] = rows(db, reports.KIND)
    assert (row.channel, row.external_id, row.ref) == ("telegram", "555001", ref)
    values = {"id": info.id, "title": "Nhắc VNeID", "run": 1, "recipients": 3, "sent": 2, "failed": 0}
    expected = text("report_run", **values, blocked=1, skipped=0, presses=0)
    assert row.message["text"] == expected


def test_creators_without_telegram_get_no_report_and_the_maintain_job_pushes(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = staff(db, "quan_tri", "admin")
    info = service.create(db, admin, title="T", text="Nhắc", blocks=["khoi_2"], ward_blocks=WARD_BLOCKS)
    service.confirm(db, admin, info.id)
    delivery.run_campaign(db, info.id, utcnow())  # nobody subscribed: finished at once
    assert reports.push_finished(db) == 0  # the admin has no Telegram
    link(db, admin.id, 555002)
    monkeypatch.setattr(jobs, "_services", lambda: (db, "Asia/Ho_Chi_Minh"))
    jobs.maintain_job()
    [row] = rows(db, reports.KIND)
    assert row.external_id == "555002" and "Người nhận: 0" in row.message["text"]


# --- staff group notices ------------------------------------------------------------------------


def test_cancel_and_double_cancel_notify_the_group_once_without_personal_data(
    db: Database, services: Services
) -> None:
    notify.install(services, GROUP)
    slot = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    appointment(db, "42", slot, code="ABC234")
    with db.session() as session:
        session.execute(
            update(appointments.Appointment).values(full_name="Nguyễn Văn An", phone="+84912345678")
        )
    appointments.cancel(db, "telegram", "42", "ABC234")
    appointments.cancel(db, "telegram", "42", "ABC234")  # harmless, and no second notice
    [row] = rows(db, notify.KIND)
    assert (row.channel, row.external_id) == ("telegram", GROUP)
    local = slot.astimezone(WARD.tz)
    body = row.message["text"]
    assert "ABC234" in body and f"{local:%H:%M}" in body and f"{local:%d/%m/%Y}" in body
    assert KB.procedures["can_cuoc.cap_moi"].title in body and "Quầy 2" in body
    assert "Nguyễn" not in body and "912" not in body


def test_booking_and_moving_through_the_service_notify_and_a_broken_listener_is_harmless(
    db: Database, services: Services
) -> None:
    from bot.appointments.slots import Calendar

    def broken(*_: object) -> None:
        raise RuntimeError("boom")

    notify.install(services, GROUP)
    appointments.listeners.insert(0, broken)
    try:
        calendar = Calendar(WARD)
        now = utcnow()
        slots = calendar.next_free_slots("khai_sinh", now, 2, appointments.occupancy(db))
        booking = appointments.book(
            db, calendar, channel="zalo", external_id="9", procedure="khai_sinh", start=slots[0].start
        )
        appointments.reschedule(db, calendar, "zalo", "9", booking.code, slots[1].start)
    finally:
        appointments.listeners.remove(broken)
    events = sorted(r.ref.split(":")[0] for r in rows(db, notify.KIND))
    assert events == ["booked", "moved"]
    assert all(booking.code in r.message["text"] for r in rows(db, notify.KIND))


def test_no_group_no_listener(db: Database, services: Services) -> None:
    notify.install(services, GROUP)
    notify.install(services, "")
    assert not [f for f in appointments.listeners if f.__name__ == "staff_notice"]
