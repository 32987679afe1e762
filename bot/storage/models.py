"""Database models (SQLAlchemy 2 typed mappings). Schema changes go through Alembic."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from sqlalchemy import MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.storage.db import UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict] = {dt.datetime: UTCDateTime()}


class Citizen(Base):
    """A citizen as one channel knows them: one row per (channel, platform user id).

    Holds no personal data: names and phone numbers are collected per
    appointment with consent, not here.
    """

    __tablename__ = "citizens"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def sender_id(self) -> str:
        """The conversation id Rasa knows this citizen by, e.g. "web:abc"."""
        return f"{self.channel}:{self.external_id}"
