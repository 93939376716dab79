"""Retention by category with scheduled deletion (P13, P14).

Each category has a period; the sweep deletes what is older, in small batches (each its
own transaction), deleting files before the rows that name them, so it can be stopped at
any point and simply run again. It never holds a lock for long, so generation goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from core.errors import ConfigurationError
from core.files import FileStore
from core.i18n import Msg, msg
from core.ports import Clock
from core.repositories import UnitOfWorkFactory

log = logging.getLogger("imagebot.retention")

CATEGORIES: dict[str, tuple[str, int | None]] = {
    "images_and_prompts": ("Generated images and their prompts", 365),
    "reference_uploads": ("Reference images you send for edits", 30),
    "moderation_records": ("Refused requests (safety records)", 90),
    "exports": ("Data exports you asked for", 7),
    "operational_logs": ("Operational logs (no prompts or images)", 30),
    "privacy_requests": ("The log of privacy requests", 1095),
    "audit_log": ("Decisions by operators and safety systems", 730),
    "ledger": ("Payment and credit records after an erasure (tax law)", 3650),
    "welcome_marks": (
        "A keyed hash of your account saying the free credits were given (nothing else)",
        3650,
    ),
    "seen_updates": ("Ids of chat updates already handled (no content)", 2),
}


@dataclass(frozen=True)
class RetentionPolicy:
    """A period per category; ``None`` keeps a category until the user erases it."""

    days: dict[str, int | None] = field(
        default_factory=lambda: {k: v[1] for k, v in CATEGORIES.items()}
    )

    @classmethod
    def from_json(cls, text: str) -> RetentionPolicy:
        """Defaults, with the operator's overrides (``IMAGEBOT_RETENTION``, days by category)."""
        days: dict[str, int | None] = {k: v[1] for k, v in CATEGORIES.items()}
        if text.strip():
            try:
                overrides = json.loads(text)
                for key, value in dict(overrides).items():
                    if key not in CATEGORIES:
                        raise ValueError(key)
                    days[key] = None if value is None else int(value)
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(
                    "IMAGEBOT_RETENTION must be JSON of days by category, e.g. "
                    f'{{"images_and_prompts": 180}}; categories: {", ".join(CATEGORIES)}'
                ) from exc
        if any(v is not None and v < 1 for v in days.values()):
            raise ConfigurationError("IMAGEBOT_RETENTION: periods are at least one day")
        return cls(days)

    def period(self, category: str) -> timedelta | None:
        """How long ``category`` is kept."""
        days = self.days.get(category)
        return None if days is None else timedelta(days=days)

    def describe(self) -> tuple[tuple[str, str], ...]:
        """(what, how long) for /privacy and the README, read from this policy."""
        rows = []
        for key, (label, _) in CATEGORIES.items():
            days = self.days.get(key)
            rows.append((label, "until you delete them" if days is None else _human(days)))
        return tuple(rows)

    def describe_messages(self) -> tuple[tuple[Msg, Msg], ...]:
        """:meth:`describe` as catalog messages (category, period)."""
        rows = []
        for key in CATEGORIES:
            days = self.days.get(key)
            rows.append((Msg(f"retention.{key}"), _period(days)))
        return tuple(rows)


def _period(days: int | None) -> Msg:
    """A retention period in the largest whole unit (years, months of 30 days, days)."""
    if days is None:
        return Msg("period.forever")
    if days % 365 == 0 and days:
        return msg("period.years", count=days // 365)
    if days % 30 == 0 and days >= 60:
        return msg("period.months", count=days // 30)
    return msg("period.days", count=days)


def _human(days: int) -> str:
    if days % 365 == 0:
        years = days // 365
        return f"{years} year" + ("s" if years != 1 else "")
    if days % 30 == 0 and days >= 60:
        return f"{days // 30} months"
    return f"{days} day" + ("s" if days != 1 else "")


class RetentionRepository(Protocol):
    """What the sweep needs from storage."""

    async def expired_jobs(
        self, states: tuple[str, ...], before: datetime, limit: int
    ) -> list[tuple[str, list[str]]]:
        """Finished jobs older than ``before``: (job id, stored file paths)."""
        ...

    async def delete_jobs(self, job_ids: list[str]) -> None:
        """Delete jobs and their image rows."""
        ...

    async def expired_inputs(self, before: datetime, limit: int) -> list[tuple[int, str]]:
        """Reference images (inputs, masks) of finished jobs older than ``before``."""
        ...

    async def delete_images(self, image_ids: list[int]) -> None:
        """Delete image rows."""
        ...

    async def delete_old(self, category: str, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` rows of a row-only category; return how many went."""
        ...

    async def count_old(self, category: str, before: datetime) -> int:
        """How many rows of a row-only category are older than ``before``."""
        ...


class RetentionUnitOfWork(Protocol):
    """A unit of work that exposes the retention repository."""

    retention: RetentionRepository

    async def __aenter__(self) -> RetentionUnitOfWork:
        """Begin."""
        ...

    async def __aexit__(self, *exc: object) -> None:
        """Roll back what was not committed."""
        ...

    async def commit(self) -> None:
        """Commit."""
        ...


class LogPruner(Protocol):
    """Removes operational log files older than a time."""

    def __call__(self, before: datetime, dry_run: bool) -> int:
        """Remove (or count) log files older than ``before``."""
        ...


class RetentionService:
    """Runs the sweep: ``retention.sweep(dry_run=False)``."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        files: FileStore,
        clock: Clock,
        policy: RetentionPolicy,
        *,
        batch: int = 500,
        prune_logs: LogPruner | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        pause: float = 0.05,
    ) -> None:
        self._uow = uow
        self.files = files
        self.clock = clock
        self.policy = policy
        self.batch = batch
        self.prune_logs = prune_logs
        self.should_stop = should_stop
        self.pause = pause

    def _retention_uow(self) -> RetentionUnitOfWork:
        return self._uow()  # type: ignore[return-value]

    async def sweep(self, *, dry_run: bool = False) -> dict[str, int]:
        """Delete (or, with ``dry_run``, count) everything past its period, by category."""
        now = self.clock.now()
        done: dict[str, int] = {}
        for category in CATEGORIES:
            period = self.policy.period(category)
            if period is None:
                continue
            before = now - period
            done[category] = await self._sweep_one(category, before, dry_run)
        if not dry_run:
            log.info("retention sweep done %s", {k: v for k, v in done.items() if v})
        return done

    async def _sweep_one(self, category: str, before: datetime, dry_run: bool) -> int:
        if category == "images_and_prompts":
            return await self._jobs(("succeeded", "failed", "cancelled"), before, dry_run)
        if category == "moderation_records":
            return await self._jobs(("rejected",), before, dry_run)
        if category == "reference_uploads":
            return await self._inputs(before, dry_run)
        if category == "exports":
            return await self.files.delete_exports_before(before, dry_run=dry_run)
        if category == "operational_logs":
            return self.prune_logs(before, dry_run) if self.prune_logs else 0
        if dry_run:
            async with self._retention_uow() as uow:
                return await uow.retention.count_old(category, before)
        total = 0
        while not self.should_stop():
            async with self._retention_uow() as uow:
                n = await uow.retention.delete_old(category, before, self.batch)
                await uow.commit()
            total += n
            if n < self.batch:
                break
        return total

    async def _jobs(self, states: tuple[str, ...], before: datetime, dry_run: bool) -> int:
        total = 0
        while not self.should_stop():
            async with self._retention_uow() as uow:
                limit = 10**9 if dry_run else self.batch
                batch = await uow.retention.expired_jobs(states, before, limit)
            if dry_run:
                return len(batch)
            if not batch:
                break
            # Files first: a sweep stopped here leaves rows that the next sweep deletes.
            await self.files.delete_many([p for _, paths in batch for p in paths])
            async with self._retention_uow() as uow:
                await uow.retention.delete_jobs([job_id for job_id, _ in batch])
                await uow.commit()
            total += len(batch)
            if len(batch) < self.batch:
                break
            await asyncio.sleep(self.pause)  # let generation take the database in between
        return total

    async def _inputs(self, before: datetime, dry_run: bool) -> int:
        total = 0
        while not self.should_stop():
            async with self._retention_uow() as uow:
                limit = 10**9 if dry_run else self.batch
                batch = await uow.retention.expired_inputs(before, limit)
            if dry_run:
                return len(batch)
            if not batch:
                break
            await self.files.delete_many([path for _, path in batch])
            async with self._retention_uow() as uow:
                await uow.retention.delete_images([image_id for image_id, _ in batch])
                await uow.commit()
            total += len(batch)
            if len(batch) < self.batch:
                break
            await asyncio.sleep(self.pause)  # let generation take the database in between
        return total
