"""The gallery's queries, sign-in links and sessions (``core.generation.GalleryRepository``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.generation.ports import GalleryRow
from storage.gallery.models import GallerySession, GallerySignIn
from storage.models import Job, JobImage

SUCCEEDED = "succeeded"


def _row(image: JobImage, job: Job, outputs: int) -> GalleryRow:
    return GalleryRow(
        job_id=job.id,
        index=image.idx,
        path=image.path,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        size_bytes=image.size_bytes,
        prompt=job.prompt,
        options=dict(job.options),
        cost=job.cost,
        kind=job.kind,
        created_at=job.created_at,
        outputs=outputs,
    )


class SqlGalleryRepository:
    """Outputs of succeeded jobs, newest first; links and sessions by hash."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    def _outputs_of(self, user_id: int, job_ids: list[str] | None) -> list[Any]:
        conditions: list[Any] = [
            Job.user_id == user_id,
            Job.state == SUCCEEDED,
            JobImage.job_id == Job.id,
            JobImage.role == "output",
        ]
        if job_ids is not None:
            conditions.append(Job.id.in_(job_ids))
        return conditions

    async def _with_counts(self, pairs: list[tuple[JobImage, Job]]) -> list[GalleryRow]:
        ids = sorted({job.id for _, job in pairs})
        counts: dict[str, int] = {}
        if ids:
            stmt = (
                select(JobImage.job_id, func.count())
                .where(JobImage.job_id.in_(ids), JobImage.role == "output")
                .group_by(JobImage.job_id)
            )
            counts = {j: int(n) for j, n in (await self.s.execute(stmt)).all()}
        return [_row(image, job, counts.get(job.id, 1)) for image, job in pairs]

    async def outputs(
        self, user_id: int, offset: int, limit: int, job_ids: list[str] | None = None
    ) -> tuple[list[GalleryRow], int]:
        """A page of outputs and the total."""
        if job_ids is not None and not job_ids:
            return [], 0
        where = self._outputs_of(user_id, job_ids)
        total = int(
            (
                await self.s.execute(select(func.count()).select_from(JobImage, Job).where(*where))
            ).scalar_one()
        )
        stmt = (
            select(JobImage, Job)
            .where(*where)
            .order_by(Job.created_at.desc(), Job.id.desc(), JobImage.idx)
            .offset(offset)
            .limit(limit)
        )
        pairs = [(i, j) for i, j in (await self.s.execute(stmt)).all()]
        return await self._with_counts(pairs), total

    async def prompts(self, user_id: int) -> list[tuple[str, str]]:
        """(job id, prompt) of succeeded jobs, newest first."""
        stmt = (
            select(Job)
            .where(Job.user_id == user_id, Job.state == SUCCEEDED)
            .order_by(Job.created_at.desc(), Job.id.desc())
        )
        return [(j.id, j.prompt) for j in (await self.s.execute(stmt)).scalars().all()]

    async def output(self, user_id: int, job_id: str, index: int) -> GalleryRow | None:
        """One output of one of the user's succeeded jobs."""
        stmt = select(JobImage, Job).where(
            *self._outputs_of(user_id, [job_id]), JobImage.idx == index
        )
        found = (await self.s.execute(stmt)).first()
        if found is None:
            return None
        rows = await self._with_counts([(found[0], found[1])])
        return rows[0]

    # --- sign-in links and sessions ---------------------------------------------------------

    async def add_sign_in(
        self, token_hash: str, user_id: int, now: datetime, expires_at: datetime
    ) -> None:
        """Record an issued link."""
        self.s.add(
            GallerySignIn(
                token_hash=token_hash,
                user_id=user_id,
                created_at=now,
                expires_at=expires_at,
                used_at=None,
            )
        )
        await self.s.flush()

    async def use_sign_in(self, token_hash: str, now: datetime) -> int | None:
        """One conditional update: only the first exchange of an unexpired link wins."""
        result = await self.s.execute(
            update(GallerySignIn)
            .where(
                GallerySignIn.token_hash == token_hash,
                GallerySignIn.used_at.is_(None),
                GallerySignIn.expires_at > now,
            )
            .values(used_at=now)
            .returning(GallerySignIn.user_id)
            .execution_options(synchronize_session=False)
        )
        user_id = result.scalar_one_or_none()
        return int(user_id) if user_id is not None else None

    async def add_session(
        self, session_hash: str, user_id: int, via: str, now: datetime, expires_at: datetime
    ) -> None:
        """Record a session."""
        self.s.add(
            GallerySession(
                session_hash=session_hash,
                user_id=user_id,
                via=via,
                created_at=now,
                expires_at=expires_at,
            )
        )
        await self.s.flush()

    async def session(self, session_hash: str, now: datetime) -> tuple[int, str] | None:
        """(user id, via) of an unexpired session."""
        stmt = select(GallerySession.user_id, GallerySession.via).where(
            GallerySession.session_hash == session_hash, GallerySession.expires_at > now
        )
        found = (await self.s.execute(stmt)).first()
        return (int(found[0]), str(found[1])) if found else None

    async def end_session(self, session_hash: str) -> None:
        """Delete one session."""
        await self.s.execute(
            delete(GallerySession).where(GallerySession.session_hash == session_hash)
        )

    async def purge_expired(self, now: datetime) -> int:
        """Delete expired sessions and links."""
        gone = 0
        for model in (GallerySession, GallerySignIn):
            result = await self.s.execute(
                delete(model)
                .where(model.expires_at <= now)
                .execution_options(synchronize_session=False)
            )
            gone += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return gone
