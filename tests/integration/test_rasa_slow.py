"""Rasa slow (no answer within RASA_TIMEOUT): the citizen gets a polite message, the app stays up."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from bot.config.settings import PROJECT_ROOT
from bot.config.ward import load_ward
from tests.support.appserver import AppServer, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def silent_rasa() -> Iterator[int]:
    """A TCP server that accepts connections and never answers: a hung Rasa."""
    port = free_port()
    server = socket.create_server(("127.0.0.1", port))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_slow_rasa_gets_a_polite_answer_within_the_timeout(tmp_path, silent_rasa: int) -> None:
    app = AppServer(
        var_dir=tmp_path,
        command="serve",
        env_extra={"RASA_URL": f"http://127.0.0.1:{silent_rasa}", "RASA_TIMEOUT": "1.5"},
    )
    app.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"{app.url}/healthz", timeout=5)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert health.status_code == 503
        assert health.json()["rasa"] == "unavailable" and health.json()["database"] == "ok"
        started = time.monotonic()
        response = app.chat("slowpoke", "làm căn cước ở đâu")
        took = time.monotonic() - started
        assert response.status_code == 503
        assert (
            load_ward(PROJECT_ROOT / "settings" / "ward.yml").phone in response.json()["messages"][0]["text"]
        )
        assert took < 5, f"the citizen waited {took:.1f} s"
        assert httpx.get(f"{app.url}/", timeout=5).status_code == 200  # still serving
    finally:
        app.stop()
