"""Staff accounts of the one-stop desk and the audit log of what they looked at or changed.

The audit log names who did what and when ("view appointments 2026-12-01", "export csv",
"mark served ABC123"); it never holds the personal data itself (names, phone numbers).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base

ROLES = ("admin", "officer", "cadre")
# Roles that see citizens' names and phone numbers (cadres never do).
PERSONAL_DATA_ROLES = frozenset({"admin", "officer"})


class StaffUser(Base):
    __tablename__ = "staff_users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'officer', 'cadre')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    blocks: Mapped[list[str]] = mapped_column(JSON, default=list)  # block ids (cadres)
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None]
    # bumped when the password is reset or the account deactivated: older sessions stop working
    session_version: Mapped[int] = mapped_column(default=0)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def sees_personal_data(self) -> bool:
        return self.role in PERSONAL_DATA_ROLES


class AuditLog(Base):
    __tablename__ = "staff_audit_log"
    __table_args__ = (Index("ix_staff_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(64))  # kept when the account is gone; "cli" for the CLI
    action: Mapped[str] = mapped_column(String(32))  # view, export, search, status, login, admin ...
    what: Mapped[str] = mapped_column(String(200))
