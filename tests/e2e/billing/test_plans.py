"""Monthly plans: subscribe, renew, cancel; the plan shown by /balance (P05)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.e2e.billing.conftest import Billing


async def test_a_subscription_created_renewed_twice_and_cancelled(billing: Billing) -> None:
    session = await billing.checkout("plan_basic")
    params = billing.stripe.requests[-1].params
    assert params["mode"] == "subscription"
    assert params["line_items"][0]["price_data"]["recurring"] == {"interval": "month"}
    assert params["subscription_data"]["metadata"]["imagebot_offer"] == "plan_basic"
    assert params["subscription_data"]["metadata"]["imagebot_credits"] == "200"
    assert "payment_intent_data" not in params and "customer_creation" not in params

    assert set(await billing.deliver(*billing.stripe.complete_session(session["id"]))) == {200}
    sub_id = billing.stripe.sessions[session["id"]]["subscription"]
    sub = billing.stripe.subscriptions[sub_id]
    view = await billing.balance()
    assert view.available == 220
    assert view.plan is not None
    assert (view.plan.name, view.plan.credits_per_period, view.plan.status) == (
        "Monthly 200",
        200,
        "active",
    )
    first_end = datetime.fromtimestamp(sub["items"]["data"][0]["current_period_end"], UTC)
    assert view.plan.renews_at == first_end
    assert billing.dms()[-1].startswith("Your plan Monthly 200 is active")

    for month in (1, 2):
        assert set(await billing.deliver(*billing.stripe.renew(sub_id))) == {200}
        view = await billing.balance()
        assert view.available == 220 + 200 * month
        assert view.plan is not None and view.plan.renews_at is not None
        assert view.plan.renews_at > first_end
        assert billing.dms()[-1].startswith("Your plan Monthly 200 renewed")
    assert await billing.ledger_rows("purchase") == 3

    # Cancelled in the portal at the end of the period, then ended.
    await billing.deliver(billing.stripe.cancel(sub_id, at_period_end=True))
    view = await billing.balance()
    assert view.plan is not None and view.plan.cancel_at_period_end
    assert "is cancelled and ends on" in billing.dms()[-1]
    await billing.deliver(billing.stripe.cancel(sub_id))
    view = await billing.balance()
    assert view.plan is None
    assert view.available == 620  # credits stay
    assert billing.dms()[-1].startswith("Your plan Monthly 200 has ended")
    # A late, older update never revives an ended plan.
    renewal_update = next(
        e for e in billing.stripe.events if e["type"] == "customer.subscription.updated"
    )
    await billing.deliver(renewal_update)
    assert (await billing.balance()).plan is None


async def test_invoice_paid_before_the_checkout_event_still_credits_once(billing: Billing) -> None:
    session = await billing.checkout("plan_pro")
    events = billing.stripe.complete_session(session["id"])
    by_type = {e["type"]: e for e in events}
    await billing.deliver(by_type["invoice.paid"])
    assert (await billing.balance()).available == 820
    await billing.deliver(*reversed(events))
    assert (await billing.balance()).available == 820
    assert await billing.ledger_rows("purchase") == 1


async def test_an_invoice_from_before_the_basil_api_finds_its_subscription(
    billing: Billing,
) -> None:
    """Older API versions put ``subscription`` on the invoice instead of ``parent``."""
    session = await billing.checkout("plan_basic")
    events = billing.stripe.complete_session(session["id"])
    invoice = dict(next(e for e in events if e["type"] == "invoice.paid")["data"]["object"])
    details = invoice.pop("parent")["subscription_details"]
    invoice["subscription"] = details["subscription"]
    invoice["subscription_details"] = {"metadata": details["metadata"]}
    legacy = billing.stripe.event("invoice.paid", invoice)
    assert await billing.deliver(legacy) == [200]
    assert (await billing.balance()).available == 220
