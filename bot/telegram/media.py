"""Images coming in: which files a command refers to, and downloading them within limits.

A command can carry images itself (a captioned photo, image document or album) or refer
to them by replying (to a photo, an image document, or one message of an album, in which
case every image of the album is used). Telegram delivers each album member as its own
message and a reply names only one of them, so recent album members are remembered here
(in memory, bounded) as they arrive.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass

from telegram import Bot, Message
from telegram.constants import FileSizeLimit
from telegram.error import BadRequest

from core.errors import InvalidImage
from core.i18n import Msg, msg
from core.types import InputImage

IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "webp", "gif"})
TELEGRAM_DOWNLOAD_LIMIT = FileSizeLimit.FILESIZE_DOWNLOAD
NOT_AN_IMAGE = Msg("file.not_image")


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file a message carries, as Telegram declares it (nothing downloaded yet)."""

    message_id: int
    file_id: str
    size: int | None
    content_type: str
    filename: str

    @property
    def looks_like_image(self) -> bool:
        """True for photos and documents declared (by type or name) as images."""
        if self.content_type.startswith("image/"):
            return True
        return self.filename.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS


def attachments_of(message: Message | None) -> list[Attachment]:
    """The image-bearing file of one message: its largest photo size, or its document."""
    if message is None:
        return []
    if message.photo:
        largest = message.photo[-1]  # Telegram orders sizes from smallest to largest
        return [
            Attachment(
                message.message_id,
                largest.file_id,
                largest.file_size,
                "image/jpeg",
                f"photo-{message.message_id}.jpg",
            )
        ]
    if message.document:
        doc = message.document
        return [
            Attachment(
                message.message_id,
                doc.file_id,
                doc.file_size,
                doc.mime_type or "",
                doc.file_name or "file",
            )
        ]
    return []


class AlbumCache:
    """Members of recently seen albums, by ``media_group_id`` (bounded, oldest out)."""

    def __init__(self, *, max_groups: int = 2000, max_age: float = 24 * 3600) -> None:
        self._groups: OrderedDict[str, tuple[float, dict[int, Attachment]]] = OrderedDict()
        self.max_groups = max_groups
        self.max_age = max_age

    def remember(self, message: Message) -> None:
        """Keep ``message``'s file if it belongs to an album."""
        group = message.media_group_id
        if not group:
            return
        found = attachments_of(message)
        if not found:
            return
        _, members = self._groups.pop(group, (0.0, {}))
        members[message.message_id] = found[0]
        self._groups[group] = (time.monotonic(), members)
        while len(self._groups) > self.max_groups:
            self._groups.popitem(last=False)

    def members(self, group: str | None) -> list[Attachment]:
        """Every remembered member of ``group``, in message order."""
        if not group or group not in self._groups:
            return []
        seen, members = self._groups[group]
        if time.monotonic() - seen > self.max_age:
            del self._groups[group]
            return []
        return [members[mid] for mid in sorted(members)]

    async def settle(self, group: str, *, wait: float) -> list[Attachment]:
        """Wait until no new member of ``group`` arrived for ``wait`` seconds (its members
        come as separate updates right after one another), then return them."""
        count = -1
        while count != len(self.members(group)):
            count = len(self.members(group))
            await asyncio.sleep(wait)
        return self.members(group)


def referenced(message: Message, albums: AlbumCache) -> list[Attachment]:
    """The images a command refers to: its own (with its album), else the replied-to
    message's (with its album)."""
    for source in (message, message.reply_to_message):
        if source is None:
            continue
        found = attachments_of(source)
        if not found:
            continue
        members = albums.members(source.media_group_id)
        if members:
            if found[0].message_id not in {m.message_id for m in members}:
                members = sorted([*members, found[0]], key=lambda a: a.message_id)
            return members
        return found
    return []


def too_large(size: int | None, limit: int) -> InvalidImage:
    """The error for a file above what can be downloaded or used."""
    most = round(limit / 1_000_000)
    if size:
        return InvalidImage(msg("file.too_large_size", size=size / 1_000_000, limit=most))
    return InvalidImage(msg("file.too_large", limit=most))


async def download(bot: Bot, item: Attachment, *, max_bytes: int) -> InputImage:
    """Fetch one attachment, refusing before any download when its declared size or type
    cannot be used. Raises :class:`InvalidImage` with words for the user."""
    if not item.looks_like_image:
        raise InvalidImage(NOT_AN_IMAGE)
    limit = min(max_bytes, TELEGRAM_DOWNLOAD_LIMIT)
    if item.size is not None and item.size > limit:
        raise too_large(item.size, limit)
    try:
        file = await bot.get_file(item.file_id)
    except BadRequest as exc:
        if "too big" in exc.message.lower():
            raise too_large(item.size, limit) from None
        raise
    if file.file_size is not None and file.file_size > limit:
        raise too_large(file.file_size, limit)
    data = await file.download_as_bytearray()
    if len(data) > limit:
        raise too_large(len(data), limit)
    return InputImage(bytes(data), item.content_type or "application/octet-stream", item.filename)
