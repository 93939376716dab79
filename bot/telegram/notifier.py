"""The Notifier port for Telegram: job events become edits of the status message, the
result, or a direct message.

Called from the worker's tasks. Progress (queued, generating, previews) is best effort and
paced per chat by the :class:`bot.telegram.status.StatusBoard`; the result and failures are
sent at once. A chat that blocked the bot is skipped quietly: the job's outcome and the
user's data do not change, and the result waits in /history.
"""

from __future__ import annotations

import contextlib
import logging

from telegram import InputMediaPhoto
from telegram.error import TelegramError

from bot.telegram import keyboards, render, status
from bot.telegram.delivery import Destination, Picture, replace_status, send_result
from bot.telegram.outbox import ChatBlocked
from bot.telegram.runtime import Runtime
from bot.telegram.status import StatusMessage
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
)

log = logging.getLogger("imagebot.telegram")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


class TelegramNotifier:
    """Delivers job events to Telegram chats."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def notify(self, target: ReplyTarget, event: JobEvent) -> None:
        """Render one event; raises only for failures worth a retry (network, 5xx)."""
        chat_id = _int(target.chat_id)
        if chat_id is None:
            return
        # The requester's language, fixed when the job was submitted.
        with use_language(target.extra.get("lang") or self.rt.core.users.default_language):
            await self._notify(chat_id, target, event)

    async def _notify(self, chat_id: int, target: ReplyTarget, event: JobEvent) -> None:
        try:
            if isinstance(event, Announcement):
                await self._announce(chat_id, event)
                return
            dest = Destination(chat_id, _int(target.reply_to_message_id), _int(target.thread_id))
            status_id = _int(target.message_id)
            owner = _int(target.extra.get("owner")) or 0
            if isinstance(event, Delivered):
                await self._delivered(dest, status_id, owner, event)
            elif isinstance(event, Failed):
                await self._failed(dest, status_id, event)
            elif status_id is not None:
                await self._progress(dest, status_id, owner, event)
        except ChatBlocked:
            log.info("not delivered, chat blocked the bot job=%s", event.job_id)

    async def _progress(
        self, dest: Destination, status_id: int, owner: int, event: JobEvent
    ) -> None:
        rt = self.rt
        chat_id = dest.chat_id
        if isinstance(event, Queued):
            text = render.queued_line(False, event.position, event.cost)
            markup = keyboards.cancel(owner, event.job_id) if owner else None

            async def queued(state: StatusMessage) -> None:
                await rt.outbox.edit(
                    chat_id,
                    lambda: rt.bot.edit_message_text(
                        text, chat_id=chat_id, message_id=state.message_id, reply_markup=markup
                    ),
                    progress=True,
                )

            await rt.board.progress(chat_id, status_id, status.QUEUED, queued)
        elif isinstance(event, Started):
            # The status message says it; a chat action ("sending photo…") as well would be
            # one more call per job against the chat's rate limit for the same news.
            words = render.generating()

            async def generating(state: StatusMessage) -> None:
                await rt.outbox.edit(
                    chat_id,
                    lambda: rt.bot.edit_message_text(
                        words, chat_id=chat_id, message_id=state.message_id
                    ),
                    progress=True,
                )

            await rt.board.progress(chat_id, status_id, status.GENERATING, generating)
        elif isinstance(event, PartialImage):
            data, index = event.data, event.index
            caption = render.preview_caption(index)

            async def preview(state: StatusMessage) -> None:
                media = InputMediaPhoto(data, caption=caption, filename=f"preview-{index + 1}")
                if await rt.outbox.edit(
                    chat_id,
                    lambda: rt.bot.edit_message_media(
                        media, chat_id=chat_id, message_id=state.message_id
                    ),
                    progress=True,
                ):
                    state.is_media = True

            await rt.board.progress(chat_id, status_id, status.PREVIEW + index, preview)

    async def _delivered(
        self, dest: Destination, status_id: int | None, owner: int, event: Delivered
    ) -> None:
        rt = self.rt
        showing_preview = False
        if status_id is not None:
            showing_preview = rt.board.close(dest.chat_id, status_id).is_media
        pictures = [
            Picture(path, image, rt.core.files)
            for path, image in zip(event.absolute_paths, event.outputs, strict=True)
        ]
        if status_id is not None and showing_preview and len(pictures) == 1:
            # The preview becomes the result: one edit instead of a new photo and a deletion.
            replaced = await replace_status(
                rt,
                dest,
                status_id,
                owner=owner,
                job_id=event.job_id,
                picture=pictures[0],
                caption=render.delivered_caption(event),
            )
            if replaced is not None:
                return
        await send_result(
            rt,
            dest,
            owner=owner,
            job_id=event.job_id,
            pictures=pictures,
            caption=render.delivered_caption(event),
        )
        if status_id is not None:
            # Deleting is not sending: it takes no slot of the group's budget.
            with contextlib.suppress(ChatBlocked, TelegramError):
                await rt.outbox.call(
                    dest.chat_id,
                    lambda: rt.bot.delete_message(dest.chat_id, status_id),
                    pace="none",
                )

    async def _failed(self, dest: Destination, status_id: int | None, event: Failed) -> None:
        rt = self.rt
        text = render.failed_text(event)
        if status_id is not None:
            state = rt.board.close(dest.chat_id, status_id)
            if state.is_media:
                edited = await rt.outbox.edit(
                    dest.chat_id,
                    lambda: rt.bot.edit_message_caption(
                        chat_id=dest.chat_id, message_id=status_id, caption=render.clip(text, 1000)
                    ),
                )
            else:
                edited = await rt.outbox.edit(
                    dest.chat_id,
                    lambda: rt.bot.edit_message_text(
                        text, chat_id=dest.chat_id, message_id=status_id
                    ),
                )
            if edited:
                return
        await rt.outbox.call(
            dest.chat_id,
            lambda: rt.bot.send_message(
                dest.chat_id,
                text,
                reply_parameters=dest.reply(),
                message_thread_id=dest.thread_id,
            ),
        )

    async def _announce(self, chat_id: int, event: Announcement) -> None:
        rt = self.rt
        await rt.outbox.call(
            chat_id,
            lambda: rt.bot.send_message(chat_id, render.esc(render.clip(event.text, 4000))),
        )
        rt.board.sent(chat_id)
