"""Sending stored images: results as photos (an album for several) with their buttons,
originals as documents, within Telegram's limits.

Files are streamed from disk (the upload reads the open file in chunks); only an image
that breaks the photo limits (10 MB; width + height ≤ 10000; ratio ≤ 20) is turned
into a compressed JPEG copy in memory, and a photo Telegram still refuses is sent as a
document instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from PIL import Image
from telegram import (
    InputFile,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
    ReplyParameters,
)
from telegram.constants import FileSizeLimit
from telegram.error import BadRequest

from bot.telegram import keyboards
from bot.telegram.gallery import gallery_offered
from bot.telegram.render import download_link_text, full_res_caption
from bot.telegram.render import plain_text as render_plain
from bot.telegram.runtime import Runtime
from core.files import FileStore
from core.generation import DownloadLink
from core.i18n import Msg
from core.types import StoredImage

PHOTO_LIMIT = FileSizeLimit.PHOTOSIZE_UPLOAD
READ_WHOLE = 4 * 1024 * 1024
"""Files up to this size are read whole just before their upload and dropped right after
(one write instead of 64 KB chunks each through the HTTP stack); larger ones stream."""
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


@dataclass(frozen=True, slots=True)
class Destination:
    """Where to send: a chat, the message to reply to, the forum topic."""

    chat_id: int
    reply_to: int | None = None
    thread_id: int | None = None

    def reply(self) -> ReplyParameters | None:
        """Reply parameters that survive the command having been deleted."""
        if self.reply_to is None:
            return None
        return ReplyParameters(self.reply_to, allow_sending_without_reply=True)


@dataclass(frozen=True, slots=True)
class Picture:
    """A stored image to send: its absolute path (a name) and what is known about it.

    ``files`` is the file store: unless it names a plain local file for the image
    (:meth:`FileStore.local_path`), the bytes are read through it (decrypted, or from an
    object store) instead of from ``path``.
    """

    path: str
    image: StoredImage
    files: FileStore | None = None

    @property
    def local(self) -> str | None:
        """A plain file on this machine holding the image's bytes, or None."""
        if self.files is None:
            return self.path
        return self.files.local_path(self.image.path)

    @property
    def sealed(self) -> bool:
        """True when the bytes must come through the store (no plain local file)."""
        return self.local is None

    async def read(self) -> bytes:
        """The image's bytes, decrypted when needed."""
        local = self.local
        if local is None:
            assert self.files is not None
            return await self.files.read(self.image.path)
        return await asyncio.to_thread(Path(local).read_bytes)

    @property
    def fits_photo(self) -> bool:
        """True when Telegram takes it as a photo unchanged."""
        w, h = self.image.width, self.image.height
        return (
            self.image.size_bytes <= PHOTO_LIMIT
            and w + h <= 10_000
            and max(w, h) <= 20 * max(min(w, h), 1)
        )


def filename(job_id: str, index: int, content_type: str) -> str:
    """``imagebot-<job>-<n>.<ext>``."""
    return f"imagebot-{job_id[:8]}-{index + 1}.{_EXT.get(content_type, 'png')}"


def compressed_copy(source: str | bytes) -> bytes:
    """A JPEG of ``source`` (a path or the bytes) within the photo limits (alpha
    flattened on white)."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
        img.load()
        picture: Image.Image = img
        if max(picture.size) > 4096 or sum(picture.size) > 10_000:
            picture = picture.copy()
            picture.thumbnail((4096, 4096))
        if picture.mode in ("RGBA", "LA", "P"):
            rgba = picture.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            picture = flat
        elif picture.mode != "RGB":
            picture = picture.convert("RGB")
        for quality in (90, 80, 65, 50):
            out = io.BytesIO()
            picture.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() <= PHOTO_LIMIT:
                return out.getvalue()
        picture.thumbnail((2048, 2048))
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=80)
        return out.getvalue()


class _Files:
    """Open files for one request attempt, closed afterwards."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()

    async def photo(self, pic: Picture, name: str, *, attach: bool) -> InputFile:
        if pic.fits_photo:
            return await self.stream(pic, name, attach=attach)
        local = pic.local
        source: str | bytes = await pic.read() if local is None else local
        data = await asyncio.to_thread(compressed_copy, source)
        return InputFile(data, filename=name.rsplit(".", 1)[0] + ".jpg", attach=attach)

    async def stream(self, pic: Picture, name: str, *, attach: bool) -> InputFile:
        local = pic.local
        if pic.image.size_bytes <= READ_WHOLE or local is None:
            return InputFile(await pic.read(), filename=name, attach=attach)
        handle: IO[bytes] = await asyncio.to_thread(open, local, "rb")
        self._stack.enter_context(handle)
        return InputFile(handle, filename=name, attach=attach, read_file_handle=False)

    def close(self) -> None:
        self._stack.close()


async def send_result(
    rt: Runtime,
    dest: Destination,
    *,
    owner: int,
    job_id: str,
    pictures: Sequence[Picture],
    caption: str,
) -> list[Message]:
    """The images with the result buttons: one photo with a caption, or an album followed
    by a message holding the caption and the buttons (albums take no buttons)."""
    async with rt.uploads:
        if len(pictures) == 1:
            return [await _single(rt, dest, owner, job_id, pictures[0], caption)]
        album = await _album(rt, dest, job_id, pictures)
        ids = [m.message_id for m in album]
        markup = keyboards.result(
            owner,
            job_id,
            len(pictures),
            keyboards.album_ref(ids),
            gallery=gallery_offered(rt, dest.chat_id),
        )
        anchor = Destination(dest.chat_id, ids[0] if ids else dest.reply_to, dest.thread_id)
        buttons = await rt.outbox.call(
            dest.chat_id,
            lambda: rt.bot.send_message(
                dest.chat_id,
                caption,
                reply_markup=markup,
                reply_parameters=anchor.reply(),
                message_thread_id=dest.thread_id,
            ),
        )
        rt.board.sent(dest.chat_id)
        return [*album, buttons]


async def replace_status(
    rt: Runtime,
    dest: Destination,
    status_id: int,
    *,
    owner: int,
    job_id: str,
    picture: Picture,
    caption: str,
) -> Message | None:
    """The status message, showing a preview, becomes the result: the photo, its caption
    and buttons in one edit (one call instead of sending the result and deleting the
    status). None when Telegram refuses the edit (the caller sends the result instead)."""
    markup = keyboards.result(owner, job_id, 1, gallery=gallery_offered(rt, dest.chat_id))
    name = filename(job_id, 0, picture.image.content_type)

    async def edit() -> Message | bool:
        files = _Files()
        try:
            upload = await files.photo(picture, name, attach=True)
            return await rt.bot.edit_message_media(
                InputMediaPhoto(upload, caption=caption),
                chat_id=dest.chat_id,
                message_id=status_id,
                reply_markup=markup,
            )
        finally:
            files.close()

    async with rt.uploads:
        try:
            edited = await rt.outbox.call(dest.chat_id, edit)
        except BadRequest:
            return None  # gone, or not a photo any more: a new message it is
    rt.board.sent(dest.chat_id)
    return edited if isinstance(edited, Message) else None


async def _single(
    rt: Runtime, dest: Destination, owner: int, job_id: str, pic: Picture, caption: str
) -> Message:
    markup = keyboards.result(owner, job_id, 1, gallery=gallery_offered(rt, dest.chat_id))
    name = filename(job_id, 0, pic.image.content_type)

    async def as_photo() -> Message:
        files = _Files()
        try:
            return await rt.bot.send_photo(
                dest.chat_id,
                await files.photo(pic, name, attach=False),
                caption=caption,
                reply_markup=markup,
                reply_parameters=dest.reply(),
                message_thread_id=dest.thread_id,
            )
        finally:
            files.close()

    async def as_document() -> Message:
        files = _Files()
        try:
            return await rt.bot.send_document(
                dest.chat_id,
                await files.stream(pic, name, attach=False),
                caption=caption,
                reply_markup=markup,
                reply_parameters=dest.reply(),
                message_thread_id=dest.thread_id,
            )
        finally:
            files.close()

    try:
        sent = await rt.outbox.call(dest.chat_id, as_photo)
    except BadRequest:
        # Telegram refused the photo (dimensions, processing): the file itself always goes.
        sent = await rt.outbox.call(dest.chat_id, as_document)
    rt.board.sent(dest.chat_id)
    return sent


async def _album(
    rt: Runtime, dest: Destination, job_id: str, pictures: Sequence[Picture]
) -> list[Message]:
    async def send(kind: str) -> list[Message]:
        files = _Files()
        try:
            media: list[InputMediaPhoto | InputMediaDocument] = []
            for index, pic in enumerate(pictures):
                name = filename(job_id, index, pic.image.content_type)
                if kind == "photo":
                    upload = await files.photo(pic, name, attach=True)
                    media.append(InputMediaPhoto(upload, caption=str(index + 1)))
                else:
                    upload = await files.stream(pic, name, attach=True)
                    media.append(InputMediaDocument(upload, caption=str(index + 1)))
            return list(
                await rt.bot.send_media_group(
                    dest.chat_id,
                    media,
                    reply_parameters=dest.reply(),
                    message_thread_id=dest.thread_id,
                )
            )
        finally:
            files.close()

    try:
        sent = await rt.outbox.call(dest.chat_id, lambda: send("photo"))
    except BadRequest:
        sent = await rt.outbox.call(dest.chat_id, lambda: send("document"))
    rt.board.sent(dest.chat_id)
    return sent


async def send_original(
    rt: Runtime, dest: Destination, *, job_id: str, index: int, image: StoredImage, data: bytes
) -> Message:
    """One stored output at full resolution, as a document (Telegram keeps it unchanged)."""
    name = filename(job_id, index, image.content_type)
    caption = full_res_caption(image.width, image.height, image.size_bytes)
    async with rt.uploads:
        sent = await rt.outbox.call(
            dest.chat_id,
            lambda: rt.bot.send_document(
                dest.chat_id,
                InputFile(data, filename=name),
                caption=caption,
                reply_parameters=dest.reply(),
                message_thread_id=dest.thread_id,
                disable_content_type_detection=True,
            ),
        )
    rt.board.sent(dest.chat_id)
    return sent


async def send_download_link(rt: Runtime, dest: Destination, link: DownloadLink) -> Message:
    """One stored output at full resolution as a link (a URL button): the file goes from
    the store (or imagebot's HTTP server) to the person, never through the chat."""
    markup = keyboards.link(render_plain(Msg("button.download_full")), link.url)
    text = download_link_text(
        link.image.width, link.image.height, link.image.size_bytes, link.expires_in
    )
    sent = await rt.outbox.call(
        dest.chat_id,
        lambda: rt.bot.send_message(
            dest.chat_id,
            text,
            reply_markup=markup,
            reply_parameters=dest.reply(),
            message_thread_id=dest.thread_id,
        ),
    )
    rt.board.sent(dest.chat_id)
    return sent
