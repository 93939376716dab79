"""Images out: files within the chat's upload limit, converted to JPEG or WebP when not."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from pathlib import Path

import discord
from PIL import Image

from bot.discord import render

DEFAULT_LIMIT = 10 * 1024 * 1024
"""Discord's upload limit without boosts; used when an interaction did not say."""
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


@dataclass(frozen=True, slots=True)
class Upload:
    """One file ready to attach, with a note when it had to be converted."""

    file: discord.File
    note: str | None = None


def file_name(job_id: str, index: int, content_type: str, *, prefix: str = "imagebot") -> str:
    """``imagebot-<job>-<n>.<ext>``."""
    return f"{prefix}-{job_id[:8]}-{index + 1}.{_EXTENSIONS.get(content_type, 'png')}"


async def upload(
    source: str | bytes,
    *,
    content_type: str,
    size: int,
    limit: int,
    name: str,
) -> Upload:
    """A file from a path on disk or from bytes; over ``limit`` it is re-encoded (JPEG, or
    WebP when it has transparency), then scaled down if it still does not fit. ``size`` is
    that of the file on disk (bytes are measured)."""
    if isinstance(source, bytes):
        size = len(source)
    if size <= limit:
        if isinstance(source, bytes):
            return Upload(discord.File(io.BytesIO(source), filename=name))
        return Upload(discord.File(source, filename=name))
    data = source if isinstance(source, bytes) else await asyncio.to_thread(Path(source).read_bytes)
    small, new_type = await asyncio.to_thread(shrink, data, limit)
    stem = name.rsplit(".", 1)[0]
    new_name = f"{stem}.{_EXTENSIONS[new_type]}"
    note = render.converted_note(content_type, size, limit, new_type)
    return Upload(discord.File(io.BytesIO(small), filename=new_name), note)


def shrink(data: bytes, limit: int) -> tuple[bytes, str]:
    """Re-encode an image of ours to fit ``limit`` bytes; returns (bytes, content type)."""
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        alpha = opened.mode in ("RGBA", "LA", "PA") or (
            opened.mode == "P" and "transparency" in opened.info
        )
        picture = opened.convert("RGBA" if alpha else "RGB")
    fmt, content_type = ("WEBP", "image/webp") if alpha else ("JPEG", "image/jpeg")
    out = b""
    for quality in (90, 80, 70, 60):
        out = _encode(picture, fmt, quality)
        if len(out) <= limit:
            return out, content_type
    while picture.width > 64 and picture.height > 64:
        picture = picture.resize(
            (max(1, picture.width * 3 // 4), max(1, picture.height * 3 // 4)),
            Image.Resampling.LANCZOS,
        )
        out = _encode(picture, fmt, 75)
        if len(out) <= limit:
            break
    return out, content_type


def _encode(picture: Image.Image, fmt: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, fmt, quality=quality)
    return buffer.getvalue()
