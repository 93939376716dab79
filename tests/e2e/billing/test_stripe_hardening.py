"""Stripe edge cases found by outside testing (issue 18): signed but permanently malformed
events, time stamps from the future, checkout expiries at the edges of Stripe's window, and
the API version pinned where the client is made (P20)."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime, timedelta

import pytest
import stripe

from bot.metrics import PrometheusMetrics
from core.clock import ManualClock
from payments.stripe.gateway import STRIPE_API_VERSION
from storage.database import Database
from tests.e2e.billing.conftest import PRICED, Billing, start_billing
from tests.e2e.billing.test_metrics import values
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import actor


async def _paid(billing: Billing) -> list[dict]:
    session = await billing.checkout("pack_m")
    return billing.stripe.complete_session(session["id"])


def _malformed_count(billing: Billing) -> float:
    metrics = billing.core.metrics
    assert isinstance(metrics, PrometheusMetrics)
    found = values(metrics.render().decode(), "imagebot_webhook_events_total")
    return sum(v for k, v in found.items() if ("outcome", "malformed") in k)


async def test_P20_a_signed_event_whose_id_is_not_stripes_answers_400_and_is_counted(
    billing: Billing,
) -> None:
    completed = copy.deepcopy((await _paid(billing))[0])
    completed["id"] = "not_an_event_id"
    status, _ = await billing.sender.send(completed)
    assert status == 400  # a retry could never help: not a 500
    assert _malformed_count(billing) == 1
    assert (await billing.balance()).available == 20
    assert await billing.events_recorded() == 0


async def test_P06_a_signed_refund_of_ten_to_the_thirty_answers_400_and_moves_nothing(
    billing: Billing,
) -> None:
    events = await _paid(billing)
    await billing.deliver(*events)
    assert (await billing.balance()).available == 170
    session = billing.stripe.sessions[events[0]["data"]["object"]["id"]]
    refund = copy.deepcopy(billing.stripe.refund(session["payment_intent"], 100))
    refund["data"]["object"]["amount_refunded"] = 10**30
    status, _ = await billing.sender.send(refund)
    assert status == 400
    assert _malformed_count(billing) == 1
    assert (await billing.balance()).available == 170
    # An event with a time stamp out of any range is malformed too, not a crash.
    odd = copy.deepcopy(events[0])
    odd["id"] = "evt_odd_created"
    odd["created"] = 10**30
    status, _ = await billing.sender.send(odd)
    assert status == 400
    assert _malformed_count(billing) == 2


async def test_P20_a_validly_signed_time_stamp_an_hour_ahead_is_refused(billing: Billing) -> None:
    completed = (await _paid(billing))[0]
    status, _ = await billing.sender.send(completed, timestamp=int(time.time()) + 3600)
    assert status == 400
    status, _ = await billing.sender.send(completed, timestamp=int(time.time()) + 600)
    assert status == 400
    assert (await billing.balance()).available == 20 and await billing.events_recorded() == 0
    # Within the tolerance ahead (clocks a little apart) it passes.
    status, _ = await billing.sender.send(completed, timestamp=int(time.time()) + 60)
    assert status == 200
    assert (await billing.balance()).available == 170


@pytest.mark.parametrize("minutes", [30, 1440])
async def test_P05_checkout_expiry_always_lands_inside_stripes_window(
    database: Database, tmp_path, stripe_fake: FakeStripe, minutes: int
) -> None:
    harness, runner = await start_billing(
        database, tmp_path, stripe_fake, stripe_checkout_expiry_minutes=minutes, **PRICED
    )
    try:
        await harness.core.users.register(actor())
        session = await harness.checkout("pack_s")
        sent = int(session["expires_at"]) - int(session["created"])
        assert 31 * 60 <= sent <= 24 * 3600 - 60
    finally:
        await harness.sender.close()
        await runner.cleanup()
        await harness.core.aclose()


async def test_P05_a_checkout_ticket_is_at_least_31_minutes_ahead_whatever_the_setting(
    database: Database, tmp_path
) -> None:
    from tests.helpers import make_core

    clock = ManualClock(datetime(2026, 12, 6, 12, 0, 0, 999_999, tzinfo=UTC))
    core, _ = await make_core(database, tmp_path, clock=clock)
    try:
        purchases = core.billing.purchases
        assert purchases is not None
        user = (await core.users.register(actor())).id
        offer = core.billing.offer("pack_s")
        for asked, low, high in (
            (timedelta(minutes=30), timedelta(minutes=31), timedelta(minutes=32)),
            (timedelta(hours=24), timedelta(hours=23), timedelta(hours=24) - timedelta(seconds=30)),
        ):
            ticket = await purchases.begin_checkout(
                user, offer, request_key=f"k{asked}", lifetime=asked
            )
            assert low <= ticket.expires_at - clock.now() <= high
    finally:
        await core.aclose()


async def test_P20_the_stripe_api_version_is_pinned_where_the_client_is_made(
    database: Database, tmp_path, stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stripe.api_version == STRIPE_API_VERSION
    # The client names the version itself: neither the library's global nor the
    # client's built-in default (which moves with library upgrades) decides it.
    from stripe._api_version import _ApiVersion

    monkeypatch.setattr(stripe, "api_version", "2020-08-27")
    monkeypatch.setattr(_ApiVersion, "CURRENT", "2020-08-27")
    harness, runner = await start_billing(database, tmp_path, stripe_fake, **PRICED)
    try:
        await harness.core.users.register(actor())
        await harness.checkout("pack_s")
    finally:
        await harness.sender.close()
        await runner.cleanup()
        await harness.core.aclose()
    posts = [r for r in stripe_fake.requests if r.method == "POST"]
    assert posts and all(r.headers.get("Stripe-Version") == STRIPE_API_VERSION for r in posts)
