"""The Stripe fake refuses what Stripe refuses: unknown parameters, values outside an
enum, and a Checkout Session that would expire sooner than 30 minutes after Stripe
creates it (measured on Stripe's clock when the request arrives)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import stripe

from core.errors import UserFacingError
from storage.database import Database
from tests.e2e.billing.conftest import PRICED, start_billing
from tests.fakes.stripe_server import API_KEY, FakeStripe
from tests.helpers import actor

ITEM = {
    "price_data": {"currency": "eur", "unit_amount": 500, "product_data": {"name": "Pack"}},
    "quantity": 1,
}


@pytest_asyncio.fixture
async def client(stripe_fake: FakeStripe) -> AsyncIterator[stripe.StripeClient]:
    http = stripe.AIOHTTPClient()
    yield stripe.StripeClient(
        API_KEY,
        base_addresses={"api": stripe_fake.base_url},
        http_client=http,
        max_network_retries=0,
    )
    await http.close_async()


async def create(client: stripe.StripeClient, **params: Any) -> stripe.checkout.Session:
    body = {"mode": "payment", "line_items": [ITEM], "success_url": "https://x.test/ok"}
    return await client.v1.checkout.sessions.create_async(params={**body, **params})  # type: ignore[arg-type]


async def refusal(client: stripe.StripeClient, **params: Any) -> dict[str, Any]:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await create(client, **params)
    assert caught.value.http_status == 400
    body = caught.value.json_body
    assert body is not None
    return dict(body["error"])


async def test_unknown_and_misspelled_parameters_are_refused(
    client: stripe.StripeClient,
) -> None:
    assert await refusal(client, cancel_ur="https://x.test/no") == {
        "type": "invalid_request_error",
        "message": "Received unknown parameter: cancel_ur",
        "param": "cancel_ur",
        "code": "parameter_unknown",
    }
    item = {**ITEM, "price_data": {**ITEM["price_data"], "unit_amont": 5}}  # type: ignore[dict-item]
    error = await refusal(client, line_items=[item])
    assert error["param"] == "line_items[0][price_data][unit_amont]"
    assert error["code"] == "parameter_unknown"
    # An option of the client is not a parameter of the request.
    assert (await create(client, metadata={"anything": "goes"})).id.startswith("cs_test_")


async def test_values_outside_an_enum_are_refused(client: stripe.StripeClient) -> None:
    assert await refusal(client, mode="paymnet") == {
        "type": "invalid_request_error",
        "message": "Invalid mode: must be one of payment, setup, or subscription",
        "param": "mode",
    }
    error = await refusal(client, customer_creation="sometimes")
    assert error["param"] == "customer_creation"
    assert error["message"] == "Invalid customer_creation: must be one of always or if_required"


async def test_expiry_is_measured_on_stripes_clock_at_creation(
    client: stripe.StripeClient, stripe_fake: FakeStripe
) -> None:
    now = stripe_fake.now()
    error = await refusal(client, expires_at=now + 30 * 60 - 1)  # 29 min 59 s
    assert error["param"] == "expires_at"
    assert "at least 30 minutes" in error["message"]
    stripe_fake.clock_offset = -5  # fix "now" for the next request, with room to spare
    assert (await create(client, expires_at=stripe_fake.now() + 30 * 60)).id
    error = await refusal(client, expires_at=stripe_fake.now() + 24 * 3600 + 30)
    assert "less than 24 hours" in error["message"]


async def test_the_shortest_allowed_checkout_lifetime_survives_a_second_of_latency(
    database: Database, tmp_path: Path, stripe_fake: FakeStripe
) -> None:
    billing, runner = await start_billing(
        database, tmp_path, stripe_fake, stripe_checkout_expiry_minutes=30, **PRICED
    )
    try:
        await billing.core.users.register(actor())
        stripe_fake.clock_offset = 1  # the request reaches Stripe a second after
        try:
            url = await billing.link("pack_m")
        except UserFacingError as exc:
            pytest.fail(f"checkout refused: {exc}")
        assert stripe_fake.session_for(url)["expires_at"] >= stripe_fake.now() + 30 * 60 - 1
    finally:
        await billing.sender.close()
        await runner.cleanup()
        await billing.core.aclose()
