"""/history pages: the contact sheet, its caption and its buttons."""

from __future__ import annotations

import asyncio

from telegram import InputMediaPhoto, Message

from bot.telegram import keyboards, render
from bot.telegram.gallery import gallery_offered
from bot.telegram.replies import destination, reply
from bot.telegram.runtime import Runtime
from bot.telegram.sheet import Tile, draw_sheet
from core.types import HistoryPage


async def history_sheet(rt: Runtime, page: HistoryPage) -> bytes:
    """The contact sheet of one page: each job's first image, numbered (drawn in a thread)."""
    tiles = [
        Tile(
            number,
            rt.core.files.absolute(job.outputs[0].path) if job.outputs else None,
            job.state.value,
            len(job.outputs),
        )
        for number, job in enumerate(page.items, 1)
    ]
    return await asyncio.to_thread(draw_sheet, tiles)


async def send_history(rt: Runtime, message: Message, owner: int, page: HistoryPage) -> None:
    """A page as a new message (a text when there is nothing yet)."""
    if not page.items:
        await reply(rt, message, render.empty_history())
        return
    data = await history_sheet(rt, page)
    dest = destination(message, quote=message.chat.type != "private")
    await rt.outbox.call(
        dest.chat_id,
        lambda: rt.bot.send_photo(
            dest.chat_id,
            data,
            caption=render.history_caption(page),
            reply_markup=keyboards.history(owner, page, gallery=gallery_offered(rt, dest.chat_id)),
            reply_parameters=dest.reply(),
            message_thread_id=dest.thread_id,
        ),
    )
    rt.board.sent(dest.chat_id)


async def show_page(rt: Runtime, sheet_message: Message, owner: int, page: HistoryPage) -> None:
    """Turn an existing sheet message into ``page`` (or into the empty-history caption)."""
    chat_id = sheet_message.chat.id
    if not page.items:
        await rt.outbox.edit(
            chat_id,
            lambda: rt.bot.edit_message_caption(
                chat_id=chat_id,
                message_id=sheet_message.message_id,
                caption=render.empty_history(),
                reply_markup=None,
            ),
        )
        return
    data = await history_sheet(rt, page)
    await rt.outbox.edit(
        chat_id,
        lambda: rt.bot.edit_message_media(
            InputMediaPhoto(data, caption=render.history_caption(page)),
            chat_id=chat_id,
            message_id=sheet_message.message_id,
            reply_markup=keyboards.history(owner, page, gallery=gallery_offered(rt, chat_id)),
        ),
    )
    rt.board.sent(chat_id)
