"""Apply Alembic migrations programmatically, so `make run` needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = url
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    """Apply every branch: feature packages add migrations that branch from 0001."""
    command.upgrade(alembic_config(url), revision)
