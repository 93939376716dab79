"""Contact sheets for /history: one image with a numbered thumbnail per past job."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

CELL = 256
GAP = 12
COLUMNS = 4
BACKGROUND = (30, 31, 36)
EMPTY_TILE = (58, 60, 68)
BADGE = (250, 204, 21)


@dataclass(frozen=True, slots=True)
class Tile:
    """One item of the sheet: its number, its first image (absolute path) if any, a word
    shown instead when there is none (``failed``…), and how many images it has."""

    number: int
    path: str | None
    label: str = ""
    count: int = 1


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def _thumbnail(path: str) -> Image.Image | None:
    try:
        with Image.open(path) as img:
            img.draft("RGB", (CELL, CELL))  # JPEG: decode at a reduced scale
            img.thumbnail((CELL, CELL), reducing_gap=2.0)
            if img.mode in ("RGBA", "LA", "P"):
                rgba = img.convert("RGBA")
                flat = Image.new("RGB", rgba.size, EMPTY_TILE)
                flat.paste(rgba, mask=rgba.getchannel("A"))
                return flat
            return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def draw_sheet(tiles: list[Tile]) -> bytes:
    """A JPEG grid of the tiles, four to a row, each numbered in its corner."""
    columns = max(1, min(COLUMNS, len(tiles)))
    rows = max(1, math.ceil(len(tiles) / columns))
    width = columns * CELL + (columns + 1) * GAP
    height = rows * CELL + (rows + 1) * GAP
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    number_font = _font(30)
    label_font = _font(22)
    for position, tile in enumerate(tiles):
        left = GAP + (position % columns) * (CELL + GAP)
        top = GAP + (position // columns) * (CELL + GAP)
        draw.rectangle((left, top, left + CELL - 1, top + CELL - 1), fill=EMPTY_TILE)
        thumb = _thumbnail(tile.path) if tile.path else None
        if thumb is not None:
            sheet.paste(thumb, (left + (CELL - thumb.width) // 2, top + (CELL - thumb.height) // 2))
        else:
            label = tile.label or "no image"
            box = draw.textbbox((0, 0), label, font=label_font)
            draw.text(
                (left + (CELL - (box[2] - box[0])) // 2, top + CELL // 2 - 12),
                label,
                fill=(220, 220, 225),
                font=label_font,
            )
        draw.rounded_rectangle((left + 6, top + 6, left + 52, top + 48), 8, fill=BADGE)
        text = str(tile.number)
        box = draw.textbbox((0, 0), text, font=number_font)
        draw.text(
            (
                left + 29 - (box[2] - box[0]) // 2 - box[0],
                top + 27 - (box[3] - box[1]) // 2 - box[1],
            ),
            text,
            fill=(20, 20, 20),
            font=number_font,
        )
        if tile.count > 1:
            more = f"x{tile.count}"
            box = draw.textbbox((0, 0), more, font=label_font)
            right = left + CELL - 6
            draw.rounded_rectangle(
                (right - (box[2] - box[0]) - 16, top + 6, right, top + 40), 8, fill=(0, 0, 0)
            )
            draw.text(
                (right - (box[2] - box[0]) - 8, top + 10),
                more,
                fill=(255, 255, 255),
                font=label_font,
            )
    out = io.BytesIO()
    sheet.save(out, "JPEG", quality=85)
    return out.getvalue()
