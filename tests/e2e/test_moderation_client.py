"""OpenAIModerationScreener against the loopback fake, through the real ``openai`` SDK.

The screener builds the ``POST /v1/moderations`` body itself (so a multi-megabyte image is
not serialised by ``json.dumps``); these tests hold it to the wire format the SDK's own
``moderations.create`` speaks, byte for byte.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
import pytest_asyncio
from PIL import Image

from core.safety.moderation import OpenAIModerationScreener, request_body
from core.safety.screening import BlocklistScreener
from core.types import InputImage
from tests.fakes.openai_server import FakeOpenAI

API_KEY = "sk-test-moderation-0123456789"
MODEL = "omni-moderation-latest"


@pytest_asyncio.fixture
async def screener(openai_fake: FakeOpenAI) -> AsyncIterator[OpenAIModerationScreener]:
    screener = make_screener(openai_fake)
    yield screener
    await screener.aclose()


def make_screener(fake: FakeOpenAI, **changes: Any) -> OpenAIModerationScreener:
    values: dict[str, Any] = {"api_key": API_KEY, "base_url": fake.base_url, "max_retries": 0}
    values.update(changes)
    return OpenAIModerationScreener(**values)


def png(color: tuple[int, int, int], size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, "PNG")
    return out.getvalue()


def data_url(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


# --- the request body -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", [None, "a calm lake", 'quotes " and \\ backslashes, ünïcødé, emoji 🌊, \n newlines']
)
@pytest.mark.parametrize("count", [0, 1, 3])
def test_request_body_is_what_the_sdk_would_serialise(text: str | None, count: int) -> None:
    images = [(png((i * 40, 10, 10)), "image/png" if i % 2 else "image/jpeg") for i in range(count)]
    parts: list[dict[str, object]] = [] if text is None else [{"type": "text", "text": text}]
    parts += [
        {"type": "image_url", "image_url": {"url": data_url(data, ctype)}} for data, ctype in images
    ]
    expected = {"model": MODEL, "input": parts}

    body = request_body(MODEL, text, images)

    assert json.loads(body) == expected
    # The SDK's serialisation (openai._utils._json.openapi_dumps): compact, UTF-8.
    assert body == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()


async def test_screener_sends_the_same_bytes_as_moderations_create(
    openai_fake: FakeOpenAI, screener: OpenAIModerationScreener
) -> None:
    prompt = "a lighthouse at dusk — “watercolor”"
    first, second = png((200, 30, 30)), png((30, 30, 200))
    inputs = (InputImage(first, "image/png"), InputImage(second, "image/jpeg"))
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url=openai_fake.base_url, max_retries=0)
    try:
        await client.moderations.create(
            model=MODEL,
            input=[
                {"type": "text", "text": prompt},
                {"type": "image_url", "image_url": {"url": data_url(first, "image/png")}},
                {"type": "image_url", "image_url": {"url": data_url(second, "image/jpeg")}},
            ],
        )
        await client.moderations.create(
            model=MODEL,
            input=[{"type": "image_url", "image_url": {"url": data_url(first, "image/png")}}],
        )
    finally:
        await client.close()

    assert (await screener.screen_input(prompt, inputs)).allowed
    assert (await screener.screen_output(first, "image/png")).allowed

    sdk_input, sdk_output, ours_input, ours_output = openai_fake.moderation_requests
    assert ours_input.body == sdk_input.body
    assert ours_output.body == sdk_output.body
    for ours, sdk in ((ours_input, sdk_input), (ours_output, sdk_output)):
        assert ours.path == sdk.path == "/v1/moderations"
        assert ours.status == sdk.status == 200
        for header in ("Content-Type", "Authorization", "Accept"):
            assert ours.headers[header] == sdk.headers[header], header
        assert ours.headers["Content-Length"] == str(len(ours.body))


async def test_prompt_without_images_is_one_text_part(
    openai_fake: FakeOpenAI, screener: OpenAIModerationScreener
) -> None:
    await screener.screen_input("a calm lake", ())

    (request,) = openai_fake.moderation_requests
    assert request.json == {"model": MODEL, "input": [{"type": "text", "text": "a calm lake"}]}


# --- verdicts ---------------------------------------------------------------------------------


async def test_flagged_prompt_is_refused_in_plain_words(
    openai_fake: FakeOpenAI, screener: OpenAIModerationScreener
) -> None:
    openai_fake.flag_category = "violence/graphic"

    verdict = await screener.screen_input("a forbidden-word scene", ())

    assert not verdict.allowed
    assert verdict.reason == "it looks like graphic violence"
    assert verdict.categories == ("violence/graphic",)


async def test_flagged_output_image_is_refused(
    openai_fake: FakeOpenAI, screener: OpenAIModerationScreener
) -> None:
    openai_fake.flag_image_category = "sexual"
    image = png((1, 2, 3), size=256)

    verdict = await screener.screen_output(image, "image/png")

    assert not verdict.allowed and verdict.categories == ("sexual",)
    (request,) = openai_fake.moderation_requests
    assert request.json is not None
    (part,) = request.json["input"]
    assert part["type"] == "image_url"
    assert base64.b64decode(part["image_url"]["url"].removeprefix("data:image/png;base64,")) == (
        image
    )


async def test_thresholds_flag_below_the_endpoint_verdict(openai_fake: FakeOpenAI) -> None:
    strict = make_screener(openai_fake, thresholds={"hate": 0.00001})
    try:
        verdict = await strict.screen_input("a calm lake", ())
    finally:
        await strict.aclose()

    assert not verdict.allowed and verdict.categories == ("hate",)


async def test_outputs_are_not_sent_when_output_screening_is_off(
    openai_fake: FakeOpenAI,
) -> None:
    off = make_screener(openai_fake, screen_outputs=False)
    try:
        assert (await off.screen_output(png((0, 0, 0)), "image/png")).allowed
    finally:
        await off.aclose()

    assert openai_fake.moderation_requests == []


async def test_blocklist_answers_before_the_endpoint(openai_fake: FakeOpenAI) -> None:
    blocked = make_screener(openai_fake, blocklist=BlocklistScreener(["lighthouse"]))
    try:
        verdict = await blocked.screen_input("a lighthouse", ())
    finally:
        await blocked.aclose()

    assert not verdict.allowed
    assert openai_fake.moderation_requests == []


# --- outages ----------------------------------------------------------------------------------


async def test_outage_is_retried_by_the_sdk(openai_fake: FakeOpenAI) -> None:
    openai_fake.fail_moderation_next(503, headers={"retry-after-ms": "10"})
    retrying = make_screener(openai_fake, max_retries=1)
    try:
        verdict = await retrying.screen_output(png((9, 9, 9)), "image/png")
    finally:
        await retrying.aclose()

    assert verdict.allowed
    attempts = openai_fake.moderation_requests
    assert [r.status for r in attempts] == [503, 200]
    assert attempts[0].body == attempts[1].body  # the same bytes, sent again
    assert [r.headers["x-stainless-retry-count"] for r in attempts] == ["0", "1"]


async def test_outage_fails_closed_by_default(
    openai_fake: FakeOpenAI, screener: OpenAIModerationScreener, caplog: pytest.LogCaptureFixture
) -> None:
    openai_fake.fail_moderation_next(500)

    with caplog.at_level(logging.WARNING, logger="imagebot.moderation"):
        verdict = await screener.screen_output(png((9, 9, 9)), "image/png")

    assert not verdict.allowed and verdict.category == "unavailable"
    assert any("fail_closed" in r.getMessage() for r in caplog.records)


async def test_outage_fails_open_when_chosen(openai_fake: FakeOpenAI) -> None:
    openai_fake.fail_moderation_next(429, headers={"retry-after-ms": "10"})
    lenient = make_screener(openai_fake, fail_open=True)
    try:
        verdict = await lenient.screen_input("a calm lake", ())
    finally:
        await lenient.aclose()

    assert verdict.allowed and verdict.degraded


async def test_unreachable_endpoint_fails_closed() -> None:
    fake = FakeOpenAI()
    await fake.start()
    base_url = fake.base_url
    await fake.stop()  # nothing listens there any more
    screener = OpenAIModerationScreener(api_key=API_KEY, base_url=base_url, max_retries=0)
    try:
        verdict = await screener.screen_input("a calm lake", ())
    finally:
        await screener.aclose()

    assert not verdict.allowed and verdict.category == "unavailable"
