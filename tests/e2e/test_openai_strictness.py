"""The OpenAI fake refuses fields an endpoint or model does not take, with the API's 400
body, through the real SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
import pytest_asyncio

from tests.fakes.openai_server import FakeOpenAI


@pytest_asyncio.fixture
async def client(openai_fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(api_key="sk-test", base_url=openai_fake.base_url, max_retries=0)
    yield sdk
    await sdk.close()


async def refused(call: Any) -> dict[str, Any]:
    with pytest.raises(openai.BadRequestError) as caught:
        await call
    assert isinstance(caught.value.body, dict)
    return dict(caught.value.body)


async def test_generations_refuse_fields_of_edits_and_unknown_fields(
    client: openai.AsyncOpenAI,
) -> None:
    for name, value in (("input_fidelity", "high"), ("mask", "x"), ("colour", "red")):
        body = await refused(
            client.images.generate(model="gpt-image-1.5", prompt="a fox", extra_body={name: value})
        )
        assert body == {
            "message": f"Unknown parameter: '{name}'.",
            "type": "invalid_request_error",
            "param": name,
            "code": "unknown_parameter",
        }


async def test_streaming_is_refused_for_models_that_do_not_stream(
    client: openai.AsyncOpenAI, openai_fake: FakeOpenAI
) -> None:
    openai_fake.known_models |= {"dall-e-2", "dall-e-3"}
    body = await refused(
        client.images.generate(model="dall-e-3", prompt="a fox", extra_body={"stream": True})
    )
    assert (body["param"], body["code"]) == ("stream", "unsupported_parameter")
    body = await refused(
        client.images.generate(model="dall-e-2", prompt="a fox", extra_body={"partial_images": 1})
    )
    assert (body["param"], body["code"]) == ("partial_images", "unsupported_parameter")


async def test_moderations_refuse_unknown_fields(client: openai.AsyncOpenAI) -> None:
    body = await refused(client.moderations.create(input="hello", extra_body={"threshold": 1}))
    assert body["code"] == "unknown_parameter" and body["param"] == "threshold"
