"""Storage queries of the retention sweep."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.billing.models import WelcomeMark
from storage.models import Job, JobImage, LedgerEntry
from storage.privacy.models import AuditEntry, PrivacyRequest
from storage.safety.models import SeenUpdate

_ROW_CATEGORIES: dict[str, tuple[Any, ColumnElement[bool] | None, Any]] = {
    "privacy_requests": (PrivacyRequest, None, PrivacyRequest.received_at),
    "audit_log": (AuditEntry, None, AuditEntry.created_at),
    # Only rows already unlinked by an erasure: a live account's ledger must keep summing
    # to its balance.
    "ledger": (LedgerEntry, LedgerEntry.user_id.is_(None), LedgerEntry.created_at),
    "seen_updates": (SeenUpdate, None, SeenUpdate.seen_at),
    # As long as the ledger: the free credits are given once per account in that time.
    "welcome_marks": (WelcomeMark, None, WelcomeMark.created_at),
}


class SqlRetentionRepository:
    """Finds and deletes what is past its retention period."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def expired_jobs(
        self, states: tuple[str, ...], before: datetime, limit: int
    ) -> list[tuple[str, list[str]]]:
        """Finished jobs older than ``before`` with their file paths."""
        stmt = (
            select(Job.id)
            # Every final state sets finished_at; the (state, finished_at) index serves it.
            .where(Job.state.in_(states), Job.finished_at < before)
            .order_by(Job.finished_at)
            .limit(limit)
        )
        ids = list((await self.s.execute(stmt)).scalars().all())
        if not ids:
            return []
        paths: dict[str, list[str]] = {i: [] for i in ids}
        rows = await self.s.execute(
            select(JobImage.job_id, JobImage.path).where(JobImage.job_id.in_(ids))
        )
        for job_id, path in rows.all():
            paths[job_id].append(path)
        return [(i, paths[i]) for i in ids]

    async def delete_jobs(self, job_ids: list[str]) -> None:
        """Delete jobs and their images."""
        if job_ids:
            await self.s.execute(delete(JobImage).where(JobImage.job_id.in_(job_ids)))
            await self.s.execute(delete(Job).where(Job.id.in_(job_ids)))

    async def expired_inputs(self, before: datetime, limit: int) -> list[tuple[int, str]]:
        """Reference images of finished jobs older than ``before``."""
        stmt = (
            select(JobImage.id, JobImage.path)
            .join(Job, Job.id == JobImage.job_id)
            .where(
                JobImage.role.in_(("input", "mask")),
                JobImage.created_at < before,
                Job.state.in_(("succeeded", "failed", "cancelled", "rejected")),
            )
            .order_by(JobImage.id)
            .limit(limit)
        )
        return [(int(i), str(p)) for i, p in (await self.s.execute(stmt)).all()]

    async def delete_images(self, image_ids: list[int]) -> None:
        """Delete image rows."""
        if image_ids:
            await self.s.execute(delete(JobImage).where(JobImage.id.in_(image_ids)))

    def _old(self, category: str, before: datetime) -> tuple[Any, list[ColumnElement[bool]]]:
        model, extra, stamp = _ROW_CATEGORIES[category]
        conditions = [stamp < before]
        if extra is not None:
            conditions.append(extra)
        return model, conditions

    async def delete_old(self, category: str, before: datetime, limit: int) -> int:
        """Delete a batch of old rows of a row-only category."""
        model, conditions = self._old(category, before)
        pk = next(iter(model.__table__.primary_key.columns))
        ids = list(
            (await self.s.execute(select(pk).where(*conditions).limit(limit))).scalars().all()
        )
        if ids:
            await self.s.execute(delete(model).where(pk.in_(ids)))
        return len(ids)

    async def count_old(self, category: str, before: datetime) -> int:
        """How many old rows a category has."""
        model, conditions = self._old(category, before)
        stmt = select(func.count()).select_from(model).where(*conditions)
        return int((await self.s.execute(stmt)).scalar_one())
