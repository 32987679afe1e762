"""Appointments core: date understanding, the desk's calendar, booking with no overbooking.

No Rasa code: the booking form (later) calls these functions.
- `dates.parse_when`  — "chiều mai", "thứ 5 tuần sau 9h30" → When(date, time, part_of_day)
- `slots.Calendar`    — working hours, holidays, closures, lead time, horizon, capacity
- `service`           — book / list / cancel / reschedule / retention, on the database
- `reason_message`    — the Vietnamese text for a refusal code (faq/appointments.yml)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from bot.knowledge.kb import fill

REASONS_FILE = Path(__file__).resolve().parents[2] / "faq" / "appointments.yml"


@lru_cache(maxsize=4)
def reason_texts(path: Path = REASONS_FILE) -> dict[str, str]:
    """Reason code → Vietnamese text, from faq/appointments.yml."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(key): str(value) for key, value in data["reasons"].items()}


def reason_message(reason: str, detail: str = "", placeholders: dict[str, str] | None = None) -> str:
    """The text a citizen reads for a refusal; {detail} and ward placeholders filled."""
    values = {**(placeholders or {}), "detail": detail}
    return fill(reason_texts()[reason], values).strip()
