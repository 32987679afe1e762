"""Retention of appointments' personal data: the ward setting, and the daily job of the app's
scheduler (persistent job store) that anonymises appointments older than it."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from rasa_sdk.executor import ActionExecutor
from sqlalchemy import select

from bot.appointments import service
from bot.appointments.models import Appointment
from bot.appointments.slots import Calendar
from bot.channels import web_inbox
from bot.channels.web_inbox import WebInboxMessage
from bot.config.settings import PROJECT_ROOT, Settings
from bot.config.ward import Ward, WardSettingsError, load_ward
from bot.scheduler import RETENTION_JOB_ID, build_scheduler, install_jobs
from bot.storage.db import Database, utcnow
from bot.storage.migrate import upgrade
from bot.web.app import create_app

WARD_FILE = PROJECT_ROOT / "settings" / "ward.yml"
RAW = yaml.safe_load(WARD_FILE.read_text(encoding="utf-8"))


def ward_file(tmp_path: Path, **appointments: object) -> Path:
    raw = {**RAW, "appointments": {**RAW.get("appointments", {}), **appointments}}
    path = tmp_path / "ward.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_retention_days_defaults_to_90_and_is_validated(tmp_path: Path) -> None:
    raw = {**RAW, "appointments": {k: v for k, v in RAW["appointments"].items() if k != "retention_days"}}
    assert Ward.model_validate(raw).appointments.retention_days == 90
    assert load_ward(WARD_FILE).appointments.retention_days == 90
    assert load_ward(ward_file(tmp_path, retention_days=30)).appointments.retention_days == 30
    for bad in (0, -1, "ninety", 100_000):
        with pytest.raises(WardSettingsError, match=r"appointments\.retention_days"):
            load_ward(ward_file(tmp_path, retention_days=bad))


def booked_at(db: Database, ward: Ward, days_ago: int, who: str) -> str:
    """An appointment whose slot was about `days_ago` days ago (booked back then), with personal data."""
    cal = Calendar(ward)
    then = utcnow() - dt.timedelta(days=days_ago + 1)
    slot = cal.next_free_slots("khai_sinh", then, 1, service.occupancy(db))[0]
    booking = service.book(
        db, cal, channel="telegram", external_id=who, procedure="khai_sinh", start=slot.start,
        now=then, full_name="Nguyễn Văn An", phone="0912345678", consent=True,
    )  # fmt: skip
    return booking.code


def personal(db: Database) -> dict[str, tuple[str | None, str | None, str | None]]:
    with db.session() as session:
        rows = session.scalars(select(Appointment))
        return {row.code: (row.full_name, row.phone, row.external_id) for row in rows}


def test_the_app_schedules_the_retention_job_which_anonymises_old_appointments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ward_file(tmp_path, retention_days=30)
    ward = load_ward(path)
    url = f"sqlite:///{tmp_path / 'ward.db'}"
    upgrade(url)
    seed = Database(url)
    old = booked_at(seed, ward, 100, "1")  # past any retention
    recent = booked_at(seed, ward, 45, "2")  # past 30 days, not the default 90: the setting is used
    upcoming = booked_at(seed, ward, 5, "3")
    web_inbox.store(seed, "read-page", {"text": "Nhắc lịch hẹn", "buttons": []})
    web_inbox.take(seed, "read-page")  # collected: purged by the job
    web_inbox.store(seed, "closed-page", {"text": "Nhắc lịch hẹn", "buttons": []})  # waiting: kept
    seed.dispose()

    monkeypatch.setattr("bot.web.app.build_executor", ActionExecutor)
    settings = Settings(VAR_DIR=tmp_path, DATABASE_URL="", TELEGRAM_BOT_TOKEN="", WARD_FILE=path)
    for start in range(2):  # a restart keeps one job (idempotent id), and it runs again at start
        app = create_app(settings)
        with TestClient(app):
            db = app.state.services.db
            deadline = time.monotonic() + 15
            while personal(db)[recent][0] is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            data = personal(db)
            assert data[old] == data[recent] == (None, None, None)
            with db.session() as session:
                assert set(session.scalars(select(WebInboxMessage.external_id))) == {"closed-page"}
            assert data[upcoming] == ("Nguyễn Văn An", "+84912345678", "3")
            job = app.state.scheduler.get_job(RETENTION_JOB_ID)
            assert job is not None and str(job.func_ref) == "bot.scheduler:retention_job"
            assert [j.id for j in app.state.scheduler.get_jobs()].count(RETENTION_JOB_ID) == 1
            local = job.next_run_time.astimezone(ward.tz)  # then daily at 03:15 ward time
            assert (local.hour, local.minute) == (3, 15) and local - dt.datetime.now(ward.tz) <= dt.timedelta(
                1
            )
        if start == 0:  # a citizen anonymised by the first run is not touched again
            with db.session() as session:
                first = session.scalar(select(Appointment.anonymised_at).where(Appointment.code == old))
    with Database(url).session() as session:
        assert session.scalar(select(Appointment.anonymised_at).where(Appointment.code == old)) == first


def test_the_job_is_stored_in_the_database(tmp_path: Path) -> None:
    """The job lives in the scheduler's SQLAlchemy job store (the apscheduler_jobs table)."""
    url = f"sqlite:///{tmp_path / 'ward.db'}"
    upgrade(url)
    db = Database(url)

    async def install_twice() -> None:
        scheduler = build_scheduler(db, "Asia/Ho_Chi_Minh")
        scheduler.start(paused=True)
        install_jobs(scheduler, "Asia/Ho_Chi_Minh")
        install_jobs(scheduler, "Asia/Ho_Chi_Minh")
        scheduler.shutdown(wait=False)

    asyncio.run(install_twice())
    with db.engine.connect() as conn:
        ids = [row[0] for row in conn.exec_driver_sql("select id from apscheduler_jobs")]
    assert ids.count(RETENTION_JOB_ID) == 1
    db.dispose()
