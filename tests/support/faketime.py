"""Run the real app with a clock the test sets: libfaketime (Debian package `faketime`).

The app process is started with LD_PRELOAD=libfaketime and FAKETIME="@<start>": its wall
clock (time.time, datetime.now, SQLite's now) starts at that moment and ticks normally, while
CLOCK_MONOTONIC stays real (FAKETIME_DONT_FAKE_MONOTONIC=1), so asyncio, uvicorn, httpx and
the outbox worker's timeouts behave. The product does not know it is being tested: it is run
as `python -m tests.support.faketime_main run`, which is `python -m bot run` after taking
libfaketime out of the environment its children inherit. The Rasa child therefore keeps the real
clock: with libfaketime preloaded (faking or not) TensorFlow hangs while Rasa loads the model,
and Rasa has no date logic of ours (the custom actions, booking validation, the scheduler and
the outbox all run in the app process).

A test moves the clock by restarting the app with a later start, which is exactly what the
persistence tests need (restart between booking and reminder time).
"""

from __future__ import annotations

import datetime as dt
import glob
import os

MODULE = "tests.support.faketime_main"  # for AppServer(module=...)
LIBRARY_GLOBS = (
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)


def library() -> str | None:
    """libfaketime's path, or None when the Debian package is not installed (`make faketime`)."""
    for pattern in LIBRARY_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def env(start: dt.datetime) -> dict[str, str]:
    """Environment for an app process whose clock starts at `start` (aware) and ticks on."""
    lib = library()
    if lib is None:
        raise RuntimeError("libfaketime is not installed: run `make faketime`")
    utc = start.astimezone(dt.UTC)
    preload = " ".join(part for part in (lib, os.environ.get("LD_PRELOAD", "")) if part)
    return {
        "LD_PRELOAD": preload,
        "FAKETIME": f"@{utc:%Y-%m-%d %H:%M:%S}",
        "TZ": "UTC",  # FAKETIME is read in the process's local time zone
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
