"""The channel user behind a Rasa conversation: sender ids are "<channel>:<external id>"."""

from __future__ import annotations

from rasa_sdk import Tracker

KNOWN_CHANNELS = ("web", "telegram", "zalo")


def channel_user(tracker: Tracker) -> tuple[str, str]:
    """("web", "abc") for "web:abc"; a sender id without a known channel (rasa shell, tests) is
    kept whole under the channel "rasa"."""
    sender = tracker.sender_id or ""
    channel, sep, external_id = sender.partition(":")
    if sep and channel in KNOWN_CHANNELS and external_id:
        return channel, external_id[:64]
    return "rasa", sender[:64] or "default"
