"""A user's past results: pages, one item, and its full-resolution file (P02, P23)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.errors import InvalidRequest, NotFound
from core.files import DownloadLinks, FileStore
from core.generation.jobs import job_view
from core.i18n import Msg
from core.repositories import UnitOfWorkFactory
from core.types import Actor, HistoryPage, JobState, StoredImage

_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


@dataclass(frozen=True, slots=True)
class DownloadLink:
    """A link that downloads one stored output at full resolution without passing
    through the chat: the URL, what it downloads, and for how long it works."""

    url: str
    image: StoredImage
    index: int
    expires_in: int


class HistoryService:
    """The verbs ``history.page``, ``history.download`` and ``history.download_link``."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        files: FileStore,
        *,
        page_size: int = 8,
        downloads: DownloadLinks | None = None,
    ) -> None:
        self._uow = uow
        self.files = files
        self.page_size = page_size
        self.downloads = downloads

    async def page(self, actor: Actor, page: int = 1) -> HistoryPage:
        """Page ``page`` (1-based) of the actor's jobs, newest first."""
        async with self._uow() as uow:
            user = await uow.users.find(actor.platform, actor.user_id)
            if user is None:
                return HistoryPage((), 1, 1, 0)
            _, total = await uow.jobs.page_for_user(user.id, 0, 0)
            pages = max(1, math.ceil(total / self.page_size))
            page = min(max(1, page), pages)
            rows, total = await uow.jobs.page_for_user(
                user.id, (page - 1) * self.page_size, self.page_size
            )
            items = tuple([await job_view(uow, row) for row in rows])
        return HistoryPage(items, page, pages, total)

    async def delete(self, actor: Actor, job_id: str) -> int:
        """Remove a finished job of the actor with its images, files included; return how
        many files went. Jobs still in the queue or running are refused (cancel first)."""
        async with self._uow() as uow:
            user = await uow.users.find(actor.platform, actor.user_id)
            job = await uow.jobs.get_for_user(job_id, user.id) if user else None
            if job is None:
                raise NotFound()
            # A result being delivered is already made and paid for: it can go too.
            if not JobState(job.state).is_final and job.state != JobState.DELIVERING:
                raise InvalidRequest(Msg("history.still_running"))
            images = await uow.jobs.images(job.id)
            await uow.jobs.delete(job.id)
            await uow.commit()
        for image in images:
            await self.files.delete(image.path)
        return len(images)

    async def download(
        self, actor: Actor, job_id: str, index: int = 0
    ) -> tuple[StoredImage, bytes]:
        """The stored output ``index`` of one of the actor's jobs, at full resolution."""
        _, image = await self._output(actor, job_id, index)
        return image, await self.files.read(image.path)

    async def download_link(self, actor: Actor, job_id: str, index: int = 0) -> DownloadLink | None:
        """A short-lived link to the stored output ``index`` of one of the actor's jobs
        (a presigned URL from an object store, or a signed link to imagebot's HTTP
        server), or None when none can be given: then the adapter uploads the file.

        Raises :class:`NotFound` for another user's job, or an index it does not have."""
        user_id, image = await self._output(actor, job_id, index)
        if self.downloads is None:
            return None
        name = f"imagebot-{job_id[:8]}-{index + 1}.{_EXT.get(image.content_type, 'png')}"
        url = await self.downloads.link(user_id, image.path, filename=name)
        if url is None:
            return None
        return DownloadLink(url, image, index, self.downloads.ttl_seconds)

    async def _output(self, actor: Actor, job_id: str, index: int) -> tuple[int, StoredImage]:
        async with self._uow() as uow:
            user = await uow.users.find(actor.platform, actor.user_id)
            job = await uow.jobs.get_for_user(job_id, user.id) if user else None
            if user is None or job is None:
                raise NotFound()
            outputs = await uow.jobs.images(job.id, "output")
        if not 0 <= index < len(outputs):
            raise NotFound()
        item = outputs[index]
        image = StoredImage(item.path, item.content_type, item.width, item.height, item.size_bytes)
        return user.id, image
