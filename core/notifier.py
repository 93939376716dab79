"""The notifier hub: routes job events and announcements to the adapter of their platform."""

from __future__ import annotations

import asyncio
import logging

from core.ports import Notifier
from core.types import JobEvent, ReplyTarget

log = logging.getLogger("imagebot.worker")


class NotifierHub:
    """Routes job events to the notifier of the job's platform.

    Progress is best effort; final events are retried a few times, and a platform that
    stays down never changes the job's outcome (the result waits in /history).
    """

    def __init__(self, *, retries: int = 3, backoff: float = 0.5) -> None:
        self._by_platform: dict[str, Notifier] = {}
        self.retries = retries
        self.backoff = backoff

    def register(self, platform: str, notifier: Notifier) -> None:
        """Deliver events of jobs from ``platform`` through ``notifier``."""
        self._by_platform[platform] = notifier

    async def notify(self, target: ReplyTarget, event: JobEvent, *, final: bool = False) -> bool:
        """Send one event; True when the platform took it."""
        notifier = self._by_platform.get(target.platform)
        if notifier is None:
            return False
        attempts = self.retries if final else 1
        for attempt in range(attempts):
            try:
                await notifier.notify(target, event)
                return True
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning(
                    "delivery failed job=%s platform=%s attempt=%s",
                    event.job_id,
                    target.platform,
                    attempt + 1,
                    exc_info=True,
                )
                if attempt + 1 < attempts:
                    await asyncio.sleep(self.backoff * 2**attempt)
        return False
