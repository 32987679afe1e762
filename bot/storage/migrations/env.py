"""Alembic environment: the URL comes from the caller (bot.storage.migrate)."""

from __future__ import annotations

from alembic import context

from bot.storage.db import make_engine
from bot.storage.models import Base

config = context.config
url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")

engine = make_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
