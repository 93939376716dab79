"""Images in: Discord attachments to core's InputImage, size checked before downloading.

Core checks every image for real (type from the bytes, pixels, damage); here only what
can be refused without reading the file: too many, too large, or plainly not an image.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiohttp
import discord

from bot.discord import render
from core.errors import InvalidImage, InvalidRequest
from core.i18n import msg
from core.types import InputImage

log = logging.getLogger("imagebot.discord")

MAX_IMAGES = 4
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")


def looks_like_image(attachment: discord.Attachment) -> bool:
    """True when the attachment claims to be an image (by type, or by name without one)."""
    if attachment.content_type:
        return attachment.content_type.startswith("image/")
    return attachment.filename.lower().endswith(_IMAGE_SUFFIXES)


async def read_images(
    attachments: Sequence[discord.Attachment], *, max_bytes: int
) -> tuple[InputImage, ...]:
    """Download up to four images concurrently; refuse before reading what cannot work."""
    if len(attachments) > MAX_IMAGES:
        raise InvalidRequest(msg("intake.too_many", count=MAX_IMAGES))
    for attachment in attachments:
        name = _name(attachment)
        if not looks_like_image(attachment):
            raise InvalidImage(msg("intake.not_image", name=name))
        if attachment.size > max_bytes:
            raise InvalidImage(
                msg(
                    "intake.too_large",
                    name=name,
                    size=render.size_text(attachment.size, up=True),
                    limit=render.size_text(max_bytes),
                )
            )
    return tuple(await asyncio.gather(*(_read(a) for a in attachments)))


async def _read(attachment: discord.Attachment) -> InputImage:
    try:
        data = await attachment.read()
    except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError):
        log.info("attachment download failed attachment=%s", attachment.id)
        raise InvalidImage(msg("intake.download_failed", name=_name(attachment))) from None
    return InputImage(
        data, attachment.content_type or "application/octet-stream", attachment.filename
    )


def _name(attachment: discord.Attachment) -> str:
    name = attachment.filename
    return f"“{name if len(name) <= 60 else name[:59] + '…'}”"
