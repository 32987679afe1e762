"""The HTTP client under python-telegram-bot stays cheap per request.

httpcore (under httpx, under PTB's HTTPXRequest) asks `import sniffio` which event loop
runs, 7 to 12 times a request (locks, events and semaphores it sets up). anyio 4.16 no longer
installs sniffio; without it each ask is a failed import that walks sys.path (37 us instead
of 1 us): 0.3-0.4 ms of CPU a message, a fifth of a send through python-telegram-bot.
"""

from __future__ import annotations

import importlib.abc
import sys
from pathlib import Path

from httpcore._synchronization import current_async_library

ROOT = Path(__file__).resolve().parents[2]


class Recorder(importlib.abc.MetaPathFinder):
    """Sees every import that is not already in sys.modules."""

    def __init__(self) -> None:
        self.looked_up: list[str] = []

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        self.looked_up.append(fullname)
        return None


async def test_httpcore_finds_sniffio_without_searching_for_it() -> None:
    recorder = Recorder()
    sys.meta_path.insert(0, recorder)
    try:
        for _ in range(20):
            assert current_async_library() == "asyncio"
    finally:
        sys.meta_path.remove(recorder)
    assert "sniffio" not in recorder.looked_up


def test_sniffio_is_pinned_for_the_app() -> None:
    lock = (ROOT / "requirements" / "app.lock").read_text(encoding="utf-8").lower().splitlines()
    assert any(line.startswith("sniffio==") for line in lock)
