"""Periodic work in one process: the retention sweep (APScheduler 3)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core.app import Core

log = logging.getLogger("imagebot.scheduler")


async def start_scheduler(core: Core) -> Callable[[], Awaitable[None]]:
    """Run the retention sweep every ``IMAGEBOT_RETENTION_INTERVAL_MINUTES`` and ask the
    providers about the enabled models every ``IMAGEBOT_MODEL_CHECK_HOURS`` (daily)."""
    scheduler = AsyncIOScheduler(timezone=UTC)

    async def sweep() -> None:
        # Several processes may run the scheduler role; only the one holding the
        # database's leader lock sweeps (a standby takes over when the leader goes).
        try:
            if core.locks is not None and not await core.locks.try_lead():
                log.debug("another process leads the scheduler")
                return
            await core.retention.sweep()
        except Exception:
            log.exception("retention sweep failed; it runs again at the next interval")

    scheduler.add_job(
        sweep,
        "interval",
        minutes=core.settings.retention_interval_minutes,
        next_run_time=datetime.now(UTC)
        + timedelta(seconds=min(30.0, core.settings.retention_interval_minutes * 60)),
        max_instances=1,
        coalesce=True,
        id="retention",
    )

    async def follow_models() -> None:
        # Every process keeps its own running catalog, so each one asks (moving saved
        # choices and operator notices are idempotent across processes).
        watch = core.generation.watch
        if watch is None:
            return
        try:
            await watch.refresh()
        except Exception:
            log.exception("model check failed; it runs again at the next interval")

    hours = core.settings.model_check_hours
    scheduler.add_job(
        follow_models,
        "interval",
        hours=hours,
        next_run_time=datetime.now(UTC) + timedelta(hours=hours),
        max_instances=1,
        coalesce=True,
        id="models",
    )
    scheduler.start()

    async def stop() -> None:
        scheduler.shutdown(wait=False)

    return stop
