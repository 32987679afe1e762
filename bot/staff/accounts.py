"""Staff accounts: argon2 password hashes, login with lockout, roles and blocks, the audit log."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from bot.staff.models import PERSONAL_DATA_ROLES, ROLES, AuditLog, StaffUser
from bot.storage.db import Database, utcnow

log = logging.getLogger(__name__)

USERNAME = re.compile(r"^[a-z0-9_.-]{3,64}$")
PASSWORD_MIN = 8
PASSWORD_MAX = 256
_hasher = PasswordHasher()  # argon2id, the library's (RFC 9106 low-memory) defaults
_dummy: dict[str, str] = {}


def _dummy_hash() -> str:
    """A hash to verify against for unknown usernames: they cost the same time as known ones."""
    if "hash" not in _dummy:
        _dummy["hash"] = _hasher.hash("not a real password")
    return _dummy["hash"]


class StaffError(ValueError):
    """A refused account change; `code` is stable (texts in faq/staff.yml, under errors)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Staff:
    """What the pages need to know about the signed-in officer (no password hash)."""

    id: int
    username: str
    display_name: str
    role: str
    blocks: list[str] = field(default_factory=list)
    active: bool = True
    locked_until: dt.datetime | None = None
    session_version: int = 0
    telegram_user_id: int | None = None
    created_at: dt.datetime | None = None

    @property
    def sees_personal_data(self) -> bool:
        return self.role in PERSONAL_DATA_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def of(cls, row: StaffUser) -> Staff:
        return cls(
            row.id,
            row.username,
            row.display_name,
            row.role,
            list(row.blocks or []),
            row.active,
            row.locked_until,
            row.session_version,
            row.telegram_user_id,
            row.created_at,
        )


@dataclass(frozen=True)
class LoginResult:
    staff: Staff | None
    reason: str = ""  # "" when signed in; "invalid" | "locked"
    locked_until: dt.datetime | None = None


# --- validation ---------------------------------------------------------------------


def check_username(username: str) -> str:
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise StaffError("invalid_username")
    return username


def check_password(password: str) -> str:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise StaffError("weak_password", str(PASSWORD_MIN))
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise StaffError("invalid_role", role)
    return role


def check_blocks(blocks: list[str], known: set[str] | None) -> list[str]:
    cleaned = sorted({block.strip() for block in blocks if block.strip()})
    unknown = [block for block in cleaned if known is not None and block not in known]
    if unknown:
        raise StaffError("unknown_block", ", ".join(unknown))
    return cleaned


def check_display_name(name: str) -> str:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 100:
        raise StaffError("invalid_display_name")
    return name


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


# --- accounts -------------------------------------------------------------------------


def create_user(
    db: Database,
    username: str,
    display_name: str,
    password: str,
    role: str,
    blocks: list[str] | None = None,
    known_blocks: set[str] | None = None,
    telegram_user_id: int | None = None,
) -> Staff:
    username = check_username(username)
    row = StaffUser(
        username=username,
        display_name=check_display_name(display_name),
        password_hash=hash_password(password),
        role=check_role(role),
        blocks=check_blocks(blocks or [], known_blocks),
        active=True,
        failed_logins=0,
        session_version=0,
        telegram_user_id=telegram_user_id,
        created_at=utcnow(),
    )
    with db.session() as session:
        if session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
            raise StaffError("username_taken", username)
        session.add(row)
        session.flush()
        staff = Staff.of(row)
    log.info("staff account created: id=%s role=%s", staff.id, staff.role)
    return staff


def list_users(db: Database) -> list[Staff]:
    with db.session() as session:
        return [Staff.of(row) for row in session.scalars(select(StaffUser).order_by(StaffUser.username))]


def get_user(db: Database, user_id: int) -> Staff | None:
    with db.session() as session:
        row = session.get(StaffUser, user_id)
        return Staff.of(row) if row else None


def _by_name(session: object, username: str) -> StaffUser:
    row = session.scalar(select(StaffUser).where(StaffUser.username == username.strip().lower()))  # type: ignore[attr-defined]
    if row is None:
        raise StaffError("no_such_user", username)
    return row


def update_user(
    db: Database,
    username: str,
    *,
    role: str | None = None,
    blocks: list[str] | None = None,
    known_blocks: set[str] | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> Staff:
    """Change one account; deactivating or resetting the password ends its sessions."""
    with db.session() as session:
        row = _by_name(session, username)
        if role is not None:
            row.role = check_role(role)
        if blocks is not None:
            row.blocks = check_blocks(blocks, known_blocks)
        if active is not None:
            if not active:
                row.session_version += 1
            row.active = active
        if password is not None:
            row.password_hash = hash_password(password)
            row.session_version += 1
            row.failed_logins = 0
            row.locked_until = None
        return Staff.of(row)


def end_sessions(db: Database, user_id: int) -> None:
    """Sign the account out everywhere (its signed cookies stop matching)."""
    with db.session() as session:
        row = session.get(StaffUser, user_id)
        if row is not None:
            row.session_version += 1


def authenticate(
    db: Database,
    username: str,
    password: str,
    max_failed: int = 5,
    lockout: dt.timedelta = dt.timedelta(minutes=15),
    now: dt.datetime | None = None,
) -> LoginResult:
    """Check a login; `max_failed` wrong passwords in a row lock the account for `lockout`."""
    now = now or utcnow()
    with db.session() as session:
        row = session.scalar(select(StaffUser).where(StaffUser.username == username.strip().lower()))
        if row is None or not row.active:
            _verify(_dummy_hash(), password)
            return LoginResult(None, "invalid")
        if row.locked_until is not None and row.locked_until > now:
            return LoginResult(None, "locked", row.locked_until)
        if not _verify(row.password_hash, password):
            row.failed_logins += 1
            if row.failed_logins >= max_failed:
                row.failed_logins = 0
                row.locked_until = now + lockout
                log.warning("staff account locked after %d failed logins: id=%s", max_failed, row.id)
                return LoginResult(None, "locked", row.locked_until)
            return LoginResult(None, "invalid")
        row.failed_logins = 0
        row.locked_until = None
        if _hasher.check_needs_rehash(row.password_hash):
            row.password_hash = _hasher.hash(password)
        return LoginResult(Staff.of(row))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# --- audit ------------------------------------------------------------------------------


def audit(db: Database, who: Staff | None, action: str, what: str) -> None:
    """Record who did what; `what` names the view or change, never personal data."""
    with db.session() as session:
        session.add(
            AuditLog(
                staff_user_id=who.id if who else None,
                username=who.username if who else "cli",
                action=action[:32],
                what=what[:200],
                at=utcnow(),
            )
        )


def recent_audit(db: Database, limit: int = 100) -> list[AuditLog]:
    with db.session() as session:
        return list(session.scalars(select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)))
