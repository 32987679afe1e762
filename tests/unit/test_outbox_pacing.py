"""The outbox's pure schedulers: the rate limiter's schedule and quiet hours, no sleeping."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.outbox.pacing import QuietHours, RateLimiter

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def test_global_rate_spaces_slots_evenly_without_bursts() -> None:
    limiter = RateLimiter(rate=25, per_recipient=1.0)
    schedule = [limiter.reserve("telegram", f"u{i}", now=100.0) for i in range(50)]
    assert all(ok for ok, _ in schedule)
    assert [at for _, at in schedule] == pytest.approx([100.0 + i * 0.04 for i in range(50)])


def test_after_idling_the_next_slot_is_now_not_a_catch_up_burst() -> None:
    limiter = RateLimiter(rate=10)
    limiter.reserve("telegram", "a", now=0.0)
    assert limiter.reserve("telegram", "b", now=60.0) == (True, 60.0)
    assert limiter.reserve("telegram", "c", now=60.0) == (True, pytest.approx(60.1))


def test_one_message_a_second_per_recipient_others_are_not_held_up() -> None:
    limiter = RateLimiter(rate=10, per_recipient=1.0)
    assert limiter.reserve("telegram", "busy", now=0.0) == (True, 0.0)
    assert limiter.reserve("telegram", "busy", now=0.0) == (False, 1.0)  # put back until then
    assert limiter.reserve("telegram", "other", now=0.0) == (True, pytest.approx(0.1))
    assert limiter.reserve("zalo", "busy", now=0.0) == (True, pytest.approx(0.2))  # another channel's user
    assert limiter.reserve("telegram", "busy", now=1.0) == (True, 1.0)


def test_retry_after_pauses_one_channel_only() -> None:
    limiter = RateLimiter(rate=0)
    limiter.pause("telegram", until=30.0)
    assert limiter.reserve("telegram", "a", now=10.0) == (False, 30.0)
    assert limiter.paused_until("telegram", 10.0) == 30.0
    assert limiter.reserve("zalo", "a", now=10.0) == (True, 10.0)
    assert limiter.reserve("telegram", "a", now=30.0) == (True, 30.0)
    assert limiter.paused_until("telegram", 30.0) is None


def test_unlimited_rate_and_pruning() -> None:
    limiter = RateLimiter(rate=0, per_recipient=1.0)
    assert [limiter.reserve("t", str(i), now=5.0)[1] for i in range(3)] == [5.0, 5.0, 5.0]
    limiter.prune(now=7.0)
    assert not limiter._recipient_ready


@pytest.mark.parametrize(
    ("local", "quiet"),
    [("20:59", False), ("21:00", True), ("23:59", True), ("00:00", True), ("06:59", True), ("07:00", False)],
)
def test_default_quiet_hours_wrap_midnight(local: str, quiet: bool) -> None:
    hours = QuietHours(HANOI)
    hour, minute = map(int, local.split(":"))
    now = dt.datetime(2026, 12, 1, hour, minute, tzinfo=HANOI).astimezone(dt.UTC)
    assert hours.is_quiet(now) is quiet


def test_quiet_rows_wait_until_the_next_morning_in_the_ward_time_zone() -> None:
    hours = QuietHours(HANOI, exempt=frozenset({"reminder"}))
    evening = dt.datetime(2026, 12, 1, 22, 15, tzinfo=HANOI)
    after_midnight = dt.datetime(2026, 12, 2, 1, 0, tzinfo=HANOI)
    morning = dt.datetime(2026, 12, 2, 7, 0, tzinfo=HANOI)
    assert hours.hold_until("campaign", evening) == morning
    assert hours.hold_until("campaign", after_midnight) == morning
    assert hours.hold_until("campaign", morning) is None
    assert hours.hold_until("reminder", evening) is None
    assert hours.hold_until("campaign", evening).tzinfo is dt.UTC


def test_quiet_hours_within_one_day_and_disabled() -> None:
    lunch = QuietHours(HANOI, dt.time(11, 30), dt.time(13, 30))
    assert lunch.is_quiet(dt.datetime(2026, 12, 1, 12, 0, tzinfo=HANOI))
    assert not lunch.is_quiet(dt.datetime(2026, 12, 1, 14, 0, tzinfo=HANOI))
    assert lunch.ends_after(dt.datetime(2026, 12, 1, 12, 0, tzinfo=HANOI)) == dt.datetime(
        2026, 12, 1, 13, 30, tzinfo=HANOI
    )
    off = QuietHours(HANOI, dt.time(0, 0), dt.time(0, 0))
    assert not off.applies("campaign")
    assert off.hold_until("campaign", dt.datetime(2026, 12, 1, 23, 0, tzinfo=HANOI)) is None


def test_a_recipient_may_have_its_own_spacing() -> None:
    limiter = RateLimiter(rate=0, per_recipient=1.0)
    assert limiter.reserve("telegram", "-100200", now=0.0, spacing=3.0) == (True, 0.0)
    assert limiter.reserve("telegram", "-100200", now=1.5) == (False, 3.0)


def test_the_lease_must_outlast_the_slowest_batch() -> None:
    from bot.outbox.worker import OutboxConfig

    assert OutboxConfig().lease_seconds == 300
    with pytest.raises(ValueError, match="OUTBOX_LEASE_SECONDS"):
        OutboxConfig(batch_size=100, rate=1, lease_seconds=60)
