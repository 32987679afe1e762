"""Pure scheduling helpers for the worker: the rate limiter and quiet hours (no I/O, no clock)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo


class RateLimiter:
    """Spaces sends: at most `rate` a second overall, one per `per_recipient` seconds per recipient.

    Times are plain seconds (a timestamp) given by the caller, so the schedule
    can be asserted without sleeping. `reserve` either books a slot (True, at)
    or says the recipient or channel is not ready before `at` (False, at): the
    worker puts that row back with not_before=at rather than hold up the queue.
    Sends are strictly spaced (no bursts): after idling the next slot is "now".
    """

    def __init__(self, rate: float, per_recipient: float = 1.0) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.per_recipient = per_recipient
        self._next_slot = 0.0
        self._recipient_ready: dict[tuple[str, str], float] = {}
        self._channel_paused: dict[str, float] = {}

    def reserve(
        self, channel: str, external_id: str, now: float, spacing: float | None = None
    ) -> tuple[bool, float]:
        """Book a send; `spacing` overrides the per-recipient gap (e.g. Telegram groups: 3 s)."""
        paused = self._channel_paused.get(channel, 0.0)
        if paused > now:
            return False, paused
        slot = max(now, self._next_slot)
        key = (channel, external_id)
        ready = self._recipient_ready.get(key, 0.0)
        if ready > slot:
            return False, ready
        self._next_slot = slot + self.interval
        self._recipient_ready[key] = slot + (self.per_recipient if spacing is None else spacing)
        return True, slot

    def pause(self, channel: str, until: float) -> None:
        """The platform asked to wait (RetryAfter): no slot for this channel before `until`."""
        self._channel_paused[channel] = max(until, self._channel_paused.get(channel, 0.0))

    def paused_until(self, channel: str, now: float) -> float | None:
        until = self._channel_paused.get(channel, 0.0)
        return until if until > now else None

    def prune(self, now: float) -> None:
        """Forget recipients that are ready anyway (keeps memory bounded on big campaigns)."""
        self._recipient_ready = {k: t for k, t in self._recipient_ready.items() if t > now}


@dataclass(frozen=True)
class QuietHours:
    """No messages of a quiet kind between `start` and `end` (local time of the ward).

    start > end wraps midnight (the default 21:00–07:00); start == end disables.
    Kinds in `exempt` (e.g. "reminder" when a ward wants them at night) are never held.
    """

    tz: ZoneInfo
    start: dt.time = dt.time(21, 0)
    end: dt.time = dt.time(7, 0)
    exempt: frozenset[str] = field(default_factory=frozenset)

    def applies(self, kind: str) -> bool:
        return self.start != self.end and kind not in self.exempt

    def is_quiet(self, now: dt.datetime) -> bool:
        if self.start == self.end:
            return False
        local = now.astimezone(self.tz).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends_after(self, now: dt.datetime) -> dt.datetime:
        """The next end of quiet hours after `now`, in UTC."""
        local = now.astimezone(self.tz)
        end = dt.datetime.combine(local.date(), self.end, tzinfo=self.tz)
        if end <= local:
            end = dt.datetime.combine(local.date() + dt.timedelta(days=1), self.end, tzinfo=self.tz)
        return end.astimezone(dt.UTC)

    def hold_until(self, kind: str, now: dt.datetime) -> dt.datetime | None:
        """When a row of this kind due now may go, if it must wait for the morning."""
        if self.applies(kind) and self.is_quiet(now):
            return self.ends_after(now)
        return None
