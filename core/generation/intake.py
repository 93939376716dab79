"""Reference-image intake: check and normalise every image before it reaches the model.

What goes in is whatever a person uploaded; what comes out is a clean PNG or JPEG that the
model provider accepts. The steps, in order:

1. **Size in bytes** is checked before anything is parsed (``ImageLimits.max_bytes``).
2. **Type** comes from the magic bytes only (:func:`sniff_image_type`): PNG, JPEG, WebP
   and GIF are accepted. The file name and the type a client claims are ignored. Only the
   Pillow plugin of the sniffed type is ever used, so no other format parser sees the bytes.
3. **Pixel count** is read from the header (Pillow plugins parse lazily) and refused above
   ``ImageLimits.max_pixels`` *before* any pixel is decoded. The limit applied is never above
   Pillow's own ``Image.MAX_IMAGE_PIXELS``, so Pillow's ``DecompressionBombWarning`` cannot
   fire for an image we accept; ``Image.open`` (which runs Pillow's bomb check) is not used,
   and no Pillow global (``MAX_IMAGE_PIXELS``, ``LOAD_TRUNCATED_IMAGES``) is changed. GIF
   frames may extend past the GIF's logical screen, so the first frame's descriptor is
   checked by hand before Pillow parses the file.
4. **Decoding**: large JPEGs are decoded at 1/2, 1/4 or 1/8 scale through libjpeg's DCT
   scaling (``Image.draft``), which is much cheaper than a full decode; the scale is the
   largest that keeps the long edge at or above 3/4 of ``max_edge`` (1536 px by default).
   Animated GIF/WebP/APNG: the first frame. Truncated or corrupt files are refused.
5. **Resizing**: if the long edge is still above ``max_edge`` it is brought down to exactly
   ``max_edge`` with Lanczos (after a cheap box ``reduce`` for big ratios). A JPEG whose
   DCT-scaled size already fits is not resampled again, so a 4000x3000 photo becomes
   2000x1500, not 2048x1536.
6. **Orientation** from EXIF (or XMP) is applied (``ImageOps.exif_transpose``).
7. **Colour**: an embedded ICC profile is converted to sRGB when littleCMS can, otherwise
   dropped; CMYK, palette, grey, 16-bit and two-channel modes become RGB or RGBA.
8. **Metadata** is stripped entirely: no EXIF (so no GPS), no ICC, no XMP, no text chunks.

Output format (a choice): an image with real transparency (some alpha below 255) is written
as RGBA **PNG**; every other image as RGB **JPEG**, quality 90, because opaque references
are mostly photos and JPEG keeps uploads small. JPEG sources keep the usual 4:2:0 chroma
subsampling; other sources (screenshots, drawings) are written 4:4:4 so coloured edges and
text stay crisp.

Everything here is synchronous and CPU-bound (tens of milliseconds for a 12 MP photo);
async callers should run it in a worker thread. It keeps no state between calls.
"""

from __future__ import annotations

import functools
import io
import math
import re
import struct
from dataclasses import dataclass

from PIL import (
    GifImagePlugin,
    Image,
    ImageCms,
    ImageFile,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    WebPImagePlugin,
)

from core.errors import InvalidImage
from core.i18n import Msg, msg
from core.types import InputImage

__all__ = [
    "ImageLimits",
    "image_dimensions",
    "normalize_mask",
    "normalize_reference",
    "sniff_image_type",
]

_MIB = 1024 * 1024
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_QUALITY = 90
# JPEG DCT scaling may leave the long edge this fraction of max_edge below it.
_MIN_EDGE_FRACTION = 0.75
_REDUCING_GAP = 3.0

_PLUGINS: dict[str, type[ImageFile.ImageFile]] = {
    "image/png": PngImagePlugin.PngImageFile,
    "image/jpeg": JpegImagePlugin.JpegImageFile,
    "image/webp": WebPImagePlugin.WebPImageFile,
    "image/gif": GifImagePlugin.GifImageFile,
}


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Limits applied to every reference image and mask."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000  # refuse images whose header says more (decompression bombs)
    max_edge: int = 2048  # downscale so the longest edge is at most this


# --- public API ---------------------------------------------------------------------------


def sniff_image_type(data: bytes) -> str | None:
    """Real MIME type from magic bytes: image/png, image/jpeg, image/webp, image/gif.

    ``None`` for anything else. Only the first bytes are looked at; nothing is decoded and
    no file name or claimed type is consulted.
    """
    head = bytes(data[:12])
    if head.startswith(_PNG_MAGIC):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def normalize_reference(
    data: bytes, *, filename: str = "image", limits: ImageLimits = ImageLimits()
) -> InputImage:
    """Validate and normalise one reference image; return PNG or JPEG bytes with width/height set.

    The result has no metadata, EXIF orientation applied, colours in sRGB and a long edge of
    at most ``limits.max_edge``. It is a PNG (``image/png``) when the image has real
    transparency and a quality-90 JPEG (``image/jpeg``) otherwise; ``filename`` is reduced to
    a safe base name with the matching extension.

    Raises:
        InvalidImage: the file is too large in bytes or pixels, is not a PNG, JPEG, WebP or
            GIF image (whatever its name says), or is damaged or incomplete. The message says
            which, and what is accepted.
    """
    kind = _check_bytes(data, limits, noun="image")
    im = _open_checked(data, kind, limits, noun="image")
    try:
        picture = _decode(im, kind, limits.max_edge)
        picture = _fit_within(picture, limits.max_edge)
        _apply_orientation(picture)
        picture = _to_srgb_rgb_or_rgba(picture)
        if picture.mode == "RGBA" and _alpha_is_opaque(picture):
            picture = picture.convert("RGB")
        if picture.mode == "RGBA":
            out, content_type, ext = _encode_png(picture), "image/png", "png"
        else:
            subsampling = "4:2:0" if kind == "image/jpeg" else "4:4:4"
            out, content_type, ext = _encode_jpeg(picture, subsampling), "image/jpeg", "jpg"
    except InvalidImage:
        raise
    except Exception as exc:  # any decoder failure: broken, truncated or hostile data
        raise InvalidImage(_damaged("image")) from exc
    width, height = picture.size
    return InputImage(
        data=out,
        content_type=content_type,
        filename=_safe_filename(filename, ext),
        width=width,
        height=height,
    )


def normalize_mask(
    data: bytes, *, size: tuple[int, int], limits: ImageLimits = ImageLimits()
) -> InputImage:
    """A mask for the first reference image, as an RGBA PNG resized to ``size``.

    ``size`` is the normalised first image's size; the mask must decode like any image.
    Fully transparent pixels mark the area to edit, as the model expects. A mask without an
    alpha channel (a black-and-white drawing) gets its brightness as alpha, following the
    provider's documented recipe: black areas become transparent, i.e. are edited. EXIF
    orientation is applied before resizing; all metadata is stripped.

    Raises:
        InvalidImage: the mask is too large, not a PNG, JPEG, WebP or GIF image, or damaged.
        ValueError: ``size`` is not two positive integers (a caller bug, not the user's).
    """
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"mask size must be positive, got {size!r}")
    kind = _check_bytes(data, limits, noun="mask")
    im = _open_checked(data, kind, limits, noun="mask")
    try:
        picture = _decode(im, kind, max(limits.max_edge, width, height))
        _apply_orientation(picture)
        picture = _mask_to_rgba(picture)
        if picture.size != (width, height):
            picture = picture.resize(
                (width, height), Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP
            )
        out = _encode_png(picture)
    except InvalidImage:
        raise
    except Exception as exc:
        raise InvalidImage(_damaged("mask")) from exc
    return InputImage(
        data=out, content_type="image/png", filename="mask.png", width=width, height=height
    )


def image_dimensions(data: bytes) -> tuple[str, int, int] | None:
    """``(content_type, width, height)`` from the header only, without decoding pixels.

    ``None`` if the bytes are not an accepted image. Used to check model outputs cheaply.
    Only the sniffed type's Pillow plugin parses the header; a header that cannot be parsed,
    or a GIF whose first frame would trip Pillow's decompression-bomb check, gives ``None``.
    """
    kind = sniff_image_type(data)
    if kind is None:
        return None
    if kind == "image/gif":
        gif_size = _gif_first_frame_size(data)
        if gif_size is None or _pixels(gif_size) > _pixel_budget(None):
            return None
    try:
        im = _PLUGINS[kind](io.BytesIO(data))
    except Exception:
        return None
    width, height = im.size
    if width < 1 or height < 1:
        return None
    return kind, width, height


# --- checks -------------------------------------------------------------------------------


def _check_bytes(data: bytes, limits: ImageLimits, *, noun: str) -> str:
    """Size in bytes and type by magic; returns the sniffed MIME type or raises."""
    if not data:
        raise InvalidImage(msg(f"tg.intake.empty_{noun}"))
    if len(data) > limits.max_bytes:
        raise InvalidImage(
            msg(
                f"tg.intake.too_large_{noun}",
                size=_format_bytes(len(data), up=True),
                limit=_format_bytes(limits.max_bytes),
            )
        )
    kind = sniff_image_type(data)
    if kind is None:
        raise InvalidImage(msg(f"tg.intake.not_image_{noun}", what=_describe_unaccepted(data)))
    return kind


def _open_checked(data: bytes, kind: str, limits: ImageLimits, *, noun: str) -> ImageFile.ImageFile:
    """Parse the header with the sniffed type's plugin only and check the pixel count."""
    budget = _pixel_budget(limits.max_pixels)
    if kind == "image/gif":
        # Pillow grows a GIF to fit its first frame and runs its bomb check while parsing
        # (a warning, or an error); check the frame ourselves first.
        gif_size = _gif_first_frame_size(data)
        if gif_size is None:
            raise InvalidImage(_damaged(noun))
        _check_pixels(gif_size, budget, noun)
    try:
        im = _PLUGINS[kind](io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # not expected after the check above
        raise InvalidImage(msg(f"tg.intake.bomb_{noun}")) from exc
    except Exception as exc:  # SyntaxError, OSError, ValueError... from a broken header
        raise InvalidImage(_damaged(noun)) from exc
    width, height = im.size
    if width < 1 or height < 1:
        raise InvalidImage(_damaged(noun))
    _check_pixels(im.size, budget, noun)
    return im


def _check_pixels(size: tuple[int, int], budget: int, noun: str) -> None:
    if _pixels(size) > budget:
        raise InvalidImage(
            msg(
                f"tg.intake.pixels_{noun}",
                dimensions=f"{size[0]}x{size[1]}",
                limit=_format_megapixels(budget),
            )
        )


def _pixel_budget(max_pixels: int | None) -> int:
    """Our pixel limit, never above Pillow's (so its bomb warning cannot fire)."""
    pillow = Image.MAX_IMAGE_PIXELS
    candidates = [p for p in (max_pixels, pillow) if p is not None]
    return min(candidates) if candidates else 2**62


def _pixels(size: tuple[int, int]) -> int:
    return max(1, size[0]) * max(1, size[1])


def _gif_first_frame_size(data: bytes) -> tuple[int, int] | None:
    """The size Pillow gives a GIF once its first frame is parsed (screen grown to fit it).

    Mirrors ``GifImagePlugin``: skip the global colour table, extension blocks and stray
    bytes until the first image descriptor. ``None`` when there is no first frame (Pillow
    would refuse the file too), so hostile files are turned away without a second pass.
    """
    if len(data) < 13:
        return None
    width, height = struct.unpack_from("<HH", data, 6)
    flags = data[10]
    pos = 13
    if flags & 0x80:
        pos += 3 << ((flags & 7) + 1)
    end = len(data)
    while pos < end:
        found = _GIF_BLOCK_START.search(data, pos)  # Pillow skips any other byte
        if found is None:
            return None
        marker = data[found.start()]
        pos = found.start() + 1
        if marker == 0x3B:  # trailer before any frame
            return None
        if marker == 0x21:  # extension: label, then sub-blocks until a zero length
            pos += 1
            while pos < end:
                length = data[pos]
                pos += 1 + length
                if length == 0:
                    break
        else:  # 0x2C, image descriptor
            if pos + 8 > end:
                return None
            x0, y0, frame_w, frame_h = struct.unpack_from("<HHHH", data, pos)
            return max(width, x0 + frame_w), max(height, y0 + frame_h)
    return None


_GIF_BLOCK_START = re.compile(rb"[!,;]")


def _describe_unaccepted(data: bytes) -> Msg:
    """A short, human description of a file that is not an accepted image."""
    head = bytes(data[:64])
    lowered = bytes(data[:1024]).lower()
    if head.startswith(b"%PDF"):
        return Msg("tg.intake.kind.pdf")
    if head.startswith(b"BM"):
        return Msg("tg.intake.kind.bmp")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return Msg("tg.intake.kind.tiff")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return Msg("tg.intake.kind.heic")
        if brand in (b"avif", b"avis"):
            return Msg("tg.intake.kind.avif")
        return Msg("tg.intake.kind.video")
    if head.startswith(b"RIFF"):
        return Msg("tg.intake.kind.riff")
    if head.startswith(b"PK\x03\x04"):
        return Msg("tg.intake.kind.zip")
    if head.startswith(b"\x00\x00\x01\x00"):
        return Msg("tg.intake.kind.icon")
    if b"<svg" in lowered:
        return Msg("tg.intake.kind.svg")
    if b"<html" in lowered or b"<!doctype html" in lowered:
        return Msg("tg.intake.kind.html")
    if _looks_like_text(bytes(data[:1024])):
        return Msg("tg.intake.kind.text")
    return Msg("tg.intake.kind.unknown")


def _looks_like_text(sample: bytes) -> bool:
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at the end of the sample is still text
        try:
            text = sample[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    if not text:
        return False
    printable = sum(ch.isprintable() or ch in "\t\r\n\f" for ch in text)
    return printable / len(text) > 0.95


# --- decoding and pixel work --------------------------------------------------------------


def _decode(im: ImageFile.ImageFile, kind: str, max_edge: int) -> Image.Image:
    """Decode the (first frame of the) image; large JPEGs at a reduced DCT scale."""
    if kind == "image/jpeg":
        scale = _jpeg_dct_scale(im.size, max_edge)
        if scale > 1:
            width, height = im.size
            im.draft("RGB", (width // scale, height // scale))
    im.load()
    return im


def _jpeg_dct_scale(size: tuple[int, int], max_edge: int) -> int:
    """Largest libjpeg scale divisor (1, 2, 4, 8) keeping the long edge >= 3/4 of max_edge."""
    long_edge = max(size)
    if long_edge <= max_edge:
        return 1
    floor = math.ceil(max_edge * _MIN_EDGE_FRACTION)
    for scale in (8, 4, 2):
        if min(size) >= scale and -(-long_edge // scale) >= floor:
            return scale
    return 1


def _fit_within(im: Image.Image, max_edge: int) -> Image.Image:
    """Downscale so the long edge is exactly ``max_edge`` if it is above it."""
    width, height = im.size
    if max(width, height) <= max_edge:
        return im
    ratio = max_edge / max(width, height)
    target = (
        min(max_edge, max(1, round(width * ratio))),
        min(max_edge, max(1, round(height * ratio))),
    )
    im = _to_resizable(im)
    return im.resize(target, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in im.info


def _to_resizable(im: Image.Image) -> Image.Image:
    """A mode Lanczos works on without losing anything: RGB, RGBA, CMYK or L."""
    if im.mode in ("RGB", "RGBA", "CMYK", "L") and "transparency" not in im.info:
        return im
    if _has_alpha(im):
        return im.convert("RGBA")
    if im.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return _sixteen_bit_to_l(im)
    if im.mode == "1":
        return im.convert("L")
    return im.convert("RGB")


def _sixteen_bit_to_l(im: Image.Image) -> Image.Image:
    """16-bit grey (PNG) to 8-bit: scale, do not clip (Pillow's convert("L") clips)."""
    return im.convert("I").point(lambda v: v * (1 / 256)).convert("L")


def _apply_orientation(im: Image.Image) -> None:
    """Apply EXIF/XMP orientation in place; broken metadata is ignored, not fatal."""
    try:
        ImageOps.exif_transpose(im, in_place=True)
    except Exception:  # malformed EXIF must not cost the user their image
        return


def _to_srgb_rgb_or_rgba(im: Image.Image) -> Image.Image:
    """RGB or RGBA in sRGB; the ICC profile is converted when possible, else dropped."""
    im = _to_resizable(im)
    target = "RGBA" if im.mode == "RGBA" else "RGB"
    icc = im.info.get("icc_profile")
    if isinstance(icc, bytes) and icc:
        converted = _icc_to_srgb(im, icc, target)
        if converted is not None:
            return converted
    return im if im.mode == target else im.convert(target)


def _icc_to_srgb(im: Image.Image, icc: bytes, target: str) -> Image.Image | None:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if im.mode in ("RGB", "RGBA") and "srgb" in ImageCms.getProfileDescription(source).lower():
            return None  # already sRGB: dropping the profile changes nothing
        result = ImageCms.profileToProfile(
            im,
            source,
            _srgb_profile(),
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            outputMode=target,
        )
    except Exception:  # unusable profile, or mode/profile mismatch: fall back to dropping it
        return None
    return result


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _alpha_is_opaque(im: Image.Image) -> bool:
    low, _high = im.getchannel("A").getextrema()
    return bool(low == 255)


def _mask_to_rgba(im: Image.Image) -> Image.Image:
    """RGBA keeping alpha; without alpha, brightness becomes alpha (black = edit here)."""
    if _has_alpha(im):
        return im.convert("RGBA")
    if im.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        grey = _sixteen_bit_to_l(im)
    else:
        grey = im.convert("L")
    rgba = grey.convert("RGBA")
    rgba.putalpha(grey)
    return rgba


# --- encoding -----------------------------------------------------------------------------


def _clean(im: Image.Image) -> Image.Image:
    """Drop everything Pillow would otherwise write back (ICC, comment, transparency...)."""
    im.info = {}
    return im


def _encode_png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    _clean(im).save(buf, format="PNG")
    return buf.getvalue()


def _encode_jpeg(im: Image.Image, subsampling: str) -> bytes:
    buf = io.BytesIO()
    _clean(im).save(buf, format="JPEG", quality=_JPEG_QUALITY, subsampling=subsampling)
    return buf.getvalue()


# --- messages and names -------------------------------------------------------------------


def _damaged(noun: str) -> Msg:
    return msg(f"tg.intake.damaged_{noun}")


def _format_bytes(size: int, *, up: bool = False) -> str:
    """MB with one decimal (rounded up for the file, so it never equals the limit)."""
    if size >= _MIB:
        value = size / _MIB
        if value == int(value):
            return f"{int(value)} MB" if not up else f"{value:.1f} MB"
        shown = math.ceil(value * 10) / 10 if up else round(value, 1)
        return f"{shown:.1f} MB"
    kib = size / 1024
    shown = math.ceil(kib) if up else round(kib)
    return f"{shown} KB"


def _format_megapixels(pixels: int) -> str:
    if pixels % 1_000_000 == 0:
        return str(pixels // 1_000_000)
    return f"{pixels / 1_000_000:.1f}"


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _safe_filename(filename: str, ext: str) -> str:
    """Base name only, ASCII letters/digits/``-``/``_``, with the new extension."""
    base = re.split(r"[\\/]", filename or "")[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.strip(".") else base
    stem = _UNSAFE.sub("_", stem).strip("_-")[:64] or "image"
    return f"{stem}.{ext}"
