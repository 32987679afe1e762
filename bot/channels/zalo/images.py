"""Campaign photos on Zalo: which photos Zalo takes, and the attachment ids of those uploaded.

Zalo's upload API takes JPEG or PNG of at most 1 MB and answers with an attachment id that a cs
message can show; it keeps the image about 7 days. The id is kept in memory per photo name (one
cache per ZaloChannel, i.e. per OA) for CACHE_TTL, shorter than Zalo's 7 days: the next sends of
the same photo send the id only, and a restarted app (or an id older than CACHE_TTL) uploads
again. Sends of the same photo at the same time wait for one upload. An image message refused
with a cached id drops it and uploads again (ZaloChannel.deliver).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from bot.channels.zalo.api import IMAGE_TYPES, MAX_IMAGE_BYTES

CACHE_TTL = 6 * 24 * 3600.0  # seconds; Zalo keeps an uploaded image about 7 days
MAX_CACHED = 1000
LEFT_OUT_MISSING = "photo left out (file missing)"
LEFT_OUT_TYPE = "photo left out (Zalo takes JPEG or PNG only)"
LEFT_OUT_SIZE = "photo left out (over Zalo's 1 MB image limit)"
LEFT_OUT_QUOTA = "photo left out (48h message quota)"


def left_out_reason(path: Path | None) -> str | None:
    """None when Zalo can take the stored photo, else the reason it goes without it."""
    if path is None:
        return LEFT_OUT_MISSING
    if path.suffix.lstrip(".") not in IMAGE_TYPES:
        return LEFT_OUT_TYPE
    try:
        size = path.stat().st_size
    except OSError:
        return LEFT_OUT_MISSING
    return LEFT_OUT_SIZE if size > MAX_IMAGE_BYTES else None


def media_type(path: Path) -> str:
    return IMAGE_TYPES[path.suffix.lstrip(".")]


class AttachmentCache:
    """Photo name -> (attachment id, when it was uploaded), and one lock per photo name."""

    def __init__(self, ttl: float = CACHE_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._ids: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def get(self, name: str) -> str | None:
        found = self._ids.get(name)
        if found is None:
            return None
        if self.clock() - found[1] >= self.ttl:
            del self._ids[name]
            return None
        return found[0]

    def put(self, name: str, attachment_id: str) -> None:
        if len(self._ids) >= MAX_CACHED:
            self._ids.clear()
        self._ids[name] = (attachment_id, self.clock())

    def forget(self, name: str, attachment_id: str) -> None:
        """Drop a refused id (not one another send has put in its place meanwhile)."""
        found = self._ids.get(name)
        if found is not None and found[0] == attachment_id:
            del self._ids[name]

    def lock(self, name: str) -> asyncio.Lock:
        if len(self._locks) >= MAX_CACHED:
            self._locks = {key: lock for key, lock in self._locks.items() if lock.locked()}
        return self._locks.setdefault(name, asyncio.Lock())
