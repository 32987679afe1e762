"""The contract between the outbox and the channels (see docs/helpers-brief.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass
class SendResult:
    status: Literal["sent", "failed", "blocked", "skipped", "retry"]
    reason: str = ""  # e.g. "outside 48h window", "bot was blocked", "HTTP 500"
    retry_after: float | None = None


class Sender(Protocol):
    """One per channel, registered by channel name. Never raises for platform refusals."""

    channel: str  # "telegram" | "zalo" | "web"

    async def send(self, external_id: str, message: dict) -> SendResult:
        """message = {"text": str, "buttons": [{"title", "payload"}]} (the chat API shape)."""
        ...
