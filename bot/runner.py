"""`python -m bot run`: Rasa as a supervised child process, then the app.

Rasa is restarted with backoff if it dies. SIGINT/SIGTERM stop the app and
then Rasa (SIGTERM, SIGKILL after a grace period); the child is also asked by
the kernel to exit if this process dies without cleaning up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from bot.config.settings import PROJECT_ROOT, Settings
from bot.services import Services
from bot.web.app import create_app

log = logging.getLogger(__name__)
RASA_BIN = PROJECT_ROOT / ".venv-rasa" / "bin" / "rasa"
STOP_GRACE = 10.0


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the parent dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class RasaSupervisor:
    """Keeps one `rasa run --enable-api` process alive until told to stop."""

    def __init__(self, settings: Settings, env: dict[str, str], log_file: Path) -> None:
        self.settings = settings
        self.env = env
        self.log_file = log_file
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._stopping = asyncio.Event()

    def command(self) -> list[str]:
        return [
            str(RASA_BIN), "run", "--enable-api",
            "--interface", "127.0.0.1",
            "--port", str(self.settings.rasa_port),
            "--model", str(self.settings.rasa_model),
            "--endpoints", str(PROJECT_ROOT / "endpoints.yml"),
            "--credentials", str(PROJECT_ROOT / "credentials.yml"),
            f"--auth-token={self.env['RASA_TOKEN']}",  # "=": a token may start with "-"
        ]  # fmt: skip

    async def run(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            started = time.monotonic()
            with self.log_file.open("ab") as out:
                self.process = await asyncio.create_subprocess_exec(
                    *self.command(),
                    cwd=PROJECT_ROOT,
                    env=self.env,
                    stdout=out,
                    stderr=out,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            log.info("rasa started (pid %s)", self.process.pid)
            code = await self.process.wait()
            if self._stopping.is_set():
                break
            backoff = 1.0 if time.monotonic() - started > 120 else min(backoff * 2, 60.0)
            self.restarts += 1
            log.warning("rasa exited with %s; restarting in %.0f s", code, backoff)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=backoff)

    async def stop(self) -> None:
        self._stopping.set()
        process = self.process
        if process is None or process.returncode is not None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=STOP_GRACE)
        except TimeoutError:
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()
        log.info("rasa stopped")


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class _Server(uvicorn.Server):
    """uvicorn without re-raising the signal after shutdown, so Rasa is stopped cleanly."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._request_exit)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    def _request_exit(self) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


def rasa_environment(settings: Settings) -> dict[str, str]:
    """Environment for both processes: endpoints.yml and the shared tokens."""
    env = dict(os.environ)
    env.setdefault("RASA_TOKEN", secrets.token_urlsafe(24))
    env.setdefault("ACTION_TOKEN", secrets.token_urlsafe(24))
    env["ACTION_ENDPOINT_URL"] = f"http://127.0.0.1:{settings.port}/webhook?token={env['ACTION_TOKEN']}"
    env["RASA_TRACKER_URL"] = settings.effective_tracker_url
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    return env


async def run_all(settings: Settings, services: Services, with_rasa: bool = True) -> None:
    """Serve the app; with_rasa also supervises the Rasa process."""
    env = rasa_environment(settings)
    os.environ["RASA_TOKEN"] = env["RASA_TOKEN"]
    os.environ["ACTION_TOKEN"] = env["ACTION_TOKEN"]
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    supervisor = RasaSupervisor(settings, env, settings.var_dir / "rasa.log") if with_rasa else None
    supervisor_task = asyncio.create_task(supervisor.run()) if supervisor else None
    app = create_app(settings, services)
    server = _Server(
        uvicorn.Config(app, host=settings.host, port=settings.port, access_log=False, log_config=None)
    )
    try:
        await server.serve()
    finally:
        if supervisor and supervisor_task:
            await supervisor.stop()
            supervisor_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor_task
    if not server.started:
        sys.exit(1)
