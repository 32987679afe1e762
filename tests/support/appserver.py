"""Start the real product (`python -m bot run`: Rasa + app) for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AppServer:
    """One `python -m bot run` process with its own ports, var/ folder and log."""

    var_dir: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    command: str = "run"
    module: str = "bot"  # `python -m <module> <command>` (tests/support/faketime.py wraps bot)
    port: int = field(default_factory=free_port)
    rasa_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.var_dir / "app.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "PORT": str(self.port),
                "RASA_PORT": str(self.rasa_port),
                "VAR_DIR": str(self.var_dir),
                "LOG_LEVEL": "INFO",
            }
        )
        env.update(self.env_extra)
        return env

    def start(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, self.command],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 240.0) -> None:
        """Wait until /healthz says everything is ready (Rasa takes about a minute)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"app exited with {self.process.returncode}; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise TimeoutError(f"app not ready after {timeout:.0f} s; see {self.log_path}")

    def rasa_pids(self) -> list[int]:
        """Process ids of the Rasa server this app supervises."""
        assert self.process
        out = subprocess.run(
            ["pgrep", "-f", "--", f"--port {self.rasa_port}"], capture_output=True, text=True
        )
        return [int(pid) for pid in out.stdout.split()]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> float:
        """Signal the app and wait; returns the seconds it took to exit."""
        assert self.process
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return time.monotonic() - started

    def chat(self, user: str, text: str | None = None, payload: str | None = None) -> httpx.Response:
        body: dict[str, str] = {"user": user}
        if text is not None:
            body["text"] = text
        if payload is not None:
            body["payload"] = payload
        return httpx.post(f"{self.url}/api/chat", json=body, timeout=30)
