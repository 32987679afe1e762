"""The Telegram stand-in (tests/support/telegram_standin.py) in a process of its own, for benchmarks.

Telegram is another machine in production; here it is another process, the same server code,
reached over the same HTTP. It can use the second CPU instead of sharing the GIL and the
worker's core, and its CPU is measured apart from the app's (`cpu()`).

The parent sees the calls (method, chat id, status, time) on demand, through a pipe.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tests.support.appserver import free_port


@dataclass(frozen=True)
class CallSummary:
    """What a benchmark needs of a stand-in Call (no text, no parameters)."""

    method: str
    chat_id: int | None
    status: int
    at: float  # time.monotonic() in the stand-in's process: the same clock on Linux


def _serve(conn: Connection, token: str, port: int) -> None:
    from tests.support.telegram_standin import TelegramStandIn

    standin = TelegramStandIn(token)
    standin.port = port
    standin.start()
    conn.send(("started", None))
    counted = 0  # calls scanned so far, for the running count of sendMessage
    sends = 0
    while True:
        command, argument = conn.recv()
        if command == "limit_rate":
            standin.limit_rate(argument)
            conn.send(("ok", None))
        elif command == "count":
            with standin._lock:
                fresh = standin.calls[counted:]
            counted += len(fresh)
            sends += sum(1 for c in fresh if c.method == "sendMessage")
            conn.send(("ok", sends))
        elif command == "cpu":
            conn.send(("ok", time.process_time()))
        elif command == "calls":
            with standin._lock:
                found = [CallSummary(c.method, c.chat_id, c.status, c.at) for c in standin.calls]
            conn.send(("ok", (found, standin.rate_refusals)))
        elif command == "stop":
            standin.stop()
            conn.send(("ok", None))
            return


class StandInProcess:
    """The subset of TelegramStandIn the benchmarks use, served from a child process."""

    def __init__(self, token: str = "123456:TEST") -> None:
        self.token = token
        self.port = free_port()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._final: tuple[list[CallSummary], int] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no threads or sockets inherited
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, self.token, self.port), name="telegram-standin", daemon=True
        )
        self._process.start()
        self._ask(None, timeout=30)

    def _ask(self, command: tuple[str, Any] | None, timeout: float = 60) -> Any:
        assert self._conn is not None
        if command is not None:
            self._conn.send(command)
        if not self._conn.poll(timeout):
            raise TimeoutError(f"telegram stand-in process did not answer {command}")
        _, value = self._conn.recv()
        return value

    def limit_rate(self, per_second: float | None) -> None:
        self._ask(("limit_rate", per_second))

    def sent(self) -> int:
        """sendMessage calls received so far (any status)."""
        return self._ask(("count", None))

    def cpu(self) -> float:
        """CPU seconds the stand-in's process used so far."""
        return self._ask(("cpu", None))

    def _calls(self) -> tuple[list[CallSummary], int]:
        if self._final is not None:
            return self._final
        return self._ask(("calls", None))

    def calls_of(self, method: str) -> list[CallSummary]:
        return [c for c in self._calls()[0] if c.method == method]

    @property
    def rate_refusals(self) -> int:
        return self._calls()[1]

    def stop(self) -> None:
        if self._process is None:
            return
        try:
            self._final = self._ask(("calls", None))
            self._ask(("stop", None))
        finally:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()
            self._process = None


def wait_until(condition: Any, timeout: float = 600.0, every: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(every)
