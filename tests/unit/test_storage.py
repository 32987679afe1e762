import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text

from bot.storage.citizens import touch_citizen
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import Base, Citizen


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'sub' / 'ward.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def test_migrations_create_every_model_table(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_sqlite_runs_in_wal_mode(db: Database) -> None:
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_touch_citizen_creates_once_and_updates_last_message(db: Database) -> None:
    first = touch_citizen(db, "web", "abc")
    with db.session() as session:
        before = session.get(Citizen, first).last_message_at
    second = touch_citizen(db, "web", "abc")
    assert first == second
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Citizen)) == 1
        citizen = session.get(Citizen, first)
        assert citizen.sender_id == "web:abc"
        assert citizen.last_message_at >= before
        assert citizen.last_message_at.tzinfo is dt.UTC


def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"), db.session() as session:
        session.add(Citizen(channel="web", external_id="x", last_message_at=dt.datetime(2026, 1, 1)))
        session.flush()


def test_migrating_twice_is_harmless(db: Database) -> None:
    upgrade(db.url)
    assert db.ping()
