"""Ports: what core needs from the outside, declared as protocols.

``storage/`` implements the unit of work and the file store, and each chat adapter a
:class:`Notifier`. The image model port lives with its area, in ``core/generation/ports.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from core.types import JobEvent, ReplyTarget

# --- delivery -------------------------------------------------------------------------------


class Notifier(Protocol):
    """Delivers job events to one platform (each adapter implements it)."""

    async def notify(self, target: ReplyTarget, event: JobEvent) -> None:
        """Send or edit the platform message for ``event``; may raise on platform errors."""
        ...


# --- time -------------------------------------------------------------------------------------


class Clock(Protocol):
    """Current time, injectable so retention and rate limits can be tested."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...
