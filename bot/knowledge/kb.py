"""The knowledge base in faq/: procedures, guides and the assistant's messages.

Loaded and validated as a whole, so a broken file is found at start (and by a
test), never in front of a citizen. Reading is cheap and happens at start;
`KnowledgeBase.reload()` picks up edits without retraining or restarting Rasa.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.knowledge.catalog import Catalog

log = logging.getLogger(__name__)

MAX_ANSWER = 700
MAX_STEP = 500
PLACEHOLDERS = frozenset({"ward_name", "ward_address", "ward_phone", "office_hours", "desk_name"})
ASPECTS = ("ho_so", "cac_buoc", "le_phi", "thoi_gian", "noi_lam", "dieu_kien", "thoi_han")


class KnowledgeBaseError(ValueError):
    """A faq/ file is missing or invalid; the message names the file and field."""


def _check_text(value: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise ValueError("empty text")
    if len(value) > limit:
        raise ValueError(f"{len(value)} characters, at most {limit}")
    for _, name, _, _ in string.Formatter().parse(value):
        if name is not None and name not in PLACEHOLDERS:
            raise ValueError(f"unknown placeholder {{{name}}}")
    return value


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")


class Procedure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    title: str = Field(min_length=1, max_length=80)
    summary: str
    aspects: dict[str, str] = {}
    desk: bool = False
    guide: str | None = None
    legal_basis: list[str] = Field(min_length=1)
    sources: list[Source] = Field(min_length=1)
    checked: dt.date
    verify: str = Field(min_length=1)

    @field_validator("summary")
    @classmethod
    def _summary(cls, value: str) -> str:
        return _check_text(value, MAX_ANSWER)

    @field_validator("aspects")
    @classmethod
    def _aspects(cls, value: dict[str, str]) -> dict[str, str]:
        for aspect, text in value.items():
            if aspect not in ASPECTS:
                raise ValueError(f"unknown aspect {aspect!r}")
            try:
                value[aspect] = _check_text(text or "", MAX_ANSWER)
            except ValueError as exc:
                raise ValueError(f"{aspect}: {exc}") from None
        return value


class GuideStep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    problems: str

    @field_validator("text", "problems")
    @classmethod
    def _text(cls, value: str) -> str:
        return _check_text(value, MAX_STEP)


class Guide(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    title: str = Field(min_length=1, max_length=80)
    topic: str
    intro: str
    steps: list[GuideStep] = Field(min_length=2)
    done: str
    completion_tag: str | None = None
    sources: list[Source] = Field(min_length=1)
    checked: dt.date

    @field_validator("intro", "done")
    @classmethod
    def _text(cls, value: str) -> str:
        return _check_text(value, MAX_STEP)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeBaseError(f"{path}: not valid YAML: {exc}") from None


def _validate(model: type[BaseModel], path: Path) -> Any:
    try:
        return model.model_validate(_read_yaml(path))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise KnowledgeBaseError(f"{path}: field '{where}': {first['msg']}") from None


@dataclass
class KnowledgeBase:
    """Everything in faq/, checked against the catalog."""

    root: Path
    catalog: Catalog = field(init=False)
    procedures: dict[str, Procedure] = field(init=False)
    guides: dict[str, Guide] = field(init=False)
    messages: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self._stamp = self._files_stamp()
        self._checked_at = time.monotonic()
        self.reload()

    def _files_stamp(self) -> tuple[int, int]:
        """Cheap change detector: number of files and newest modification time."""
        times = [p.stat().st_mtime_ns for p in self.root.rglob("*.yml")]
        return len(times), max(times, default=0)

    def refresh_if_changed(self, every: float = 2.0) -> bool:
        """Reload when a file in faq/ changed (checked at most every `every` seconds).

        An edited fee or step is live without a restart; an edit that breaks
        validation is logged and the last good content stays in use.
        """
        now = time.monotonic()
        if now - self._checked_at < every:
            return False
        self._checked_at = now
        stamp = self._files_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self.reload()
        except KnowledgeBaseError as exc:
            log.error("knowledge base edit rejected, keeping the previous content: %s", exc)
            return False
        log.info("knowledge base reloaded")
        return True

    def reload(self) -> None:
        catalog = Catalog.load(self.root / "topics.yml")
        procedures = self._load_dir("procedures", Procedure)
        guides = self._load_dir("guides", Guide)
        messages = _read_yaml(self.root / "messages.yml")
        self._check(catalog, procedures, guides)
        self.catalog, self.procedures, self.guides, self.messages = (
            catalog,
            procedures,
            guides,
            messages,
        )

    def _load_dir(self, name: str, model: type[BaseModel]) -> dict[str, Any]:
        items = {}
        for path in sorted((self.root / name).glob("*.yml")):
            item = _validate(model, path)
            if item.id != path.stem:
                raise KnowledgeBaseError(f"{path}: id {item.id!r} differs from the file name")
            items[item.id] = item
        return items

    @staticmethod
    def _check(catalog: Catalog, procedures: dict[str, Procedure], guides: dict[str, Guide]) -> None:
        missing = sorted(set(catalog.procedures) - set(procedures))
        if missing:
            raise KnowledgeBaseError(f"faq/procedures: no file for {', '.join(missing)}")
        unknown = sorted(set(procedures) - set(catalog.procedures))
        if unknown:
            raise KnowledgeBaseError(f"faq/procedures: not in the catalog: {', '.join(unknown)}")
        for procedure in procedures.values():
            if procedure.guide and procedure.guide not in guides:
                raise KnowledgeBaseError(
                    f"faq/procedures/{procedure.id}.yml: guide {procedure.guide!r} does not exist"
                )
        for guide in guides.values():
            if guide.topic not in catalog.procedures:
                raise KnowledgeBaseError(f"faq/guides/{guide.id}.yml: unknown topic {guide.topic!r}")

    def message(self, key: str, **values: str) -> str:
        """A text of messages.yml with its placeholders filled."""
        return fill(str(self.messages[key]), values).strip()


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(text: str, values: dict[str, str]) -> str:
    """Fill {name} placeholders; unknown names stay as they are (never raises)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
