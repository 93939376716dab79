"""The demo model draws labelled placeholders with Pillow: sizes, formats, streaming, edits."""

from __future__ import annotations

import asyncio
import io
from types import SimpleNamespace

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageStat

from core.generation.ports import ImageModel, ModelCall, ModelEvent, ModelImage, ModelPartial
from core.generation.providers import demo
from core.generation.providers.demo import DemoImageModel
from core.types import InputImage, ResolvedOptions

FORMATS = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
}


def make_call(
    prompt: str = "a lighthouse on a cliff at sunset",
    *,
    size: str = "1024x1024",
    output_format: str = "png",
    background: str = "auto",
    n: int = 1,
    inputs: tuple[InputImage, ...] = (),
    partials: int = 0,
) -> ModelCall:
    options = ResolvedOptions(
        model="demo",
        size=size,
        quality="medium",
        output_format=output_format,
        background=background,
        n=n,
    )
    return ModelCall(
        prompt=prompt,
        options=options,
        user_hash="user-hash",
        inputs=inputs,
        stream_partials=partials,
    )


async def collect(call: ModelCall, model: DemoImageModel | None = None) -> list[ModelEvent]:
    model = model or DemoImageModel()
    return [event async for event in model.run(call)]


def finals(events: list[ModelEvent]) -> list[ModelImage]:
    return [e for e in events if isinstance(e, ModelImage)]


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


# --- the protocol -------------------------------------------------------------------------


async def test_demo_model_satisfies_the_image_model_port() -> None:
    model: ImageModel = DemoImageModel()
    assert model.name == "demo"
    assert model.notice == "Demo model: this is a placeholder drawn locally, not an AI image."
    assert await model.check() is None
    await model.aclose()


# --- sizes and formats ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("1024x1024", (1024, 1024)),
        ("1536x1024", (1536, 1024)),
        ("1024x1536", (1024, 1536)),
        ("1280x720", (1280, 720)),
        ("auto", (1024, 1024)),
    ],
)
async def test_size_is_honoured(size: str, expected: tuple[int, int]) -> None:
    (image,) = finals(await collect(make_call(size=size)))
    assert decode(image.data).size == expected


def test_malformed_or_huge_sizes_are_clamped_not_allocated() -> None:
    assert demo.image_size("nonsense") == (1024, 1024)
    assert demo.image_size("99999x99999") == (demo.MAX_EDGE, demo.MAX_EDGE)
    assert demo.image_size("10x10") == (demo.MIN_EDGE, demo.MIN_EDGE)


@pytest.mark.parametrize("output_format", sorted(FORMATS))
async def test_output_format_is_honoured(output_format: str) -> None:
    pil_format, content_type = FORMATS[output_format]
    (image,) = finals(await collect(make_call(output_format=output_format, size="1280x720")))
    assert image.content_type == content_type
    decoded = decode(image.data)
    assert decoded.format == pil_format
    assert decoded.size == (1280, 720)


# --- count, variation, determinism ------------------------------------------------------------


async def test_n_three_gives_three_different_images() -> None:
    events = await collect(make_call(n=3))
    images = finals(events)
    assert len(images) == 3
    assert len(events) == 3
    assert len({image.data for image in images}) == 3
    for image in images:
        assert decode(image.data).size == (1024, 1024)


async def test_same_prompt_draws_the_same_picture_and_another_prompt_another() -> None:
    (a,) = finals(await collect(make_call("a red bicycle")))
    (b,) = finals(await collect(make_call("a red bicycle")))
    (c,) = finals(await collect(make_call("a blue bicycle")))
    assert a.data == b.data
    assert a.data != c.data


# --- streaming --------------------------------------------------------------------------------


async def test_partials_come_before_the_final_images() -> None:
    events = await collect(make_call(n=2, partials=3, output_format="webp"))
    kinds = [type(e) for e in events]
    assert kinds == [ModelPartial, ModelPartial, ModelPartial, ModelImage, ModelImage]
    partials = [e for e in events if isinstance(e, ModelPartial)]
    assert [p.index for p in partials] == [0, 1, 2]
    for partial in partials:
        assert partial.content_type == "image/webp"
        assert decode(partial.data).size == (1024, 1024)
    # Previews are coarse versions of the first image, not the image itself.
    assert all(p.data != events[3].data for p in partials)


async def test_latency_is_spread_over_the_partials(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    # Only the demo module sees the fake: the event loop keeps the real asyncio.sleep.
    monkeypatch.setattr(
        demo, "asyncio", SimpleNamespace(sleep=fake_sleep, to_thread=asyncio.to_thread)
    )
    await collect(make_call(partials=2), DemoImageModel(latency=0.9))
    assert slept == pytest.approx([0.3, 0.3, 0.3])


async def test_zero_latency_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    # Only the demo module sees the fake: the event loop keeps the real asyncio.sleep.
    monkeypatch.setattr(
        demo, "asyncio", SimpleNamespace(sleep=fake_sleep, to_thread=asyncio.to_thread)
    )
    await collect(make_call(partials=3, n=2))
    assert slept == []


async def test_drawing_keeps_the_event_loop_free() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    try:
        # No latency, so the only chances the ticker gets are while Pillow works in a thread.
        await collect(make_call(size="2048x2048", partials=1))
    finally:
        task.cancel()
    assert ticks >= 5


# --- hostile prompts --------------------------------------------------------------------------

ODD_PROMPTS = [
    "",
    "   \n\t  ",
    "emoji 😀🎨👩‍👩‍👧‍👦🏳️‍🌈 and flags 🇫🇷",
    "RTL مرحبا بالعالم שלום עולם with \u202eoverride\u202c and \u200fmarks\u200e",
    "zero\u200bwidth\u200c\u200d\ufeffjoiners\u2060",
    "control \x00\x01\x07\x1b[31m\x7f\x85 chars\r\n\v\f",
    "lone surrogates \ud800 \udfff",
    "private use \ue000 \U0010fffd unassigned \U0010ffff \U000e0001",
    "Z̷̢̛̛̛̖̗̘̙̜̝̞̟̠̤̥̦̩̪̫̬̭̮̯̰̱̲̳̹̺̻̼͇͈͉͍͎a̸l̵g̶o̴" * 20,
    "中文 日本語 한국어 ไทย हिन्दी ქართული",
    "ﬁ ligature ℌ 𝔉𝔯𝔞𝔨𝔱𝔲𝔯 ①②③ ＦＵＬＬＷＩＤＴＨ",
    "\u2028line\u2029paragraph separators",
]


@pytest.mark.parametrize("prompt", ODD_PROMPTS)
async def test_odd_unicode_prompts_do_not_crash(prompt: str) -> None:
    (image,) = finals(await collect(make_call(prompt, size="512x512")))
    assert decode(image.data).size == (512, 512)


@pytest.mark.parametrize(
    "prompt",
    ["a castle " * 3_556, "x" * 32_000, "😀" * 32_000, "مرحبا " * 5_334],
    ids=["words", "one-word", "emoji", "rtl"],
)
async def test_very_long_prompts_are_clipped_not_fatal(prompt: str) -> None:
    assert len(prompt) >= 32_000
    (image,) = finals(await collect(make_call(prompt[:32_000], size="1024x1536")))
    assert decode(image.data).size == (1024, 1536)


@pytest.mark.parametrize("prompt", [ODD_PROMPTS[2], ODD_PROMPTS[5], "é — ok… ß"])
async def test_prompts_render_with_the_bundled_font(
    monkeypatch: pytest.MonkeyPatch, prompt: str
) -> None:
    # The Docker image has no system fonts: Pillow's own font must cope as well.
    monkeypatch.setattr(demo, "_system_font_path", lambda name: None)
    (image,) = finals(await collect(make_call(prompt, size="512x512")))
    assert decode(image.data).size == (512, 512)


@pytest.mark.parametrize("prompt", [ODD_PROMPTS[2], ODD_PROMPTS[6], "é — ok… ß " * 100])
async def test_prompts_render_without_freetype(
    monkeypatch: pytest.MonkeyPatch, prompt: str
) -> None:
    monkeypatch.setattr(demo, "_FREETYPE", False)
    (image,) = finals(await collect(make_call(prompt, size="512x512")))
    assert decode(image.data).size == (512, 512)


def test_printable_drops_invisible_characters_and_replaces_unknown_ones() -> None:
    source = demo._font_source()
    font = source.font(20)
    text = demo.printable("a\u200bb\x00c\nd\ud800e \U0010ffff", source, font)
    assert text == "abc d?e ?"


def test_wrap_clips_with_an_ellipsis() -> None:
    source = demo._font_source()
    font = source.font(20)
    lines = demo.wrap("word " * 500, font, 300, 4)
    assert len(lines) == 4
    assert lines[-1].endswith("...")
    assert all(font.getlength(line) <= 300 for line in lines)
    unbroken = demo.wrap("y" * 500, font, 100, 100)
    assert "".join(unbroken) == "y" * 500
    assert demo.wrap("short", font, 300, 4) == ["short"]
    assert demo.wrap("anything", font, 300, 0) == []


# --- edits --------------------------------------------------------------------------------


async def test_edit_draws_over_the_reference_image() -> None:
    red = InputImage(png_bytes(Image.new("RGB", (600, 400), (230, 20, 20))), "image/png")
    (image,) = finals(await collect(make_call("make it blue", size="1280x720", inputs=(red,))))
    decoded = decode(image.data).convert("RGB")
    assert decoded.size == (1280, 720)
    corner = decoded.crop((0, 0, 128, 72))
    r, g, b = ImageStat.Stat(corner).mean
    assert r > g + 80 and r > b + 80, (r, g, b)
    whole_r, whole_g, whole_b = ImageStat.Stat(decoded).mean
    assert whole_r > whole_g and whole_r > whole_b


async def test_edit_with_a_jpeg_reference_and_several_outputs() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300), (20, 20, 230)).save(buffer, "JPEG")
    blue = InputImage(buffer.getvalue(), "image/jpeg")
    images = finals(await collect(make_call(inputs=(blue,), n=2, output_format="jpeg")))
    assert len(images) == 2
    for image in images:
        b = ImageStat.Stat(decode(image.data).convert("RGB").crop((0, 0, 100, 100))).mean[2]
        assert b > 150


async def test_edit_with_a_transparent_reference_is_not_black() -> None:
    clear = InputImage(png_bytes(Image.new("RGBA", (256, 256), (0, 0, 0, 0))), "image/png")
    (image,) = finals(await collect(make_call(inputs=(clear,), size="512x512")))
    corner = decode(image.data).convert("RGB").crop((0, 0, 50, 50))
    assert sum(ImageStat.Stat(corner).mean) > 150


async def test_edit_with_an_undecodable_reference_still_draws() -> None:
    junk = InputImage(b"\x89PNG\r\n\x1a\nnot really a png", "image/png")
    (image,) = finals(await collect(make_call(inputs=(junk,), size="512x512")))
    assert decode(image.data).size == (512, 512)


# --- transparency -------------------------------------------------------------------------


@pytest.mark.parametrize("output_format", ["png", "webp"])
async def test_transparent_background_has_alpha(output_format: str) -> None:
    call = make_call(background="transparent", output_format=output_format, partials=1)
    events = await collect(call)
    for event in events:
        decoded = decode(event.data)
        assert decoded.mode == "RGBA"
        low, high = decoded.getchannel("A").getextrema()
        assert low == 0 and high == 255
        assert decoded.getpixel((0, 0))[3] == 0  # type: ignore[index]


@pytest.mark.parametrize("background", ["auto", "opaque"])
async def test_opaque_backgrounds_have_no_alpha(background: str) -> None:
    (image,) = finals(await collect(make_call(background=background)))
    assert decode(image.data).mode == "RGB"


async def test_transparent_with_jpeg_is_flattened_not_an_error() -> None:
    (image,) = finals(await collect(make_call(background="transparent", output_format="jpeg")))
    decoded = decode(image.data)
    assert decoded.format == "JPEG"
    assert decoded.mode == "RGB"


# --- edits as "before -> after" (issue 18, defect 9) ----------------------------------------


def _checkerboard(size: tuple[int, int], cell: int = 8) -> Image.Image:
    board = Image.new("RGB", size, (250, 250, 250))
    draw = ImageDraw.Draw(board)
    for y in range(0, size[1], cell):
        for x in range((y // cell) % 2 * cell, size[0], 2 * cell):
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=(10, 10, 10))
    return board


def _detail(picture: Image.Image) -> float:
    """How much fine detail: the spread of brightness left after removing smooth shading."""
    grey = picture.convert("L")
    smooth = grey.filter(ImageFilter.BoxBlur(6))
    return float(ImageStat.Stat(ImageChops.difference(grey, smooth)).mean[0])


async def test_an_edit_shows_the_reference_as_a_before_thumbnail_beside_the_after() -> None:
    red = InputImage(png_bytes(Image.new("RGB", (400, 400), (230, 20, 20))), "image/png")
    (image,) = finals(await collect(make_call("make it blue", size="1024x1024", inputs=(red,))))
    picture = decode(image.data).convert("RGB")
    w, h = picture.size
    # Left of centre: the reference itself, sharp and untinted; right: the result.
    before = picture.getpixel((round(w * 0.28), round(h * 0.42)))
    after = picture.getpixel((round(w * 0.72), round(h * 0.42)))
    assert isinstance(before, tuple) and isinstance(after, tuple)
    assert max(abs(a - b) for a, b in zip(before, (230, 20, 20), strict=True)) <= 6, before
    assert before != after
    # Between them, an arrow: white on the centre line.
    assert min(picture.getpixel((w // 2, round(h * 0.42)))) > 200  # type: ignore[arg-type]


async def test_the_references_own_detail_does_not_compete_with_the_new_text() -> None:
    """The old prompt was drawn over a faded copy of the reference, so the two texts
    overlapped; the background is now a blurred copy with nothing legible left."""
    busy = InputImage(png_bytes(_checkerboard((1024, 1024))), "image/png")
    (image,) = finals(await collect(make_call("add a hat", size="1024x1024", inputs=(busy,))))
    picture = decode(image.data).convert("RGB")
    margin = picture.crop((0, 300, 40, 600))  # background only, beside the thumbnails
    assert _detail(margin) < 2.0
    thumbnail = picture.crop((150, 350, 350, 550))  # inside the "before" thumbnail
    assert _detail(thumbnail) > 20.0  # the reference itself stays sharp


async def test_the_instruction_is_drawn_once_on_its_own_panel_at_every_shape() -> None:
    ref = InputImage(png_bytes(Image.new("RGB", (300, 200), (20, 120, 220))), "image/png")
    for size in ("1024x1024", "1536x1024", "1024x1536", "64x64", "16x16", "4096x16"):
        call = make_call("a long instruction " * 30, size=size, inputs=(ref,))
        images = finals(await collect(call))
        assert decode(images[0].data).size == demo.image_size(size)
