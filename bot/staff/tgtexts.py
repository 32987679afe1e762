"""Texts of the staff side on Telegram (faq/staff_telegram.yml): read again when the file changes."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import yaml

from bot.config.settings import PROJECT_ROOT

TEXTS_FILE = PROJECT_ROOT / "faq" / "staff_telegram.yml"
_cache: dict[Path, tuple[int, dict[str, Any]]] = {}


def texts(path: Path = TEXTS_FILE) -> dict[str, Any]:
    """The whole file; re-read when its mtime changes, so edits to faq/ need no restart."""
    stamp = path.stat().st_mtime_ns
    cached = _cache.get(path)
    if cached is None or cached[0] != stamp:
        cached = (stamp, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        _cache[path] = cached
    return cached[1]


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def text(key: str, **values: object) -> str:
    """One text by dotted key ("notice.booked"), placeholders filled, unknown ones kept."""
    node: Any = texts()
    for part in key.split("."):
        node = node[part]
    return string.Formatter().vformat(str(node), (), _Keep({k: str(v) for k, v in values.items()})).strip()
