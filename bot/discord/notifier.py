"""The Notifier port for Discord: job progress and results, delivered where they belong.

A job's reply target holds the interaction's application id and token, so progress and
the result edit the original response ("queued" -> "generating" -> previews -> result)
from any process, after a restart too, while the token lives (15 minutes). After that,
or when Discord no longer takes the token, the result is posted as a plain message in
the channel, or sent as a DM (private answers, group DMs, servers the bot is not in):
results are never lost. Progress is best effort: at most one edit per second per job,
and none once the token is gone.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import discord

from bot.discord import context, media, render, views
from core.files import FileStore
from core.i18n import use_language
from core.types import (
    Announcement,
    Delivered,
    Failed,
    JobEvent,
    PartialImage,
    Queued,
    ReplyTarget,
    Started,
    Submitted,
)

log = logging.getLogger("imagebot.discord")

TOKEN_LIFETIME = 15 * 60.0
TOKEN_MARGIN = 30.0
"""A token this close to expiry is not used: an upload may take that long."""
_DEAD_TOKEN_CODES = {10015, 10062, 10008, 50027}
"""Unknown webhook, unknown interaction, unknown message, invalid webhook token."""

# Stages of a job's original response; an edit never goes back to an earlier one.
QUEUED, STARTED, PREVIEW, FINAL = 1, 2, 3, 4

Outgoing = tuple[str, list[discord.File], discord.ui.View | None]
"""Content, files and buttons of one message, built fresh for each attempt (a sent
discord.File is consumed)."""


@dataclass
class _Progress:
    job_id: str
    stage: int = 0
    last_edit: float = float("-inf")
    token_dead: bool = False
    failed: bool = False
    """The job's final answer so far was a failure (a withheld result, say)."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class DiscordNotifier:
    """Delivers job events for ``ReplyTarget(platform="discord")``."""

    def __init__(
        self,
        client: discord.Client,
        files: FileStore,
        *,
        min_interval: float = 1.0,
        token_lifetime: float = TOKEN_LIFETIME,
        clock: Callable[[], float] = time.time,
        max_tracked: int = 10_000,
        gallery: bool = False,
    ) -> None:
        self.client = client
        self.gallery = gallery
        """A Gallery button goes under results (the web gallery is served)."""
        self.files = files
        self.min_interval = min_interval
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.max_tracked = max_tracked
        self._jobs: OrderedDict[str, _Progress] = OrderedDict()

    # --- the port ----------------------------------------------------------------------------

    async def notify(self, target: ReplyTarget, event: JobEvent) -> None:
        """Show one event of a job (or send an announcement as a DM), in the language of
        the person who asked for it."""
        with use_language(target.extra.get(context.LANG) or self.core_language()):
            await self._notify(target, event)

    def core_language(self) -> str:
        """The operator's default language."""
        core = getattr(self.client, "core", None)
        return str(getattr(getattr(core, "users", None), "default_language", "en"))

    async def _notify(self, target: ReplyTarget, event: JobEvent) -> None:
        if isinstance(event, Announcement):
            message: Outgoing = (event.text, [], None)
            if target.extra.get(context.DM) == "1":
                await self._send_dm(target.chat_id, message)  # chat_id is the user's id
            else:  # a channel, such as the operators' (IMAGEBOT_SUPPORT_CHAT=discord:<id>)
                await self._send(self.client.get_partial_messageable(int(target.chat_id)), message)
            return
        progress = self._progress(event.job_id)
        async with progress.lock:
            if isinstance(event, Queued):
                text = render.queued_text(event.position, event.cost, event.balance)
                await self._progress_edit(target, progress, QUEUED, content=text)
            elif isinstance(event, Started):
                await self._progress_edit(target, progress, STARTED, content=render.generating())
            elif isinstance(event, PartialImage):
                await self._preview(target, progress, event)
            elif isinstance(event, Delivered):
                if progress.failed:
                    # An operator released a withheld result (the review queue): it replaces
                    # the failure, as it would after a restart.
                    progress.stage, progress.failed = STARTED, False
                await self._final(target, progress, lambda: self._result(target, event))
            elif isinstance(event, Failed):
                failed: Outgoing = (render.failed_text(event), [], None)
                if progress.stage < FINAL:
                    await self._final(target, progress, lambda: _ready(failed))
                    progress.failed = True

    async def show_submitted(self, target: ReplyTarget, submitted: Submitted) -> None:
        """The acknowledgement of a new job: its place in the queue and its price. Skipped
        when the worker already showed something later."""
        progress = self._progress(submitted.job.id)
        async with progress.lock:
            await self._progress_edit(
                target, progress, QUEUED, content=render.submitted_text(submitted), force=True
            )

    # --- progress ----------------------------------------------------------------------------

    def _progress(self, job_id: str) -> _Progress:
        progress = self._jobs.get(job_id)
        if progress is None:
            progress = self._jobs[job_id] = _Progress(job_id)
            while len(self._jobs) > self.max_tracked:
                self._jobs.popitem(last=False)
        else:
            self._jobs.move_to_end(job_id)
        return progress

    def _token_usable(self, target: ReplyTarget, progress: _Progress) -> bool:
        if progress.token_dead or not target.token or not target.extra.get(context.APP):
            return False
        issued = float(target.extra.get(context.ISSUED) or 0)
        return self.clock() < issued + self.token_lifetime - TOKEN_MARGIN

    async def _progress_edit(
        self,
        target: ReplyTarget,
        progress: _Progress,
        stage: int,
        *,
        content: str,
        files: list[discord.File] | None = None,
        force: bool = False,
    ) -> None:
        """A best-effort edit of the original response: never backwards, at most one per
        ``min_interval`` (``force``: the first acknowledgement, never throttled)."""
        now = time.monotonic()
        if stage < progress.stage or (stage == progress.stage and stage != PREVIEW):
            return
        if not force and now - progress.last_edit < self.min_interval:
            return
        if not self._token_usable(target, progress):
            return
        progress.stage = stage
        progress.last_edit = now
        kwargs: dict[str, Any] = {} if files is None else {"attachments": files}
        try:
            await self._webhook(target).edit_message(
                "@original",  # type: ignore[call-overload]  # Discord's alias of the first answer
                content=render.clip(content),
                allowed_mentions=render.NO_MENTIONS,
                **kwargs,
            )
        except discord.HTTPException as exc:
            if _token_dead(exc):
                progress.token_dead = True
            log.info(
                "progress edit skipped job=%s status=%s code=%s",
                progress.job_id,
                exc.status,
                exc.code,
            )

    async def _preview(self, target: ReplyTarget, progress: _Progress, event: PartialImage) -> None:
        if progress.stage > PREVIEW or time.monotonic() - progress.last_edit < self.min_interval:
            return  # throttled before any bytes are wrapped
        name = media.file_name(event.job_id, event.index, event.content_type, prefix="preview")
        preview = discord.File(io.BytesIO(event.data), filename=name)
        await self._progress_edit(
            target, progress, PREVIEW, content=render.preview_text(event.index), files=[preview]
        )

    # --- results -----------------------------------------------------------------------------

    async def _final(
        self,
        target: ReplyTarget,
        progress: _Progress,
        build: Callable[[], Awaitable[Outgoing]],
    ) -> None:
        """Edit the result into the original response; without a usable token, post it.
        Raises when neither worked, so the hub tries again."""
        if progress.stage >= FINAL:
            return
        # No throttle here: the one-edit-a-second rule is for progress, and waiting would
        # hold a worker slot that long.
        if self._token_usable(target, progress):
            content, files, view = await build()
            try:
                await self._webhook(target).edit_message(
                    "@original",  # type: ignore[call-overload]
                    content=render.clip(content),
                    attachments=files,
                    view=view,
                    allowed_mentions=render.NO_MENTIONS,
                )
            except discord.HTTPException as exc:
                if not _token_dead(exc):
                    raise
                progress.token_dead = True
                log.info("token no longer valid, posting job=%s code=%s", progress.job_id, exc.code)
            else:
                progress.stage = FINAL
                progress.last_edit = time.monotonic()
                return
        await self._post(target, build, progress.job_id)
        progress.stage = FINAL

    async def _result(self, target: ReplyTarget, event: Delivered) -> Outgoing:
        limit = int(target.extra.get(context.LIMIT) or media.DEFAULT_LIMIT)
        uploads = []
        for index, out in enumerate(event.outputs):
            # No plain local file (encrypted at rest, or an object store): the bytes come
            # through the file store.
            local = self.files.local_path(out.path)
            source = await self.files.read(out.path) if local is None else local
            uploads.append(
                await media.upload(
                    source,
                    content_type=out.content_type,
                    size=out.size_bytes,
                    limit=limit,
                    name=media.file_name(event.job_id, index, out.content_type),
                )
            )
        notes = dict.fromkeys(u.note for u in uploads if u.note)
        owner = int(target.extra.get(context.USER) or 0)
        view = (
            views.result_view(event.job_id, len(uploads), owner, gallery=self.gallery)
            if owner
            else None
        )
        return render.delivered_text(event, notes), [u.file for u in uploads], view

    async def _post(
        self, target: ReplyTarget, build: Callable[[], Awaitable[Outgoing]], job_id: str
    ) -> None:
        """A plain message: in the server channel when the answer was public, else (or when
        the bot may not post there) as a DM to the job's owner."""
        where = target.extra.get(context.WHERE, "guild")
        private = target.extra.get(context.PRIVATE) == "1"
        user_id = target.extra.get(context.USER) or ""
        if where == "dm" and not private:
            channel = self.client.get_partial_messageable(int(target.chat_id))
            await self._send(channel, await build())
            return
        if where == "guild" and not private:
            channel = self.client.get_partial_messageable(int(target.chat_id))
            content, files, view = await build()
            try:
                await self._send(channel, (f"<@{user_id}> {content}", files, view))
                return
            except (discord.Forbidden, discord.NotFound):
                # A user-installed app in a server it is not a member of.
                log.info("cannot post in the channel, sending a DM job=%s", job_id)
        await self._send_dm(user_id, await build())

    async def _send_dm(self, user_id: str, message: Outgoing) -> None:
        channel = await self.client.create_dm(discord.Object(id=int(user_id)))
        await self._send(channel, message)

    @staticmethod
    async def _send(channel: discord.abc.Messageable, message: Outgoing) -> None:
        content, files, view = message
        kwargs: dict[str, Any] = {"files": files} if files else {}
        if view is not None:
            kwargs["view"] = view
        await channel.send(
            content=render.clip(content), allowed_mentions=render.NO_MENTIONS, **kwargs
        )

    def _webhook(self, target: ReplyTarget) -> discord.Webhook:
        return discord.Webhook.partial(
            int(target.extra[context.APP]), str(target.token), client=self.client
        )


def _token_dead(exc: discord.HTTPException) -> bool:
    return exc.code in _DEAD_TOKEN_CODES or exc.status == 401


async def _ready(message: Outgoing) -> Outgoing:
    return message
