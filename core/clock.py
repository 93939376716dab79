"""Clocks: the system clock, and a settable one for tests of time-based rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SystemClock:
    """The real time in UTC."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        """The clock's current time."""
        return self._now

    def advance(self, **delta: float) -> None:
        """Move forward by a ``timedelta(**delta)``."""
        self._now += timedelta(**delta)
