"""Turning stored jobs into what users see."""

from __future__ import annotations

import secrets
from typing import Literal

from core.repositories import ImageRecord, JobRecord, UnitOfWork
from core.types import JobState, JobView, StoredImage


def new_job_id() -> str:
    """A short random id, safe in Telegram callback data and Discord custom ids."""
    return secrets.token_hex(8)


def stored(image: ImageRecord) -> StoredImage:
    """The public view of a stored image row."""
    return StoredImage(image.path, image.content_type, image.width, image.height, image.size_bytes)


async def job_view(uow: UnitOfWork, job: JobRecord, *, with_position: bool = False) -> JobView:
    """A job with its images (and queue position when asked) as the user sees it."""
    images = await uow.jobs.images(job.id)
    position = await uow.jobs.queue_position(job.id) if with_position else None
    kind: Literal["generate", "edit"] = "edit" if job.kind == "edit" else "generate"
    return JobView(
        id=job.id,
        state=JobState(job.state),
        prompt=job.prompt,
        options=dict(job.options),
        cost=job.cost,
        created_at=job.created_at,
        kind=kind,
        outputs=tuple(stored(i) for i in images if i.role == "output"),
        inputs=tuple(stored(i) for i in images if i.role in ("input", "mask")),
        error_code=job.error_code,
        error_message=job.error_message,
        queue_position=position,
    )
