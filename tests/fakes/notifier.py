"""A Notifier that records every event, for tests that check what a user would see."""

from __future__ import annotations

import asyncio

from core.types import Delivered, Failed, JobEvent, ReplyTarget


class RecordingNotifier:
    """Keeps (target, event) pairs; lets a test wait for a job's final event."""

    def __init__(self) -> None:
        self.events: list[tuple[ReplyTarget, JobEvent]] = []
        self._changed = asyncio.Event()

    async def notify(self, target: ReplyTarget, event: JobEvent) -> None:
        """Record the event."""
        self.events.append((target, event))
        self._changed.set()

    def for_job(self, job_id: str) -> list[JobEvent]:
        """Every event of one job, in order."""
        return [e for _, e in self.events if e.job_id == job_id]

    def final(self, job_id: str) -> Delivered | Failed | None:
        """The job's last final event."""
        for event in reversed(self.for_job(job_id)):
            if isinstance(event, Delivered | Failed):
                return event
        return None

    async def wait_final(self, job_id: str, timeout: float = 10.0) -> Delivered | Failed:
        """Wait for the job's final event."""
        async with asyncio.timeout(timeout):
            while (event := self.final(job_id)) is None:
                self._changed.clear()
                await self._changed.wait()
        return event
