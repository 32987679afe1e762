"""Faults, run last in the session: Rasa dying, and the app being stopped."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from bot.config.settings import PROJECT_ROOT
from bot.config.ward import load_ward
from tests.support.appserver import AppServer

pytestmark = pytest.mark.integration
WARD = load_ward(PROJECT_ROOT / "settings" / "ward.yml")


def test_rasa_down_gives_a_polite_answer_and_recovers_without_restart(app: AppServer) -> None:
    pids = app.rasa_pids()
    assert pids, "the app should be supervising a Rasa process"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    response = app.chat("faulty", "làm căn cước ở đâu")
    assert response.status_code == 503
    body = response.json()
    assert WARD.phone in body["messages"][0]["text"]
    assert body["topic"] == "handoff"
    assert httpx.get(f"{app.url}/healthz").json()["rasa"] == "unavailable"
    app.wait_ready(timeout=240)  # the supervisor restarts Rasa; the app itself keeps running
    assert app.chat("faulty", "xin chào").json()["topic"] == "greet"


def test_sigterm_stops_both_processes_quickly_and_leaves_no_orphan(app: AppServer) -> None:
    rasa = app.rasa_pids()
    assert rasa
    took = app.stop(signal.SIGTERM, timeout=30)
    assert took < 15, f"shutdown took {took:.1f} s"
    time.sleep(0.5)
    assert app.rasa_pids() == []
