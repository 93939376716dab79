"""Buying a pack: the checkout link, the paid webhook, the DM, and spending the credits."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import pytest

from core.errors import InvalidRequest, UserFacingError
from core.types import Delivered
from storage.database import Database
from tests.e2e.billing.conftest import Billing, start_billing
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import actor, make_core, request


async def test_a_pack_is_bought_and_credited(billing: Billing) -> None:
    url = await billing.link("pack_m")
    session = billing.stripe.session_for(url)
    user_id = await billing.core.credits.user_for(actor())
    # What imagebot asked Stripe for.
    params = billing.stripe.requests[-1].params
    assert billing.stripe.requests[-1].headers["Stripe-Version"]
    assert params["mode"] == "payment"
    assert params["client_reference_id"] == str(user_id)
    assert params["line_items"] == [
        {
            "price_data": {
                "currency": "usd",
                "unit_amount": "1299",
                "product_data": {"name": "Creator pack"},
            },
            "quantity": "1",
        }
    ]
    for meta in (params["metadata"], params["payment_intent_data"]["metadata"]):
        assert meta["imagebot_user"] == str(user_id)
        assert meta["imagebot_offer"] == "pack_m"
        assert meta["imagebot_credits"] == "150"
    assert params["customer_creation"] == "always"
    assert params["success_url"] == "https://bot.example.net/stripe/success"
    assert params["cancel_url"] == "https://bot.example.net/stripe/cancel"
    assert abs(int(params["expires_at"]) - (time.time() + 3600)) < 60
    assert session["status"] == "open" and session["amount_total"] == 1299

    statuses = await billing.deliver(*billing.stripe.complete_session(session["id"]))
    assert set(statuses) == {200}
    view = await billing.balance()
    assert view.available == 170
    assert [(line.kind, line.amount) for line in view.recent][:1] == [("purchase", 150)]
    assert billing.dms() == [
        "Payment received: 150 credits added (Creator pack). Your balance is 170."
    ]

    # ... and the credits buy images.
    sub = await billing.core.generation.submit(request())
    await billing.core.worker.run_until_idle()
    assert isinstance(await billing.notes.wait_final(sub.job.id), Delivered)


async def test_return_pages_send_the_user_back_to_the_chat(billing: Billing) -> None:
    for path, words in (
        ("/stripe/success", "payment was received"),
        ("/stripe/cancel", "Nothing was charged"),
        ("/stripe/return", "billing settings"),
    ):
        status, text = await billing.get(path)
        assert status == 200
        assert words in text and "go back to the chat" in text


async def test_a_double_click_makes_one_session(billing: Billing) -> None:
    """Two presses of the same button at the same moment, then a third a bit later."""
    urls = await asyncio.gather(
        billing.link("pack_s", key="msg-42"), billing.link("pack_s", key="msg-42")
    )
    again = await billing.link("pack_s", key="msg-42")
    assert urls[0] == urls[1] == again
    assert len(billing.stripe.sessions) == 1
    creates = [r for r in billing.stripe.requests if r.method == "POST"]
    assert len({r.idempotency_key for r in creates}) == 1
    # Another press (or another offer) is another checkout.
    assert await billing.link("pack_s", key="msg-43") != urls[0]
    assert await billing.link("pack_m", key="msg-42") != urls[0]
    assert len(billing.stripe.sessions) == 3


async def test_the_customer_is_reused_and_the_portal_opens(billing: Billing) -> None:
    with pytest.raises(InvalidRequest):
        await billing.core.billing.portal_link(actor())
    session = await billing.buy("pack_s")
    customer = session["customer"]
    assert customer is not None
    portal = await billing.core.billing.portal_link(actor())
    made = list(billing.stripe.portal_sessions.values())
    assert portal.url == made[0]["url"]
    assert made[0]["customer"] == customer
    assert made[0]["return_url"] == "https://bot.example.net/stripe/return"
    # The next checkout names the same customer instead of making another.
    await billing.link("pack_m")
    params = billing.stripe.requests[-1].params
    assert params["customer"] == customer and "customer_creation" not in params


async def test_a_delayed_payment_credits_only_once_it_clears(billing: Billing) -> None:
    session = await billing.checkout("pack_s")
    await billing.deliver(*billing.stripe.complete_session(session["id"], delayed=True))
    assert (await billing.balance()).available == 20
    assert "being processed" in billing.dms()[-1]
    await billing.deliver(billing.stripe.settle_async(session["id"]))
    assert (await billing.balance()).available == 70
    assert "50 credits added" in billing.dms()[-1]

    failing = await billing.checkout("pack_m")
    await billing.deliver(*billing.stripe.complete_session(failing["id"], delayed=True))
    await billing.deliver(billing.stripe.settle_async(failing["id"], succeeded=False))
    assert (await billing.balance()).available == 70
    assert "did not go through" in billing.dms()[-1]


async def test_stripe_down_at_checkout_is_a_kind_error(
    billing: Billing, caplog: pytest.LogCaptureFixture
) -> None:
    billing.stripe.fail_next(500, message="sk_test_should_not_be_logged")
    with caplog.at_level(logging.INFO), pytest.raises(UserFacingError) as raised:
        await billing.link("pack_s", key="down")
    assert raised.value.code == "payments_unavailable"
    # imagebot's own records (the CLI keeps the stripe library's logger at WARNING).
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("imagebot")]
    assert ours and not any("sk_test" in m for m in ours)
    # The same press works once Stripe is back.
    assert (await billing.link("pack_s", key="down")).startswith(billing.stripe.base_url)


async def test_a_session_from_another_app_is_ignored(billing: Billing) -> None:
    """Events for checkouts imagebot did not make (another product on the same Stripe
    account) are acknowledged and change nothing."""
    session = await billing.checkout("pack_s")
    other = dict(session, id="cs_test_otherapp0001", metadata={}, client_reference_id=None)
    other.update(status="complete", payment_status="paid", payment_intent="pi_otherapp0001")
    event = billing.stripe.event("checkout.session.completed", other)
    assert await billing.deliver(event) == [200]
    assert (await billing.balance()).available == 20
    assert await billing.events_recorded() == 1


async def test_offers_with_the_operators_own_stripe_prices(
    database: Database, tmp_path: Path, stripe_fake: FakeStripe
) -> None:
    pack_price = stripe_fake.add_price(900)
    plan_price = stripe_fake.add_price(1500, recurring=True)
    offers = json.dumps(
        [
            {
                "id": "p",
                "kind": "pack",
                "name": "Pack",
                "credits": 90,
                "price_minor": 900,
                "stripe_price_id": pack_price,
            },
            {
                "id": "m",
                "kind": "plan",
                "name": "Monthly",
                "credits": 300,
                "price_minor": 1500,
                "stripe_price_id": plan_price,
            },
        ]
    )
    harness, runner = await start_billing(database, tmp_path, stripe_fake, offers=offers)
    try:
        pack = await harness.checkout("p")
        assert stripe_fake.requests[-1].params["line_items"] == [
            {"price": pack_price, "quantity": "1"}
        ]
        await harness.deliver(*stripe_fake.complete_session(pack["id"]))
        plan = await harness.checkout("m")
        await harness.deliver(*stripe_fake.complete_session(plan["id"]))
        assert (await harness.balance()).available == 20 + 90 + 300
    finally:
        await harness.sender.close()
        await runner.cleanup()
        await harness.core.aclose()


async def test_without_a_stripe_key_billing_is_off(database: Database, tmp_path: Path) -> None:
    core, _ = await make_core(database, tmp_path)
    try:
        assert not core.billing.enabled
        with pytest.raises(UserFacingError) as raised:
            await core.billing.checkout_link(actor(), "pack_s", request_key="x")
        assert raised.value.code == "billing_disabled"
    finally:
        await core.aclose()
