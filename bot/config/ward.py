"""The ward's own settings (hours, holidays, counters, blocks), loaded from YAML.

Validated once at start: an invalid file stops the app with an error naming
the field, rather than failing later in front of a citizen.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
VI_WEEKDAYS = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")


class WardSettingsError(ValueError):
    """The ward file is missing or invalid; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Period(_Strict):
    start: dt.time
    end: dt.time

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end <= self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")
        return self


class Closure(_Strict):
    date: dt.date
    reason: str = ""


class Counter(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str = Field(min_length=1)
    procedures: list[str] = Field(min_length=1)


class Block(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str = Field(min_length=1)


class AppointmentRules(_Strict):
    slot_minutes: int = Field(30, ge=5, le=240)
    capacity_per_counter: int = Field(2, ge=1, le=100)
    lead_time_hours: int = Field(2, ge=0, le=72)
    horizon_days: int = Field(14, ge=1, le=120)
    # Reminders of a booking (actions/reminders.py, sent by the outbox): at this local hour on
    # the day before, and this many hours before the slot; one that would be past is skipped.
    reminder_hour_day_before: int = Field(19, ge=0, le=23)
    reminder_hours_before: int = Field(2, ge=1, le=24)
    # Personal data (name, phone, note, chat id) of an appointment is anonymised this many days
    # after it (bot.appointments.service.anonymise_expired, a daily job of bot/scheduler.py).
    retention_days: int = Field(90, ge=1, le=3650)


class Ward(_Strict):
    sample: bool = False
    name: str = Field(min_length=1, max_length=120)
    province: str = Field(min_length=1)
    desk_name: str = Field(min_length=1)
    address: str = Field(min_length=1)
    phone: str = Field(pattern=r"^[0-9 .+()-]{6,20}$")
    timezone: str = "Asia/Ho_Chi_Minh"
    office_hours: dict[str, list[Period]]
    closures: list[Closure] = []
    counters: list[Counter] = Field(min_length=1)
    appointments: AppointmentRules = AppointmentRules()
    blocks: list[Block] = Field(min_length=1)

    @field_validator("office_hours", mode="before")
    @classmethod
    def _parse_hours(cls, value: object) -> object:
        if not isinstance(value, dict):
            raise ValueError("must map weekdays to [open, close] periods")
        parsed: dict[str, list[dict[str, str]]] = {}
        for day, periods in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r} (use {', '.join(WEEKDAYS)})")
            if not isinstance(periods, list) or not all(isinstance(p, list) and len(p) == 2 for p in periods):
                raise ValueError(f'{day}: each period must be ["HH:MM", "HH:MM"]')
            parsed[day] = [{"start": p[0], "end": p[1]} for p in periods]
        return parsed

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _unique_ids(self) -> Ward:
        for label, items in (("counters", self.counters), ("blocks", self.blocks)):
            ids = [item.id for item in items]
            if len(ids) != len(set(ids)):
                raise ValueError(f"{label}: duplicate id")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def office_hours_text(self) -> str:
        """Office hours as a citizen reads them, e.g. "Thứ Hai: 07:30–11:30, 13:30–17:00"."""
        lines = []
        for index, day in enumerate(WEEKDAYS):
            periods = self.office_hours.get(day)
            if periods:
                spans = ", ".join(f"{p.start:%H:%M}–{p.end:%H:%M}" for p in periods)
                lines.append(f"{VI_WEEKDAYS[index]}: {spans}")
        return "\n".join(lines)

    def placeholders(self) -> dict[str, str]:
        """Values for the {ward_*} placeholders that faq/ texts may use."""
        return {
            "ward_name": self.name,
            "ward_address": self.address,
            "ward_phone": self.phone,
            "office_hours": self.office_hours_text(),
            "desk_name": self.desk_name,
        }


def load_ward(path: Path) -> Ward:
    """Read and validate the ward file, raising WardSettingsError naming the field."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WardSettingsError(f"ward settings file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise WardSettingsError(f"ward settings {path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise WardSettingsError(f"ward settings {path}: expected a mapping at the top")
    try:
        return Ward.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(top)"
        raise WardSettingsError(f"ward settings {path}: field '{field}': {first['msg']}") from None
