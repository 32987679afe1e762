"""Helpers for talking to the product through the chat API in integration tests."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.appserver import AppServer


def user() -> str:
    """A fresh web user id: one new conversation."""
    return uuid.uuid4().hex[:12]


def say(app: AppServer, sender: str, text: str | None = None, payload: str | None = None) -> dict[str, Any]:
    """One turn that must succeed; returns the chat API's JSON body."""
    response = app.chat(sender, text, payload)
    assert response.status_code == 200, response.text
    return response.json()


def buttons(body: dict[str, Any]) -> dict[str, str]:
    """Every button of a reply, title → payload."""
    return {b["title"]: b["payload"] for m in body["messages"] for b in m.get("buttons") or []}


def text_of(body: dict[str, Any]) -> str:
    """All texts of a reply, one per line."""
    return "\n".join(m.get("text") or "" for m in body["messages"])
