"""Invite codes linking a cadre's Telegram account: issued by admins, one-time, expiring."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bot.campaigns import invites
from bot.campaigns.errors import Forbidden, InviteError
from bot.campaigns.models import InviteCode
from bot.staff import accounts
from bot.storage.db import Database
from tests.support.campaigns import DAY, WARD_BLOCKS, _campaigns_template, _db, staff  # noqa: F401 - fixtures


def issue(db: Database, actor=None, **extra) -> str:
    args = {"role": "cadre", "blocks": ["khoi_3"], "ward_blocks": WARD_BLOCKS, "now": DAY, **extra}
    return invites.issue(db, actor, **args)


def test_redeem_once_creates_a_linked_cadre(db: Database) -> None:
    code = issue(db, staff(db, "quan_tri", "admin"))
    linked = invites.redeem(db, code, 777001, now=DAY + dt.timedelta(hours=1))
    assert (linked.role, linked.blocks, linked.telegram_user_id) == ("cadre", ["khoi_3"], 777001)
    assert accounts.get_user(db, linked.id).username == "tg777001"
    with db.session() as session:
        row = session.scalar(select(InviteCode))
        assert row.used_by == 777001 and row.used_at is not None
        assert code not in row.code_hash  # only a hash is stored


def test_reused_expired_and_forged_codes_are_refused(db: Database) -> None:
    code = issue(db)
    invites.redeem(db, code, 777001, now=DAY)
    with pytest.raises(InviteError) as reused:
        invites.redeem(db, code, 777002, now=DAY)
    assert reused.value.code == "used_code"

    old = issue(db, ttl=dt.timedelta(hours=1))
    with pytest.raises(InviteError) as expired:
        invites.redeem(db, old, 777003, now=DAY + dt.timedelta(hours=1, seconds=1))
    assert expired.value.code == "expired_code"

    for forged in ("", "x" * 22, code[:-1] + ("A" if code[-1] != "A" else "B")):
        with pytest.raises(InviteError) as refused:
            invites.redeem(db, forged, 777004, now=DAY)
        assert refused.value.code == "invalid_code"
    assert accounts.get_user(db, 2) is None  # only the first redemption made an account


def test_only_admins_issue_codes(db: Database) -> None:
    for role, blocks in (("cadre", ["khoi_3"]), ("officer", [])):
        with pytest.raises(Forbidden):
            issue(db, staff(db, f"u_{role}", role, blocks))
    with pytest.raises(Exception) as unknown:
        issue(db, blocks=["khoi_9"])
    assert getattr(unknown.value, "code", "") == "unknown_block"
    with pytest.raises(InviteError):
        issue(db, blocks=[])  # a cadre without blocks


def test_a_code_for_an_existing_account_links_it(db: Database) -> None:
    cadre = staff(db, "can_bo_3", "cadre", ["khoi_3"])
    code = issue(db, username="can_bo_3")
    assert invites.redeem(db, code, 888001, now=DAY).id == cadre.id
    assert accounts.get_user(db, cadre.id).telegram_user_id == 888001


def test_a_telegram_account_already_linked_does_not_spend_the_code(db: Database) -> None:
    first = issue(db)
    invites.redeem(db, first, 999001, now=DAY)
    second = issue(db)
    with pytest.raises(InviteError) as refused:
        invites.redeem(db, second, 999001, now=DAY)
    assert refused.value.code == "telegram_already_linked"
    assert invites.redeem(db, second, 999002, now=DAY).telegram_user_id == 999002


def test_cli_issues_a_code_that_redeems(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from argon2 import PasswordHasher

    from bot.cli import main
    from bot.config.settings import Settings
    from bot.services import Services

    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    with pytest.raises(SystemExit) as done:
        main(["staff", "invite", "--role", "cadre", "--blocks", "khoi_1,khoi_2", "--hours", "2"])
    assert done.value.code == 0
    code = capsys.readouterr().out.strip()
    assert len(code) == 22
    ward_db = Services.build(Settings()).db
    linked = invites.redeem(ward_db, code, 123456)
    assert linked.blocks == ["khoi_1", "khoi_2"] and linked.role == "cadre"
    with pytest.raises(SystemExit) as refused:
        main(["staff", "invite", "--role", "cadre", "--blocks", "khoi_9"])
    assert refused.value.code == 2
    ward_db.dispose()
