"""Reference-image intake (core/generation/intake.py): every fixture is made here with Pillow."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

from core.errors import InvalidImage
from core.generation import intake as images
from core.generation.intake import (
    ImageLimits,
    image_dimensions,
    normalize_mask,
    normalize_reference,
    sniff_image_type,
)

# --- fixture builders ---------------------------------------------------------------------


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **params)
    return buf.getvalue()


def opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` and that has no pixel data at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")


def png_zero_bomb(width: int, height: int) -> bytes:
    """A real, valid, all-black 1-bit PNG: tiny on disk, huge once decoded."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed pixels
    packer = zlib.compressobj(9)
    rows_per_chunk = 1000
    parts = [packer.compress(row * rows_per_chunk) for _ in range(height // rows_per_chunk)]
    parts.append(packer.compress(row * (height % rows_per_chunk)))
    parts.append(packer.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )


def gif_with_oversized_frame(frame_w: int, frame_h: int) -> bytes:
    """A GIF whose 10x10 screen holds a first frame of ``frame_w`` x ``frame_h``."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 10, 10, 0, 0, 0)
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, frame_w, frame_h, 0)
    return screen + descriptor + b"\x02\x02\x4c\x01\x00;"


def two_colour(size: tuple[int, int], left: str, right: str) -> Image.Image:
    """Left half one colour, right half another."""
    im = Image.new("RGB", size, left)
    im.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return im


def photo(size: tuple[int, int]) -> Image.Image:
    """Gradients with a little noise: compresses like a photo."""
    grad = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise(size, 20)
    return Image.merge(
        "RGB", (grad, Image.blend(grad, noise, 0.3), grad.transpose(Image.Transpose.ROTATE_180))
    )


def gradient(size: tuple[int, int]) -> Image.Image:
    """Smooth colour gradients: quick to build and encode, even at 24 megapixels."""
    grad = Image.linear_gradient("L").resize(size)
    return Image.merge("RGB", (grad, grad.transpose(Image.Transpose.ROTATE_180), grad))


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 8) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def refused(call: Callable[[], object]) -> str:
    with pytest.raises(InvalidImage) as caught:
        call()
    assert caught.value.code == "invalid_image"
    return caught.value.user_message


# --- type detection -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")],
)
def test_sniff_image_type_recognises_each_accepted_format(fmt: str, mime: str) -> None:
    assert sniff_image_type(encode(Image.new("RGB", (8, 8), "red"), fmt)) == mime


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"hello, I am a text file",
        b"%PDF-1.7\n",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"RIFF\x00\x00\x00\x00WAVEfmt ",
        b"\x89PN",
        encode(Image.new("RGB", (8, 8)), "BMP"),
        encode(Image.new("RGB", (8, 8)), "TIFF"),
    ],
)
def test_sniff_image_type_returns_none_for_anything_else(junk: bytes) -> None:
    assert sniff_image_type(junk) is None


def test_text_file_named_png_is_refused_kindly() -> None:
    data = b"This is my holiday photo, honest.\nLine two.\n"
    message = refused(lambda: normalize_reference(data, filename="holiday.png"))
    assert "not an image we can use" in message
    assert "looks like text" in message
    assert "PNG, JPEG, WebP or GIF" in message


@pytest.mark.parametrize(
    ("data", "described"),
    [
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'></svg>", "SVG"),
        (encode(Image.new("RGB", (8, 8)), "BMP"), "BMP"),
        (encode(Image.new("RGB", (8, 8)), "TIFF"), "TIFF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
        (bytes(range(256)) * 4, "not recognised"),
    ],
)
def test_unaccepted_formats_are_named_in_the_refusal(data: bytes, described: str) -> None:
    message = refused(lambda: normalize_reference(data, filename="picture.jpg"))
    assert described in message
    assert "PNG, JPEG, WebP or GIF" in message


def test_empty_file_is_refused() -> None:
    assert "empty" in refused(lambda: normalize_reference(b""))


def test_claimed_name_does_not_decide_the_type() -> None:
    data = encode(Image.new("RGB", (20, 10), "green"), "PNG")
    out = normalize_reference(data, filename="looks_like.gif")
    assert out.content_type == "image/jpeg"
    assert out.filename == "looks_like.jpg"


# --- size and decompression bombs ---------------------------------------------------------


def test_sixty_megabyte_file_is_refused_by_size_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def must_not_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the header was parsed although the file is too large")

    monkeypatch.setattr(images, "_open_checked", must_not_parse)
    data = b"\x89PNG\r\n\x1a\n" + bytes(60 * 1024 * 1024 - 8)
    message = refused(lambda: normalize_reference(data))
    assert "60.0 MB" in message
    assert "limit is 20 MB" in message


def test_file_just_over_the_limit_does_not_read_as_equal_to_it() -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(20 * 1024 * 1024)
    assert "20.1 MB" in refused(lambda: normalize_reference(data))


def test_header_declaring_30000x30000_is_refused_before_decoding() -> None:
    # No pixel data at all: a decode would report damage, so the pixel message proves the
    # check ran on the header alone.
    message = refused(lambda: normalize_reference(png_header_only(30000, 30000)))
    assert "30000x30000 pixels" in message
    assert "50 megapixels" in message


def test_compressed_decompression_bomb_is_refused() -> None:
    bomb = png_zero_bomb(20000, 20000)  # 400 megapixels in a few dozen KB
    assert len(bomb) < 200_000
    message = refused(lambda: normalize_reference(bomb))
    assert "20000x20000 pixels" in message


def test_header_between_our_limit_and_pillows_is_refused() -> None:
    message = refused(lambda: normalize_reference(png_header_only(8000, 8000)))
    assert "8000x8000" in message


def test_pillow_bomb_warning_never_escapes_even_with_a_generous_limit() -> None:
    # 100 MP is above Pillow's own warning threshold (about 89 MP); warnings are errors in
    # this suite, so any DecompressionBombWarning would fail the test.
    before = Image.MAX_IMAGE_PIXELS
    generous = ImageLimits(max_pixels=10**9)
    message = refused(lambda: normalize_reference(png_header_only(10000, 10000), limits=generous))
    assert "10000x10000" in message
    assert before == Image.MAX_IMAGE_PIXELS


def test_gif_with_a_first_frame_far_larger_than_its_screen_is_refused() -> None:
    bomb = gif_with_oversized_frame(12000, 12000)
    message = refused(lambda: normalize_reference(bomb, limits=ImageLimits(max_pixels=10**9)))
    assert "12000x12000" in message
    assert image_dimensions(bomb) is None


# --- damaged files ------------------------------------------------------------------------


def test_truncated_png_is_refused_as_damaged() -> None:
    data = encode(photo((300, 200)), "PNG")
    message = refused(lambda: normalize_reference(data[: len(data) // 2]))
    assert "damaged or incomplete" in message


def test_truncated_jpeg_is_refused_as_damaged() -> None:
    data = encode(photo((300, 200)), "JPEG", quality=90)
    message = refused(lambda: normalize_reference(data[: len(data) // 2]))
    assert "damaged or incomplete" in message


def test_png_with_a_broken_header_is_refused_as_damaged() -> None:
    data = bytearray(encode(Image.new("RGB", (20, 20)), "PNG"))
    data[20] ^= 0xFF  # inside IHDR: the CRC no longer matches
    assert "damaged" in refused(lambda: normalize_reference(bytes(data)))


# --- colour modes and frames --------------------------------------------------------------


def test_cmyk_jpeg_is_accepted_and_converted_to_rgb() -> None:
    data = encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG", quality=95)
    out = normalize_reference(data)
    im = opened(out.data)
    assert out.content_type == "image/jpeg"
    assert im.mode == "RGB"
    assert close_to(im.getpixel((32, 24)), (255, 0, 0), tolerance=12)  # type: ignore[arg-type]


def test_animated_gif_uses_its_first_frame() -> None:
    frames = [Image.new("RGB", (64, 64), colour) for colour in ("red", "lime", "blue")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert opened(data).n_frames == 3  # type: ignore[attr-defined]
    out = normalize_reference(data, filename="anim.gif")
    im = opened(out.data)
    assert (out.width, out.height) == (64, 64)
    assert close_to(im.convert("RGB").getpixel((32, 32)), (255, 0, 0))  # type: ignore[arg-type]


def test_webp_is_accepted() -> None:
    data = encode(photo((120, 80)), "WEBP", quality=90)
    out = normalize_reference(data, filename="pic.webp")
    assert out.content_type == "image/jpeg"
    assert (out.width, out.height) == (120, 80)
    assert out.filename == "pic.jpg"


def test_png_with_alpha_is_kept_as_png_with_alpha() -> None:
    im = Image.new("RGBA", (60, 40), (0, 0, 255, 255))
    im.paste((255, 0, 0, 0), (0, 0, 30, 40))  # left half fully transparent
    out = normalize_reference(encode(im, "PNG"), filename="sticker.png")
    result = opened(out.data)
    assert out.content_type == "image/png"
    assert out.filename == "sticker.png"
    assert result.mode == "RGBA"
    assert result.getpixel((5, 5))[3] == 0  # type: ignore[index]
    assert result.getpixel((50, 5)) == (0, 0, 255, 255)


def test_palette_gif_with_transparency_keeps_alpha() -> None:
    im = Image.new("P", (20, 20), 0)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.paste(1, (0, 0, 10, 20))
    data = encode(im, "GIF", transparency=1)
    out = normalize_reference(data)
    result = opened(out.data)
    assert out.content_type == "image/png"
    assert result.getpixel((2, 2))[3] == 0  # type: ignore[index]
    assert result.getpixel((15, 2)) == (255, 0, 0, 255)


def test_fully_opaque_alpha_channel_gives_a_jpeg() -> None:
    out = normalize_reference(encode(Image.new("RGBA", (30, 30), (9, 9, 9, 255)), "PNG"))
    assert out.content_type == "image/jpeg"


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "I;16"])
def test_other_png_modes_are_normalised_to_rgb_or_rgba(mode: str) -> None:
    out = normalize_reference(encode(Image.new(mode, (16, 16)), "PNG"))
    assert opened(out.data).mode in ("RGB", "RGBA")


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    im = Image.new("I;16", (16, 16), 32768)  # mid grey in 16 bits
    out = normalize_reference(encode(im, "PNG"))
    assert close_to(opened(out.data).getpixel((8, 8)), (128, 128, 128), tolerance=3)  # type: ignore[arg-type]


# --- metadata and orientation -------------------------------------------------------------


def test_jpeg_with_gps_exif_comes_out_without_any_exif() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyPhone"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (48.0, 51.0, 29.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (2.0, 17.0, 40.0),
        ExifTags.GPS.GPSMapDatum: "WGS-84",
    }
    data = encode(photo((200, 150)), "JPEG", exif=exif, quality=90)
    assert opened(data).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the fixture has GPS

    out = normalize_reference(data, filename="IMG_0001.JPG")
    result = opened(out.data)
    assert len(result.getexif()) == 0
    assert "exif" not in result.info
    assert b"Exif" not in out.data
    assert b"WGS-84" not in out.data
    assert b"SpyPhone" not in out.data


def test_png_metadata_chunks_and_icc_profile_are_stripped() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret note")
    info.add_itxt("Author", "Someone Private")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im = Image.new("RGBA", (40, 40), (10, 20, 30, 128))
    data = encode(im, "PNG", pnginfo=info, icc_profile=srgb, exif=b"Exif\x00\x00MM\x00*")
    assert b"iCCP" in data and b"tEXt" in data

    out = normalize_reference(data)
    assert out.content_type == "image/png"
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"iCCP", b"eXIf"):
        assert chunk not in out.data
    assert b"secret note" not in out.data
    assert "icc_profile" not in opened(out.data).info


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "CMYK"])
def test_embedded_colour_profile_is_converted_to_srgb_and_dropped(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # Pillow can only build an sRGB profile, which intake would simply drop; disguise it so
    # the conversion path (profile -> sRGB with littleCMS) runs.
    monkeypatch.setattr(images.ImageCms, "getProfileDescription", lambda _profile: "Wide Gamut")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    colour = {"RGB": (200, 30, 40), "RGBA": (200, 30, 40, 128), "CMYK": (0, 255, 255, 0)}[mode]
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    data = encode(Image.new(mode, (32, 32), colour), fmt, icc_profile=srgb)
    out = normalize_reference(data)
    result = opened(out.data)
    assert "icc_profile" not in result.info
    assert result.mode == ("RGBA" if mode == "RGBA" else "RGB")
    expected = {"RGB": (200, 30, 40), "RGBA": (200, 30, 40, 128), "CMYK": (255, 0, 0)}[mode]
    assert close_to(result.getpixel((16, 16)), expected, tolerance=12)  # type: ignore[arg-type]


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored sideways: rotate 90 degrees clockwise
    data = encode(two_colour((100, 50), "red", "blue"), "JPEG", exif=exif, quality=95)

    out = normalize_reference(data)
    result = opened(out.data).convert("RGB")
    assert (out.width, out.height) == (50, 100)
    assert result.size == (50, 100)
    assert close_to(result.getpixel((25, 10)), (255, 0, 0), tolerance=20)  # type: ignore[arg-type]
    assert close_to(result.getpixel((25, 90)), (0, 0, 255), tolerance=20)  # type: ignore[arg-type]
    assert len(result.getexif()) == 0


# --- downscaling --------------------------------------------------------------------------


def test_large_jpeg_is_downscaled_to_max_edge() -> None:
    data = encode(gradient((4000, 3000)), "JPEG", quality=90)
    out = normalize_reference(data)
    # DCT scaling halves it to 2000x1500, which already fits: no second resampling.
    assert 1536 <= max(out.width, out.height) <= 2048
    assert abs(out.width / out.height - 4 / 3) < 0.01
    assert opened(out.data).size == (out.width, out.height)


def test_large_jpeg_that_halves_above_max_edge_is_resized_exactly_to_it() -> None:
    data = encode(gradient((6000, 4000)), "JPEG", quality=90)
    out = normalize_reference(data)
    assert (out.width, out.height) == (2048, 1365)


def test_large_png_is_downscaled_exactly_to_max_edge() -> None:
    out = normalize_reference(encode(Image.new("RGB", (3000, 2000), "teal"), "PNG"))
    assert (out.width, out.height) == (2048, 1365)


def test_custom_max_edge_is_honoured() -> None:
    data = encode(photo((1000, 500)), "JPEG", quality=90)
    out = normalize_reference(data, limits=ImageLimits(max_edge=256))
    assert max(out.width, out.height) <= 256
    assert max(out.width, out.height) >= 192


def test_small_image_keeps_its_size() -> None:
    out = normalize_reference(encode(photo((320, 240)), "JPEG", quality=90))
    assert (out.width, out.height) == (320, 240)


# --- file names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_name", "expected"),
    [
        ("../../etc/passwd", "passwd.jpg"),
        ("C:\\Users\\me\\Desktop\\cat photo.PNG", "cat_photo.jpg"),
        ("", "image.jpg"),
        (".hidden", "hidden.jpg"),
        ("фото.jpeg", "image.jpg"),
        ("a" * 300 + ".png", "a" * 64 + ".jpg"),
    ],
)
def test_filename_is_sanitised_and_gets_the_new_extension(given_name: str, expected: str) -> None:
    out = normalize_reference(encode(Image.new("RGB", (8, 8)), "PNG"), filename=given_name)
    assert out.filename == expected


# --- masks --------------------------------------------------------------------------------


def test_mask_is_resized_to_the_given_size_as_rgba_png() -> None:
    mask = Image.new("RGBA", (300, 200), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 150, 200))
    out = normalize_mask(encode(mask, "PNG"), size=(150, 100))
    result = opened(out.data)
    assert out.content_type == "image/png"
    assert (out.width, out.height) == (150, 100)
    assert result.mode == "RGBA"
    assert result.size == (150, 100)
    assert result.getpixel((10, 50))[3] == 0  # type: ignore[index]
    assert result.getpixel((140, 50))[3] == 255  # type: ignore[index]


def test_mask_without_alpha_uses_brightness_as_alpha() -> None:
    mask = two_colour((64, 64), "black", "white")
    out = normalize_mask(encode(mask, "JPEG", quality=95), size=(32, 32))
    result = opened(out.data)
    assert result.mode == "RGBA"
    assert result.getpixel((4, 16))[3] < 10  # type: ignore[index]
    assert result.getpixel((28, 16))[3] > 245  # type: ignore[index]


def test_mask_that_is_not_an_image_is_refused() -> None:
    message = refused(lambda: normalize_mask(b"just some words", size=(64, 64)))
    assert "mask" in message
    assert "PNG, JPEG, WebP or GIF" in message


def test_damaged_mask_is_refused() -> None:
    data = encode(Image.new("L", (64, 64)), "PNG")
    assert "mask" in refused(lambda: normalize_mask(data[:40], size=(64, 64)))


def test_mask_with_a_bomb_header_is_refused() -> None:
    assert "pixels" in refused(lambda: normalize_mask(png_header_only(30000, 30000), size=(8, 8)))


def test_mask_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        normalize_mask(encode(Image.new("L", (8, 8)), "PNG"), size=(0, 8))


# --- image_dimensions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")],
)
def test_image_dimensions_reads_each_format(fmt: str, mime: str) -> None:
    assert image_dimensions(encode(Image.new("RGB", (37, 21)), fmt)) == (mime, 37, 21)


def test_image_dimensions_reads_the_header_without_decoding_pixels() -> None:
    # 900 megapixels and no pixel data: only a header parse can answer (and answers fast).
    assert image_dimensions(png_header_only(30000, 30000)) == ("image/png", 30000, 30000)
    jpeg = encode(photo((400, 300)), "JPEG", quality=90)
    header_only = jpeg[: jpeg.index(b"\xff\xda") + 20]  # cut a few bytes into the scan
    assert image_dimensions(header_only) == ("image/jpeg", 400, 300)


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"plain text",
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff",
        encode(Image.new("L", (4, 4)), "BMP"),
    ],
)
def test_image_dimensions_is_none_for_non_images(junk: bytes) -> None:
    assert image_dimensions(junk) is None


# --- fuzzing ------------------------------------------------------------------------------

_MAGICS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"GIF87a", b"RIFF\x00\x00\x00\x00WEBP"]
_SAMPLES = [
    encode(photo((24, 16)), "PNG"),
    encode(photo((24, 16)), "JPEG", quality=80),
    encode(photo((24, 16)), "WEBP"),
    encode(photo((24, 16)).convert("P"), "GIF"),
    encode(Image.new("RGBA", (24, 16), (1, 2, 3, 4)), "PNG"),
]
_SMALL = ImageLimits(max_pixels=4_000_000, max_edge=64)


def only_invalid_image(data: bytes) -> None:
    """Nothing but InvalidImage may come out of the intake; image_dimensions never raises."""
    for call in (
        lambda: normalize_reference(data, limits=_SMALL),
        lambda: normalize_mask(data, size=(24, 16), limits=_SMALL),
    ):
        try:
            out = call()
        except InvalidImage:
            continue
        assert isinstance(out.data, bytes)
        assert out.content_type in ("image/png", "image/jpeg")
    found = image_dimensions(data)
    assert found is None or found[0] == sniff_image_type(data)


_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_raise_only_invalid_image(data: bytes) -> None:
    only_invalid_image(data)


@_FUZZ
@given(st.sampled_from(_MAGICS), st.binary(max_size=2048))
def test_random_bytes_behind_an_image_magic_raise_only_invalid_image(
    magic: bytes, tail: bytes
) -> None:
    only_invalid_image(magic + tail)


@_FUZZ
@given(
    st.sampled_from(_SAMPLES),
    st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=6),
    st.one_of(st.none(), st.integers(8, 4096)),
)
def test_corrupted_real_images_raise_only_invalid_image(
    sample: bytes, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(sample)
    for position, value in edits:
        data[position % len(data)] = value
    only_invalid_image(bytes(data[:cut]))
