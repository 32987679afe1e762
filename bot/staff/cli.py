"""`python -m bot staff ...`: staff accounts on the command line (the first admin starts here)."""

from __future__ import annotations

import argparse
import getpass
import sys

from bot.services import Services
from bot.staff import accounts
from bot.staff.accounts import StaffError
from bot.staff.models import ROLES


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    staff = sub.add_parser("staff", help="manage the desk staff's accounts")
    cmds = staff.add_subparsers(dest="staff_command", required=True)

    create = cmds.add_parser("create", help="create an account (asks for the password)")
    create.add_argument("username")
    create.add_argument("--name", dest="display_name", help="display name (default: the username)")
    create.add_argument("--role", choices=ROLES, default="officer")
    create.add_argument("--blocks", default="", help="comma-separated block ids (cadres)")
    create.add_argument("--telegram-user-id", type=int, default=None)
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    cmds.add_parser("list", help="list the accounts")

    role = cmds.add_parser("set-role", help="change an account's role")
    role.add_argument("username")
    role.add_argument("role", choices=ROLES)

    blocks = cmds.add_parser("set-blocks", help="set a cadre's blocks (comma-separated ids; empty: none)")
    blocks.add_argument("username")
    blocks.add_argument("blocks")

    deactivate = cmds.add_parser("deactivate", help="deactivate an account (its sessions end)")
    deactivate.add_argument("username")

    activate = cmds.add_parser("activate", help="activate an account again")
    activate.add_argument("username")

    reset = cmds.add_parser("reset-password", help="set a new password (sessions end, lock cleared)")
    reset.add_argument("username")
    reset.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    # --- invite codes (bot/campaigns/invites.py) ---
    invite = cmds.add_parser("invite", help="issue a one-time code that links a Telegram account")
    invite.add_argument("--role", choices=ROLES, default="cadre")
    invite.add_argument("--blocks", default="", help="comma-separated block ids (cadres)")
    invite.add_argument("--user", default=None, help="link this existing account instead of a new one")
    invite.add_argument("--hours", type=float, default=72.0, help="valid for (default 72)")
    # --- end invite codes ---


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise StaffError("passwords_differ")
    return first


def _blocks(text: str) -> list[str]:
    return [block.strip() for block in text.split(",") if block.strip()]


def run(args: argparse.Namespace, services: Services) -> int:
    """Run one `staff` subcommand; returns the exit status (2 with a one-line reason on refusal)."""
    from bot.storage.migrate import upgrade

    upgrade(services.db.url)  # the accounts table exists even before the app first starts
    db = services.db
    known = {block.id for block in services.ward.blocks}
    command = args.staff_command
    try:
        if command == "invite":  # invite codes (bot/campaigns/invites.py)
            import datetime as dt

            from bot.campaigns import invites

            code = invites.issue(
                db,
                None,
                args.role,
                _blocks(args.blocks),
                ward_blocks=sorted(known),
                username=args.user,
                ttl=dt.timedelta(hours=args.hours),
            )
            accounts.audit(db, None, "admin", f"issue invite role={args.role} blocks={args.blocks or '-'}")
            print(code)
            return 0
        if command == "list":
            for user in accounts.list_users(db):
                state = "active" if user.active else "inactive"
                if user.locked_until:
                    state += f", locked until {user.locked_until:%Y-%m-%d %H:%M} UTC"
                blocks = ",".join(user.blocks) or "-"
                print(f"{user.username}\t{user.role}\t{blocks}\t{state}\t{user.display_name}")
            return 0
        if command == "create":
            staff = accounts.create_user(
                db,
                args.username,
                args.display_name or args.username,
                _password(args.password_stdin),
                args.role,
                _blocks(args.blocks),
                known,
                args.telegram_user_id,
            )
            accounts.audit(db, None, "admin", f"create staff {staff.username} role={staff.role}")
            print(f"created {staff.username} ({staff.role})")
            return 0
        if command == "set-role":
            staff = accounts.update_user(db, args.username, role=args.role)
            what = f"set role {staff.username} {staff.role}"
        elif command == "set-blocks":
            staff = accounts.update_user(db, args.username, blocks=_blocks(args.blocks), known_blocks=known)
            what = f"set blocks {staff.username} {','.join(staff.blocks) or '-'}"
        elif command == "deactivate":
            staff = accounts.update_user(db, args.username, active=False)
            what = f"deactivate {staff.username}"
        elif command == "activate":
            staff = accounts.update_user(db, args.username, active=True)
            what = f"activate {staff.username}"
        elif command == "reset-password":
            staff = accounts.update_user(db, args.username, password=_password(args.password_stdin))
            what = f"reset password {staff.username}"
        else:  # pragma: no cover - argparse refuses other names
            raise StaffError("unknown_command", command)
    except (StaffError, ValueError) as exc:  # ValueError: campaigns' InviteError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    accounts.audit(db, None, "admin", what)
    print(f"ok: {what}")
    return 0
