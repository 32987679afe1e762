"""Test helpers for campaigns: a migrated SQLite database, staff, subscribed citizens."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from bot.appointments.models import Appointment
from bot.staff.accounts import Staff
from bot.staff.models import StaffUser
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.subscriptions import service as subscriptions

WARD_BLOCKS = ["khoi_1", "khoi_2", "khoi_3", "khoi_4", "khoi_5"]
# 10:00 in Hanoi (UTC+7): outside quiet hours.
DAY = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session", name="campaigns_template")
def _campaigns_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file with every migration applied, copied for each test (migrating is slow)."""
    path = tmp_path_factory.mktemp("campaigns") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(name="db")
def _db(tmp_path: Path, campaigns_template: Path) -> Iterator[Database]:
    path = tmp_path / "ward.db"
    shutil.copyfile(campaigns_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


def staff(db: Database, username: str, role: str, blocks: Sequence[str] = ()) -> Staff:
    """A staff account, inserted directly (argon2 hashing would make each test slow)."""
    with db.session() as session:
        row = StaffUser(
            username=username,
            display_name=username,
            password_hash="not-a-hash",
            role=role,
            blocks=list(blocks),
            active=True,
            failed_logins=0,
            session_version=0,
        )
        session.add(row)
        session.flush()
        return Staff.of(row)


def citizens(
    db: Database, block: str, n: int, *, channel: str = "telegram", start: int = 0, tags: Sequence[str] = ()
) -> list[str]:
    """Subscribe n citizens of a block; returns their external ids."""
    ids = []
    for i in range(start, start + n):
        external_id = str(10**8 + (WARD_BLOCKS.index(block) + 1) * 10**5 + i)
        subscriptions.subscribe(db, channel, external_id, block, "Đồng ý nhận thông báo của phường")
        for tag in tags:
            subscriptions.add_tag(db, channel, external_id, tag, "test")
        ids.append(external_id)
    return ids


def appointment(
    db: Database, external_id: str, slot_start: dt.datetime, *, code: str, channel: str = "telegram"
) -> int:
    with db.session() as session:
        row = Appointment(
            code=code,
            channel=channel,
            external_id=external_id,
            procedure="can_cuoc.cap_moi",
            counter="cong_an",
            slot_start=slot_start,
            status="booked",
        )
        session.add(row)
        session.flush()
        return row.id
