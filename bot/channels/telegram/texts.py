"""The Telegram channel's texts: faq/messages.yml (section "Telegram"), placeholders filled."""

from __future__ import annotations

from typing import Any

from bot.knowledge.kb import fill
from bot.services import Services


class Texts:
    def __init__(self, services: Services) -> None:
        self.services = services

    def _values(self) -> dict[str, str]:
        return self.services.ward.placeholders()

    def common(self, key: str) -> str:
        """A top-level text of messages.yml (greet, help, privacy_notice...)."""
        return self.services.kb.message(key, **self._values())

    def get(self, key: str, **values: str) -> str:
        """A text of the `telegram:` section."""
        section: dict[str, Any] = self.services.kb.messages.get("telegram") or {}
        return fill(str(section[key]), {**self._values(), **values}).strip()

    def commands(self) -> dict[str, str]:
        section: dict[str, Any] = self.services.kb.messages.get("telegram") or {}
        return {str(k): str(v) for k, v in (section.get("commands") or {}).items()}

    def menu(self) -> list[dict[str, str]]:
        return [
            {"title": str(item["title"]), "payload": str(item["payload"])}
            for item in self.services.kb.messages.get("menu") or []
        ]
