"""Command line: `python -m bot run | serve | check | migrate | staff`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import NoReturn

from pydantic import ValidationError

from bot.config.settings import Settings
from bot.config.ward import WardSettingsError
from bot.knowledge.kb import KnowledgeBaseError
from bot.logs import setup_logging
from bot.services import Services


def load() -> tuple[Settings, Services]:
    """Settings and services, or exit 2 with a one-line reason."""
    try:
        settings = Settings()
        _check_part_settings()
        services = Services.build(settings)
    except ValidationError as exc:
        _fail(_describe(exc))
    except (WardSettingsError, KnowledgeBaseError) as exc:
        _fail(str(exc))
    return settings, services


def _check_part_settings() -> None:
    """The parts' own settings (STAFF_*, OUTBOX_*) are read at start, not on first use."""
    from bot.outbox.worker import OutboxConfig
    from bot.staff.auth import StaffSettings

    StaffSettings()
    try:
        OutboxConfig()
    except ValidationError as exc:
        _fail(_describe(exc, prefix="OUTBOX_"))


def _describe(exc: ValidationError, prefix: str = "") -> str:
    """The first problem, named by its environment variable, in one line."""
    first = exc.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    if not first["loc"]:
        return f"invalid settings: {message}"
    name = str(first["loc"][0])
    return f"invalid setting {prefix + name.upper() if prefix else name}: {message}"


def _check_database(services: Services) -> None:
    """Refuse to start when the database cannot be opened (password never printed)."""
    try:
        services.db.engine.connect().close()
    except Exception as exc:  # noqa: BLE001 - refuse to start with a clear reason
        _fail(f"cannot open DATABASE_URL ({type(exc).__name__})")


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Trợ lý công dân của phường")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run Rasa (supervised) and the app: the embedded default")
    sub.add_parser("serve", help="run the app only, against RASA_URL")
    sub.add_parser("check", help="validate settings, ward file and knowledge base")
    sub.add_parser("migrate", help="apply database migrations")
    # --- staff accounts (bot/staff/cli.py) ---
    from bot.staff.cli import add_parser as add_staff_parser

    add_staff_parser(sub)
    # --- end staff ---
    args = parser.parse_args(argv)

    settings, services = load()
    if args.command in {"run", "serve"}:
        _check_database(services)
    setup_logging(settings.log_level)
    if args.command == "check":
        print("ok: settings, ward file and knowledge base are valid")
        return
    if args.command == "migrate":
        from bot.storage.migrate import upgrade

        try:
            upgrade(services.db.url)
        except Exception as exc:  # noqa: BLE001 - one line for the operator
            _fail(f"database {type(exc).__name__}: {str(exc).splitlines()[0]}")
        return
    # --- staff accounts ---
    if args.command == "staff":
        from bot.staff.cli import run as run_staff

        sys.exit(run_staff(args, services))
    # --- end staff ---
    from bot.runner import run_all

    logging.getLogger(__name__).info("starting (%s)", args.command)
    asyncio.run(run_all(settings, services, with_rasa=args.command == "run"))
