"""Logging set-up. Logs are in English and never carry what citizens typed."""

from __future__ import annotations

import logging


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Third-party loggers that would print request bodies or URLs with tokens.
    for noisy in (
        "httpx",
        "httpcore",
        "apscheduler.executors.default",
        "rasa_sdk",
        "alembic.runtime.plugins",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
