"""One-time, expiring invite codes that link a cadre's Telegram account to a staff account.

An admin issues a code (CLI `python -m bot staff invite`, or the admin pages later) and gives
it to the cadre, who sends it to the bot (e.g. t.me/<bot>?start=<code>). Only a SHA-256 of the
code is stored. Redeeming is one atomic UPDATE ... WHERE used_at IS NULL AND expires_at > now,
so a code links at most one account, once. Forged, expired and used codes are refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update

from bot.campaigns.errors import Forbidden, InviteError
from bot.campaigns.models import InviteCode
from bot.staff import accounts
from bot.staff.accounts import Staff
from bot.staff.models import ROLES, StaffUser
from bot.storage.db import Database, utcnow

log = logging.getLogger(__name__)

DEFAULT_TTL = dt.timedelta(hours=72)


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode("utf-8")).hexdigest()


def issue(
    db: Database,
    actor: Any | None,
    role: str,
    blocks: Sequence[str],
    *,
    ward_blocks: Sequence[str],
    username: str | None = None,
    ttl: dt.timedelta = DEFAULT_TTL,
    now: dt.datetime | None = None,
) -> str:
    """A new code (shown once). `actor` None is the command line (the operator); else an admin."""
    now = now or utcnow()
    if role not in ROLES:
        raise InviteError("invalid_role", role)
    cleaned = accounts.check_blocks(list(blocks), set(ward_blocks))
    if role == "cadre" and not cleaned:
        raise InviteError("cadre_needs_blocks")
    code = secrets.token_urlsafe(16)  # 22 characters of [A-Za-z0-9_-]: fits a /start deep link
    with db.session() as session:
        creator = None
        if actor is not None:
            row = session.get(StaffUser, actor.id)
            if row is None or not row.active or row.role != "admin":
                raise Forbidden("admins_only")
            creator = row.id
        if (
            username is not None
            and session.scalar(select(StaffUser.id).where(StaffUser.username == username.strip().lower()))
            is None
        ):
            raise InviteError("no_such_user", username)
        session.add(
            InviteCode(
                code_hash=_hash(code),
                role=role,
                blocks=cleaned,
                username=username.strip().lower() if username else None,
                expires_at=now + ttl,
                created_by=creator,
                created_at=now,
            )
        )
    log.info("invite issued: role=%s blocks=%d expires in %s", role, len(cleaned), ttl)
    return code


def redeem(db: Database, code: str, telegram_user_id: int, now: dt.datetime | None = None) -> Staff:
    """Link `telegram_user_id` with the invite's account (or a new Telegram-only account with its
    role and blocks). Raises InviteError: invalid_code (forged), expired_code, used_code,
    telegram_already_linked."""
    now = now or utcnow()
    digest = _hash(code)
    with db.session() as session:
        claimed = session.execute(
            update(InviteCode)
            .where(InviteCode.code_hash == digest, InviteCode.used_at.is_(None), InviteCode.expires_at > now)
            .values(used_at=now, used_by=telegram_user_id)
            .execution_options(synchronize_session=False)
        ).rowcount
        invite = session.scalar(select(InviteCode).where(InviteCode.code_hash == digest))
        if not claimed:
            if invite is None:
                raise InviteError("invalid_code")
            if invite.used_at is not None:
                raise InviteError("used_code")
            raise InviteError("expired_code")
        linked = session.scalar(select(StaffUser).where(StaffUser.telegram_user_id == telegram_user_id))
        if linked is not None:
            raise InviteError("telegram_already_linked")  # the transaction rolls back: code unused
        if invite.username:
            row = session.scalar(select(StaffUser).where(StaffUser.username == invite.username))
            if row is None or not row.active:
                raise InviteError("no_such_user", invite.username)
            row.telegram_user_id = telegram_user_id
            session.flush()
            staff = Staff.of(row)
            role, blocks, username = None, None, None
        else:
            staff = None
            role, blocks, username = invite.role, list(invite.blocks or []), f"tg{telegram_user_id}"
    if staff is None:
        # A Telegram-only account: a random password nobody knows (the web login stays closed
        # until an admin sets one). Created after the code is spent: a failure here leaves the
        # code used, which is the safe side.
        staff = accounts.create_user(
            db,
            username,  # type: ignore[arg-type]
            username,  # type: ignore[arg-type]
            secrets.token_urlsafe(24),
            role,  # type: ignore[arg-type]
            blocks,
            telegram_user_id=telegram_user_id,
        )
    log.info("invite redeemed: staff %d linked to Telegram", staff.id)
    return staff
