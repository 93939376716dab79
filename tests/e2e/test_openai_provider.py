"""OpenAIImageModel against the loopback fake, through the real ``openai`` SDK (real HTTP)."""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import importlib
import io
import json
import logging
import tracemalloc
import warnings
from collections.abc import AsyncIterator, Iterable
from typing import Any

import openai
import pytest
import pytest_asyncio
from aiohttp import web
from PIL import Image

from core.errors import ContentRefused, ProviderRejected, ProviderUnavailable
from core.generation.ports import ModelCall, ModelEvent, ModelImage, ModelPartial
from core.generation.providers.openai_images import OpenAIImageModel, SSEEvent, SSEParser
from core.types import InputImage, ResolvedOptions
from tests.fakes.openai_server import FakeOpenAI, realistic_factory, realistic_png

API_KEY = "sk-test-imagebot-0123456789"
PLATFORM_USER_ID = "424242"
DISPLAY_NAME = "Ada Lovelace"
USER_HASH = hashlib.sha256(f"telegram:{PLATFORM_USER_ID}:{DISPLAY_NAME}".encode()).hexdigest()[:32]
PROMPT = "a lighthouse at dusk, watercolor"


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest_asyncio.fixture
async def provider(openai_fake: FakeOpenAI) -> AsyncIterator[OpenAIImageModel]:
    model = make_provider(openai_fake)
    yield model
    await model.aclose()


def make_provider(
    fake: FakeOpenAI, *, model: str = "gpt-image-2", max_retries: int = 2
) -> OpenAIImageModel:
    return OpenAIImageModel(
        api_key=API_KEY, base_url=fake.base_url, model=model, max_retries=max_retries, timeout=10
    )


def options(**changes: Any) -> ResolvedOptions:
    values: dict[str, Any] = {
        "model": "gpt-image-2",
        "size": "1024x1024",
        "quality": "medium",
        "output_format": "png",
        "background": "auto",
        "n": 1,
    }
    values.update(changes)
    return ResolvedOptions(**values)


def call(**changes: Any) -> ModelCall:
    values: dict[str, Any] = {"prompt": PROMPT, "options": options(), "user_hash": USER_HASH}
    values.update(changes)
    return ModelCall(**values)


async def collect(model: OpenAIImageModel, model_call: ModelCall) -> list[ModelEvent]:
    return [event async for event in model.run(model_call)]


def picture(color: tuple[int, int, int, int], fmt: str = "PNG", size: int = 64) -> bytes:
    img = Image.new(
        "RGBA" if fmt == "PNG" else "RGB", (size, size), color[: 4 if fmt == "PNG" else 3]
    )
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def mask_png(size: int = 64) -> bytes:
    img = Image.new("RGBA", (size, size), (0, 0, 0, 255))
    img.paste((0, 0, 0, 0), (0, 0, size // 2, size // 2))  # transparent: the area to edit
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def dimensions(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


# --- generation and editing -------------------------------------------------------------------


async def test_generate_sends_the_options_and_returns_the_image(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    events = await collect(provider, call(options=options(size="1536x1024", quality="high")))

    assert len(events) == 1
    image = events[0]
    assert isinstance(image, ModelImage)
    assert image.content_type == "image/png"
    assert dimensions(image.data) == (1536, 1024)
    (request,) = openai_fake.image_requests
    assert request.path == "/v1/images/generations"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    body = request.json
    assert body is not None
    assert body["model"] == "gpt-image-2"
    assert body["prompt"] == PROMPT
    assert body["size"] == "1536x1024"
    assert body["quality"] == "high"
    assert body["n"] == 1
    assert body["output_format"] == "png"
    assert body["user"] == USER_HASH
    assert body["safety_identifier"] == USER_HASH
    assert "background" not in body  # "auto" is the API default: not sent
    assert "stream" not in body


async def test_generate_jpeg_and_several_images_do_not_stream(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    events = await collect(
        provider, call(options=options(n=2, output_format="jpeg"), stream_partials=2)
    )

    assert [type(e) for e in events] == [ModelImage, ModelImage]
    assert all(e.content_type == "image/jpeg" and e.data[:3] == b"\xff\xd8\xff" for e in events)
    body = openai_fake.image_requests[0].json
    assert body is not None
    assert body["n"] == 2
    assert "stream" not in body and "partial_images" not in body


async def test_edit_sends_two_images_and_a_mask_as_multipart(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    first = picture((200, 30, 30, 255))
    second = picture((30, 30, 200, 255), fmt="JPEG")
    mask = mask_png()
    inputs = (
        InputImage(first, "image/png", filename="first.png", width=64, height=64),
        InputImage(second, "image/jpg", filename="second.jpg", width=64, height=64),
    )
    events = await collect(
        provider,
        call(inputs=inputs, mask=InputImage(mask, "image/png", filename="mask.png")),
    )

    assert [type(e) for e in events] == [ModelImage]
    (request,) = openai_fake.image_requests
    assert request.path == "/v1/images/edits"
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    images = request.files_named("image[]")
    assert [(f[2], f[3]) for f in images] == [("image/png", first), ("image/jpeg", second)]
    assert [f[1] for f in images] == ["image-1.png", "image-2.jpg"]
    (mask_part,) = request.files_named("mask")
    assert mask_part[2:] == ("image/png", mask)
    assert request.form["model"] == ["gpt-image-2"]
    assert request.form["prompt"] == [PROMPT]
    assert request.form["user"] == [USER_HASH]
    assert request.form["n"] == ["1"]


async def test_streaming_yields_partials_then_the_final_image(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    events = await collect(provider, call(stream_partials=2))

    assert [type(e) for e in events] == [ModelPartial, ModelPartial, ModelImage]
    partials = [e for e in events if isinstance(e, ModelPartial)]
    assert [p.index for p in partials] == [0, 1]
    assert all(e.content_type == "image/png" and e.data.startswith(b"\x89PNG") for e in events)
    body = openai_fake.image_requests[0].json
    assert body is not None
    assert body["stream"] is True
    assert body["partial_images"] == 2


async def test_streaming_edit_uses_image_edit_events(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    inputs = (InputImage(picture((10, 200, 10, 255)), "image/png"),)
    events = await collect(
        provider, call(inputs=inputs, stream_partials=1, options=options(output_format="webp"))
    )

    assert [type(e) for e in events] == [ModelPartial, ModelImage]
    assert events[-1].content_type == "image/webp"
    assert events[-1].data[8:12] == b"WEBP"
    request = openai_fake.image_requests[0]
    assert request.form["stream"] == ["true"]
    assert request.form["partial_images"] == ["1"]


# --- retries and failures ---------------------------------------------------------------------


async def test_rate_limit_is_retried_by_the_sdk_then_succeeds(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    openai_fake.fail_next(
        429, code="rate_limit_exceeded", type="requests", headers={"retry-after-ms": "50"}
    )

    events = await collect(provider, call())

    assert [type(e) for e in events] == [ModelImage]
    attempts = openai_fake.image_requests
    assert [r.status for r in attempts] == [429, 200]
    assert [r.headers["x-stainless-retry-count"] for r in attempts] == ["0", "1"]


async def test_server_errors_beyond_the_retry_budget_mean_unavailable(
    openai_fake: FakeOpenAI,
) -> None:
    openai_fake.fail_next(500, times=10, headers={"retry-after-ms": "10"})
    model = make_provider(openai_fake, max_retries=3)
    try:
        with pytest.raises(ProviderUnavailable):
            await collect(model, call())
    finally:
        await model.aclose()

    assert len(openai_fake.image_requests) == 3 + 1


async def test_insufficient_quota_means_unavailable_and_tells_the_operator(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel, caplog: pytest.LogCaptureFixture
) -> None:
    openai_fake.fail_next(
        429,
        code="insufficient_quota",
        type="insufficient_quota",
        message="You exceeded your current quota.",
        headers={"retry-after-ms": "10"},
        times=5,
    )
    with (
        caplog.at_level(logging.WARNING, logger="imagebot.provider"),
        pytest.raises(ProviderUnavailable),
    ):
        await collect(provider, call())

    assert len(openai_fake.image_requests) == 3  # the SDK retries quota errors too
    assert any(r.levelno == logging.ERROR and "quota" in r.getMessage() for r in caplog.records)


async def test_moderation_block_is_a_content_refusal_with_category_and_stage(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel, caplog: pytest.LogCaptureFixture
) -> None:
    openai_fake.refuse_next(categories=("sexual", "violence"), stage="output")

    with (
        caplog.at_level(logging.WARNING, logger="imagebot.provider"),
        pytest.raises(ContentRefused) as caught,
    ):
        await collect(provider, call())

    assert caught.value.reason == "sexual, violence"
    assert caught.value.stage == "output"
    assert "sexual, violence" in caught.value.user_message
    (request,) = openai_fake.image_requests  # not retried
    log_text = "\n".join(r.getMessage() for r in caplog.records)
    assert request.request_id in log_text
    assert PROMPT not in log_text and API_KEY not in log_text


async def test_invalid_size_is_rejected_with_a_message_naming_the_size(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    with pytest.raises(ProviderRejected) as caught:
        await collect(provider, call(options=options(size="512x512")))

    message = caught.value.user_message
    assert "size" in message and "512x512" in message
    assert len(message) <= 300
    assert "Error code" not in message  # the SDK's exception text is not shown
    assert len(openai_fake.image_requests) == 1


async def test_provider_message_is_stripped_of_anything_like_a_key(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    openai_fake.fail_next(
        400,
        type="invalid_request_error",
        code="invalid_value",
        param="quality",
        message=f"Invalid value for quality with key {API_KEY} and sk-proj-abcdef123456.",
    )
    with pytest.raises(ProviderRejected) as caught:
        await collect(provider, call())

    message = caught.value.user_message
    assert "quality" in message
    assert "sk-" not in message


async def test_wrong_api_key_means_unavailable_and_an_operator_error(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel, caplog: pytest.LogCaptureFixture
) -> None:
    openai_fake.accepted_keys = {"sk-the-right-one"}

    with (
        caplog.at_level(logging.WARNING, logger="imagebot.provider"),
        pytest.raises(ProviderUnavailable),
    ):
        await collect(provider, call())

    assert [r.status for r in openai_fake.image_requests] == [401]  # not retried
    assert any(
        r.levelno == logging.ERROR and "OPENAI_API_KEY" in r.getMessage() for r in caplog.records
    )
    assert all(API_KEY not in r.getMessage() for r in caplog.records)


async def test_unverified_organization_means_unavailable(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    openai_fake.fail_next(403, type="invalid_request_error")

    with pytest.raises(ProviderUnavailable):
        await collect(provider, call())


async def test_unreachable_service_means_unavailable() -> None:
    fake = FakeOpenAI()
    await fake.start()
    base_url = fake.base_url
    await fake.stop()  # nothing listens there any more
    model = OpenAIImageModel(api_key=API_KEY, base_url=base_url, model="gpt-image-2", max_retries=0)
    try:
        with pytest.raises(ProviderUnavailable):
            await collect(model, call())
        warning = await model.check()
    finally:
        await model.aclose()
    assert warning is not None and "gpt-image-2" in warning and "could not check" in warning.lower()


async def test_stream_that_errors_midway_means_unavailable(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    openai_fake.stream_error_next()
    received: list[ModelEvent] = []

    with pytest.raises(ProviderUnavailable):
        async for event in provider.run(call(stream_partials=2)):
            received.append(event)

    assert [type(e) for e in received] == [ModelPartial]


async def test_moderation_block_inside_a_stream_is_a_content_refusal(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    openai_fake.stream_error_next(
        code="moderation_blocked",
        type="image_generation_user_error",
        message="Your request was rejected by the safety system.",
        extra_error={
            "moderation_details": {"moderation_stage": "output", "categories": ["violence"]}
        },
    )

    with pytest.raises(ContentRefused) as caught:
        await collect(provider, call(stream_partials=1))

    assert caught.value.reason == "violence"
    assert caught.value.stage == "output"


async def test_empty_image_data_means_unavailable(openai_fake: FakeOpenAI) -> None:
    openai_fake.image_bytes_factory = lambda width, height, fmt: b""
    model = make_provider(openai_fake)
    try:
        with pytest.raises(ProviderUnavailable):
            await collect(model, call())
    finally:
        await model.aclose()


# --- start-up check ---------------------------------------------------------------------------


async def test_check_warns_about_an_unknown_model(openai_fake: FakeOpenAI) -> None:
    model = make_provider(openai_fake, model="gpt-image-9-imaginary")
    try:
        warning = await model.check()
    finally:
        await model.aclose()

    assert warning is not None and "gpt-image-9-imaginary" in warning
    assert openai_fake.requests[-1].path == "/v1/models/gpt-image-9-imaginary"


async def test_check_accepts_a_known_model(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    assert await provider.check() is None


async def test_check_warns_about_a_shut_down_model(openai_fake: FakeOpenAI) -> None:
    openai_fake.shutdown_dates["gpt-image-1.5"] = "2026-01-01"
    model = make_provider(openai_fake, model="gpt-image-1.5")
    try:
        warning = await model.check()
    finally:
        await model.aclose()

    assert warning is not None and "gpt-image-1.5" in warning and "2026-01-01" in warning


async def test_check_warns_about_a_model_retired_in_the_table(openai_fake: FakeOpenAI) -> None:
    model = make_provider(openai_fake, model="gpt-image-1")
    try:
        warning = await model.check()
    finally:
        await model.aclose()

    assert warning is not None and "gpt-image-1" in warning and "retired" in warning


# --- privacy ----------------------------------------------------------------------------------


async def test_P21_provider_sees_only_pseudonymous_hash(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    # The platform id and the display name exist only in the caller's world; the provider
    # gets a hash of them, and an uploaded file's own name is not passed on either.
    assert PLATFORM_USER_ID not in USER_HASH and DISPLAY_NAME not in USER_HASH
    upload = InputImage(
        picture((120, 120, 0, 255)),
        "image/png",
        filename=f"{DISPLAY_NAME} {PLATFORM_USER_ID}.png",
        width=64,
        height=64,
    )
    await collect(provider, call())
    await collect(provider, call(stream_partials=1))
    await collect(provider, call(inputs=(upload,), mask=InputImage(mask_png(), "image/png")))
    await collect(provider, call(inputs=(upload, upload), stream_partials=1))

    requests = openai_fake.image_requests
    assert len(requests) == 4
    for request in requests:
        assert request.get("user") == USER_HASH
        assert request.get("safety_identifier") == USER_HASH
        seen = [request.path, request.body.decode("latin-1")]
        seen += [f"{k}: {v}" for k, v in request.headers.items()]
        seen += [v for values in request.form.values() for v in values]
        seen += [f"{name} {filename} {ctype}" for name, filename, ctype, _ in request.files]
        for text in seen:
            assert PLATFORM_USER_ID not in text
            assert DISPLAY_NAME not in text
            assert "Ada" not in text and "Lovelace" not in text


async def test_timeout_means_unavailable(openai_fake: FakeOpenAI) -> None:
    openai_fake.latency = 2.0
    model = OpenAIImageModel(
        api_key=API_KEY,
        base_url=openai_fake.base_url,
        model="gpt-image-2",
        max_retries=0,
        timeout=0.2,
    )
    try:
        with pytest.raises(ProviderUnavailable):
            await collect(model, call())
    finally:
        await model.aclose()


async def test_consumer_stopping_early_closes_the_stream(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    openai_fake.stream_interval = 0.05
    events = provider.run(call(stream_partials=3))
    first = await anext(events)
    await events.aclose()  # e.g. the job was cancelled after the first preview

    assert isinstance(first, ModelPartial)
    assert [type(e) for e in await collect(provider, call())] == [ModelImage]


# --- the fake itself (it is reused by other tests) ---------------------------------------------


async def test_fake_moderations_speak_the_wire_format(openai_fake: FakeOpenAI) -> None:
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url=openai_fake.base_url, max_retries=0)
    try:
        flagged = await client.moderations.create(
            model="omni-moderation-latest", input=["a calm lake", "a FORBIDDEN-WORD here"]
        )
        openai_fake.flag_image_category = "violence"
        parts = await client.moderations.create(
            model="omni-moderation-latest",
            input=[
                {"type": "text", "text": "a calm lake"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        )
        openai_fake.fail_moderation_next(503)
        with pytest.raises(openai.InternalServerError):
            await client.moderations.create(model="omni-moderation-latest", input="x")
    finally:
        await client.close()

    assert [r.flagged for r in flagged.results] == [False, True]
    assert flagged.results[1].categories.harassment is True
    assert flagged.results[1].category_applied_input_types.harassment == ["text"]
    (result,) = parts.results
    assert result.flagged and result.categories.violence
    assert result.category_applied_input_types.violence == ["text", "image"]
    assert result.category_applied_input_types.hate == ["text"]  # text-only category


async def test_fake_validates_edits_like_the_real_api(openai_fake: FakeOpenAI) -> None:
    png = picture((1, 2, 3, 255))
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url=openai_fake.base_url, max_retries=0)
    try:
        single = await client.images.edit(
            model="gpt-image-1.5", prompt="x", image=("a.png", png, "image/png")
        )
        with pytest.raises(openai.BadRequestError) as too_many:
            await client.images.edit(
                model="gpt-image-2", prompt="x", image=[("a.png", png, "image/png")] * 17
            )
        with pytest.raises(openai.BadRequestError) as bad_mask:
            await client.images.edit(
                model="gpt-image-2",
                prompt="x",
                image=("a.png", png, "image/png"),
                mask=("m.png", mask_png(size=32), "image/png"),
            )
        with pytest.raises(openai.BadRequestError) as transparent_jpeg:
            await client.images.generate(
                model="gpt-image-2", prompt="x", background="transparent", output_format="jpeg"
            )
    finally:
        await client.close()

    assert single.data and single.data[0].b64_json
    assert [f[0] for f in openai_fake.image_requests[0].files] == ["image"]
    assert (too_many.value.param, bad_mask.value.param) == ("image", "mask")
    assert transparent_jpeg.value.param == "background"
    assert all(r.headers.get("x-request-id") for r in [too_many.value.response])


# --- reading event streams --------------------------------------------------------------------


def sse_bytes(event: str | None, payload: object, *, eol: str = "\n") -> bytes:
    """One server-sent event as the service writes it."""
    lines = [f"event: {event}"] if event else []
    lines.append(f"data: {payload if isinstance(payload, str) else json.dumps(payload)}")
    return (eol.join(lines) + eol + eol).encode()


def parse_all(chunks: Iterable[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        parser.feed(chunk)
        while (event := parser.next_event()) is not None:
            events.append(event)
    parser.finish()
    while (event := parser.next_event()) is not None:
        events.append(event)
    return events


def image_events(prefix: str, image: bytes, *, partials: int) -> list[tuple[str, dict[str, Any]]]:
    b64 = base64.b64encode(image).decode()
    common = {"output_format": "png", "size": "1024x1024", "quality": "medium"}
    events = [
        (
            f"{prefix}.partial_image",
            {"type": f"{prefix}.partial_image", "b64_json": b64, "partial_image_index": i} | common,
        )
        for i in range(partials)
    ]
    events.append(
        (f"{prefix}.completed", {"type": f"{prefix}.completed", "b64_json": b64} | common)
    )
    return events


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_sse_parser_finds_the_same_events_wherever_the_chunks_split(eol: str) -> None:
    events = image_events("image_generation", b"\x89PNG tiny", partials=2)
    stream = b"".join(sse_bytes(name, payload, eol=eol) for name, payload in events)
    expected = [SSEEvent(name, json.dumps(payload).encode()) for name, payload in events]

    assert parse_all([stream]) == expected
    assert parse_all(stream[i : i + 1] for i in range(len(stream))) == expected
    for cut in range(1, len(stream)):
        assert parse_all([stream[:cut], stream[cut:]]) == expected, cut


def test_sse_parser_follows_the_field_rules() -> None:
    stream = (
        b"\xef\xbb\xbf: a comment before anything\n"
        b"retry: 100\nid: 7\n"
        b"event: first\n"
        b"data:no-space\n"
        b"data:  two spaces\n"
        b"data\n"
        b"unknown: ignored\n\n"
        b"event: without data\n\n"
        b"\n\n"
        b": comment\ndata: last\n\n"
        b"event: cut off\ndata: never finished"
    )
    expected = [SSEEvent("first", b"no-space\n two spaces\n"), SSEEvent("", b"last")]

    assert parse_all([stream]) == expected
    assert parse_all(stream[i : i + 1] for i in range(len(stream))) == expected


def test_sse_parser_reads_a_large_event_in_small_chunks() -> None:
    payload = {"type": "image_generation.completed", "b64_json": "A" * 3_000_000}
    stream = sse_bytes("image_generation.completed", payload, eol="\r\n")
    chunks = [stream[i : i + 16_384] for i in range(0, len(stream), 16_384)]

    (event,) = parse_all(chunks)

    assert event.event == "image_generation.completed"
    assert json.loads(event.data) == payload


class ScriptedStream:
    """A loopback server answering every image request with the given bytes, chunk by
    chunk (flushed one at a time, with a short pause, so they reach the client apart)."""

    def __init__(self, chunks: list[bytes], *, hang_up: bool = False) -> None:
        self.chunks = chunks
        self.hang_up = hang_up  # drop the connection after the chunks instead of ending
        self.requests = 0
        self.errors: list[BaseException] = []
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> ScriptedStream:
        app = web.Application()
        app.router.add_post("/v1/images/generations", self._answer)
        app.router.add_post("/v1/images/edits", self._answer)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
        assert self.errors == []

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        try:
            body = await request.json()
            assert body["stream"] is True and body["user"] == USER_HASH
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream; charset=utf-8",
                    "x-request-id": "req_scripted",
                }
            )
            await response.prepare(request)
            for chunk in self.chunks:
                await response.write(chunk)
                await asyncio.sleep(0.002)
            if self.hang_up:
                assert request.transport is not None
                request.transport.abort()
                return response
            await response.write_eof()
            return response
        except ConnectionError:
            raise
        except Exception as exc:
            self.errors.append(exc)
            raise


async def run_scripted(chunks: list[bytes], *, partials: int = 2) -> list[ModelEvent]:
    async with ScriptedStream(chunks) as server:
        model = OpenAIImageModel(
            api_key=API_KEY, base_url=server.base_url, model="gpt-image-2", max_retries=0
        )
        try:
            return await collect(model, call(stream_partials=partials))
        finally:
            await model.aclose()


async def test_stream_with_crlf_and_events_split_across_chunks_is_read() -> None:
    image = picture((200, 100, 0, 255))
    stream = b"".join(
        sse_bytes(name, payload, eol="\r\n")
        for name, payload in image_events("image_generation", image, partials=2)
    )
    # Cut inside "data:", between "\r" and "\n", inside the base64, between the two CRLFs
    # that end an event, and right after one.
    first_end = stream.index(b"\r\n\r\n") + 4
    cuts = sorted(
        {
            3,
            stream.index(b"data:") + 2,
            stream.index(b"\r\n") + 1,
            stream.index(b'"b64_json"') + 40,
            first_end - 2,
            first_end,
            len(stream) - 1,
        }
    )
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]

    events = await run_scripted(chunks)

    assert [type(e) for e in events] == [ModelPartial, ModelPartial, ModelImage]
    assert [e.index for e in events if isinstance(e, ModelPartial)] == [0, 1]
    assert all(e.data == image and e.content_type == "image/png" for e in events)


async def test_final_image_may_arrive_before_every_partial() -> None:
    image = picture((0, 90, 200, 255))
    events = image_events("image_generation", image, partials=1)  # 3 were asked for

    received = await run_scripted([sse_bytes(n, p) for n, p in events], partials=3)

    assert [type(e) for e in received] == [ModelPartial, ModelImage]
    assert received[-1].data == image


async def test_done_marker_ends_the_stream() -> None:
    image = picture((10, 10, 10, 255))
    (completed,) = image_events("image_generation", image, partials=0)
    chunks = [
        sse_bytes(*completed),
        b"data: [DONE]\n\n",
        b"data: {not json, and never read\n\n",
    ]

    received = await run_scripted(chunks)

    assert [type(e) for e in received] == [ModelImage]


async def test_error_event_without_an_error_object_means_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    partial, _ = image_events("image_generation", picture((1, 1, 1, 255)), partials=1)
    error = {"type": "error", "code": "server_error", "message": "The server had an error."}
    received: list[ModelEvent] = []

    async with ScriptedStream([sse_bytes(*partial), sse_bytes("error", error)]) as server:
        model = OpenAIImageModel(api_key=API_KEY, base_url=server.base_url, model="gpt-image-2")
        try:
            with (
                caplog.at_level(logging.WARNING, logger="imagebot.provider"),
                pytest.raises(ProviderUnavailable),
            ):
                async for event in model.run(call(stream_partials=2)):
                    received.append(event)
        finally:
            await model.aclose()

    assert [type(e) for e in received] == [ModelPartial]
    assert any("req_scripted" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "tail",
    [
        b"data: {broken json\n\n",
        b"data: [1, 2]\n\n",
        sse_bytes("image_generation.completed", {"type": "image_generation.completed"}),
        sse_bytes(
            "image_generation.completed",
            {"type": "image_generation.completed", "b64_json": "not base64!"},
        ),
        # the final event cut off by the end of the stream: never used
        sse_bytes(
            "image_generation.completed",
            {"type": "image_generation.completed", "b64_json": base64.b64encode(b"x").decode()},
        )[:-2],
    ],
    ids=["broken-json", "not-an-object", "no-image", "bad-base64", "cut-off"],
)
async def test_malformed_or_unfinished_stream_means_unavailable(tail: bytes) -> None:
    partial, _ = image_events("image_generation", picture((5, 5, 5, 255)), partials=1)

    with pytest.raises(ProviderUnavailable):
        await run_scripted([sse_bytes(*partial), tail])


async def test_connection_lost_midway_through_a_stream_means_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    partial, completed = image_events("image_generation", picture((7, 7, 7, 255)), partials=1)
    cut = sse_bytes(*completed)[:100]
    received: list[ModelEvent] = []

    async with ScriptedStream([sse_bytes(*partial), cut], hang_up=True) as server:
        model = OpenAIImageModel(
            api_key=API_KEY, base_url=server.base_url, model="gpt-image-2", max_retries=0
        )
        try:
            with (
                caplog.at_level(logging.WARNING, logger="imagebot.provider"),
                pytest.raises(ProviderUnavailable),
            ):
                async for event in model.run(call(stream_partials=2)):
                    received.append(event)
        finally:
            await model.aclose()

    assert [type(e) for e in received] == [ModelPartial]
    assert any("request_id=req_scripted" in r.getMessage() for r in caplog.records)


async def test_refusal_before_a_stream_starts_is_a_content_refusal(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    openai_fake.refuse_next(categories=("violence",))

    with pytest.raises(ContentRefused) as caught:
        await collect(provider, call(stream_partials=2))

    assert caught.value.reason == "violence"
    assert len(openai_fake.image_requests) == 1


async def test_streaming_request_is_retried_by_the_sdk(
    openai_fake: FakeOpenAI, provider: OpenAIImageModel
) -> None:
    openai_fake.fail_next(503, headers={"retry-after-ms": "10"})

    events = await collect(provider, call(stream_partials=1))

    assert [type(e) for e in events] == [ModelPartial, ModelImage]
    assert [r.status for r in openai_fake.image_requests] == [503, 200]


async def test_stream_that_stalls_times_out_as_unavailable(
    openai_fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    openai_fake.stream_interval = 2.0  # the headers come at once, the first event never
    model = OpenAIImageModel(
        api_key=API_KEY,
        base_url=openai_fake.base_url,
        model="gpt-image-2",
        max_retries=0,
        timeout=0.3,
    )
    try:
        with (
            caplog.at_level(logging.WARNING, logger="imagebot.provider"),
            pytest.raises(ProviderUnavailable),
        ):
            await collect(model, call(stream_partials=1))
    finally:
        await model.aclose()

    assert any("timed out" in r.getMessage() for r in caplog.records)


# --- resources --------------------------------------------------------------------------------


@pytest.mark.parametrize("partials", [0, 2], ids=["plain", "stream"])
async def test_answer_is_dropped_before_an_image_is_handed_out(
    openai_fake: FakeOpenAI, partials: int
) -> None:
    # ≈2.2 MB images, ≈3 MB of base64 each in the answer: while the caller holds an image
    # (screening it, writing it), neither the answer nor its base64 may still be alive.
    # Counted: memory allocated with the provider module on the stack (the fake server
    # runs in this process too, and its memory is not the provider's).
    openai_fake.image_bytes_factory = realistic_factory
    realistic_png(1024, 1024)  # made (and cached) before measuring
    model = make_provider(openai_fake)
    held: list[int] = []
    try:
        await collect(model, call(stream_partials=partials))  # warm up: imports, connection
        gc.collect()
        tracemalloc.start(100)
        try:
            async for event in model.run(call(stream_partials=partials)):
                gc.collect()
                held.append(provider_memory() - len(event.data))
                del event
        finally:
            tracemalloc.stop()
    finally:
        await model.aclose()

    assert len(held) == 1 + partials
    assert max(held) < 500_000, held  # was ≈3 MB (plain) and ≈3-6 MB (stream)


def provider_memory() -> int:
    """Bytes alive that were allocated with core/providers/openai_images.py on the stack."""
    module = importlib.import_module(OpenAIImageModel.__module__)
    assert module.__file__ is not None
    only = tracemalloc.Filter(True, module.__file__, all_frames=True)
    snapshot = tracemalloc.take_snapshot().filter_traces([only])
    return sum(stat.size for stat in snapshot.statistics("filename"))


async def test_aclose_leaves_no_open_connection_behind(openai_fake: FakeOpenAI) -> None:
    used = make_provider(openai_fake)
    unused = make_provider(openai_fake)
    await collect(used, call())
    await collect(used, call(stream_partials=1))
    await used.aclose()
    await unused.aclose()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del used, unused
        gc.collect()

    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
