"""The webhook endpoint: signatures, time stamps, replays, order, failures (P20)."""

from __future__ import annotations

import json
import logging
import time

import pytest
from sqlalchemy import select

from core.billing.ledger import CreditLedger
from storage.billing.models import BillingPurchase, StripeEvent
from tests.e2e.billing.conftest import Billing
from tests.fakes.stripe_server import WEBHOOK_SECRET, WebhookSender, sign


async def _paid_events(billing: Billing, offer: str = "pack_m") -> list[dict]:
    session = await billing.checkout(offer)
    return billing.stripe.complete_session(session["id"])


async def test_P20_forged_unsigned_or_tampered_webhooks_change_nothing(billing: Billing) -> None:
    completed = (await _paid_events(billing))[0]
    body = WebhookSender.body(completed)
    good = sign(body, WEBHOOK_SECRET)
    attempts = [
        {"secret": "whsec_notTheRealOne123456"},  # forged: another secret
        {"signature": ""},  # unsigned
        {"signature": "t=abc,v1=zzz"},  # garbage
        {"signature": f"t={int(time.time())}"},  # no v1
        {"signature": good.replace("v1=", "v0=")},  # only the old scheme
    ]
    for kwargs in attempts:
        status, answer = await billing.sender.send(completed, **kwargs)
        assert status == 400, kwargs
        assert "error" in answer
    # The body changed after signing (credits raised): the signature no longer matches.
    tampered = body.replace('"paid"', '"paid" ', 1).replace("1299", "9999")
    status, _ = await billing.sender.send(tampered, signature=good)
    assert status == 400
    # Not JSON at all, correctly signed by someone with the secret: still refused, 400.
    status, _ = await billing.sender.send("not json", signature=sign("not json", WEBHOOK_SECRET))
    assert status == 400
    assert (await billing.balance()).available == 20
    assert await billing.events_recorded() == 0
    assert billing.dms() == []
    # The genuine delivery still works afterwards.
    assert await billing.deliver(completed) == [200]
    assert (await billing.balance()).available == 170


async def test_P20_a_ten_minute_old_time_stamp_is_refused(billing: Billing) -> None:
    completed = (await _paid_events(billing))[0]
    status, _ = await billing.sender.send(completed, timestamp=int(time.time()) - 600)
    assert status == 400
    assert (await billing.balance()).available == 20 and await billing.events_recorded() == 0
    # Within the 300 s tolerance it passes (Stripe retries re-sign with a fresh time stamp).
    status, _ = await billing.sender.send(completed, timestamp=int(time.time()) - 240)
    assert status == 200
    assert (await billing.balance()).available == 170


async def test_P20_the_same_event_three_times_changes_nothing_after_the_first(
    billing: Billing,
) -> None:
    completed = (await _paid_events(billing))[0]
    answers = [await billing.sender.send(completed) for _ in range(3)]
    await billing.gateway.drain()
    assert [a[0] for a in answers] == [200, 200, 200]
    assert [a[1]["duplicate"] for a in answers] == [False, True, True]
    assert (await billing.balance()).available == 170
    assert await billing.ledger_rows("purchase") == 1
    assert await billing.count(BillingPurchase.id) == 1
    assert len(billing.dms()) == 1


async def test_a_secret_rotation_signature_with_two_v1_values_passes(billing: Billing) -> None:
    completed = (await _paid_events(billing))[0]
    body = WebhookSender.body(completed)
    t = int(time.time())
    old = sign(body, "whsec_previousSecret0001", t).split(",")[1]
    header = f"{sign(body, WEBHOOK_SECRET, t)},{old}"
    status, _ = await billing.sender.send(body, signature=header)
    assert status == 200


async def test_an_unknown_event_type_is_acknowledged_logged_and_ignored(
    billing: Billing, caplog: pytest.LogCaptureFixture
) -> None:
    customer = {"id": "cus_unknown01", "object": "customer", "email": "someone@example.org"}
    event = billing.stripe.event("customer.created", customer)
    with caplog.at_level(logging.INFO, logger="imagebot"):
        assert await billing.deliver(event) == [200]
    assert (await billing.balance()).available == 20
    assert f"{event['id']} of unhandled type customer.created ignored" in caplog.text
    assert "someone@example.org" not in caplog.text
    async with billing.db.engine.connect() as conn:
        rows = (await conn.execute(select(StripeEvent.event_type))).scalars().all()
    assert rows == ["customer.created"]


async def test_a_refund_before_its_completion_still_ends_right(billing: Billing) -> None:
    """Stripe does not promise order: the refund of half the payment arrives first."""
    session = await billing.checkout("pack_m")
    completed, *rest = billing.stripe.complete_session(session["id"])
    refund = billing.stripe.refund(billing.stripe.sessions[session["id"]]["payment_intent"], 650)
    assert await billing.deliver(refund) == [200]
    assert (await billing.balance()).available == 20  # nothing to take from yet
    assert await billing.deliver(completed, *rest) == [200] * (1 + len(rest))
    view = await billing.balance()
    assert view.available == 20 + 150 - 76  # 650/1299 of 150 credits, rounded up
    kinds = [(line.kind, line.amount) for line in view.recent]
    assert ("purchase", 150) in kinds and ("refund", -76) in kinds
    assert "76 credits were taken back" in billing.dms()[-1]
    # The rest of the refund, then every event again: still right.
    rest_refund = billing.stripe.refund(billing.stripe.sessions[session["id"]]["payment_intent"])
    await billing.deliver(rest_refund, refund, completed, rest_refund)
    assert (await billing.balance()).available == 20


async def test_a_failure_while_processing_answers_500_and_the_retry_applies_it(
    billing: Billing, monkeypatch: pytest.MonkeyPatch
) -> None:
    completed = (await _paid_events(billing))[0]
    original = CreditLedger.grant
    calls = {"n": 0}

    async def flaky(self, uow, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database went away mid-transaction")
        return await original(self, uow, *args, **kwargs)

    monkeypatch.setattr(CreditLedger, "grant", flaky)
    status, _ = await billing.sender.send(completed)
    assert status == 500
    # Nothing half-applied: no event id, no purchase row, no credits.
    assert await billing.events_recorded() == 0
    assert await billing.count(BillingPurchase.id) == 0
    assert (await billing.balance()).available == 20
    assert await billing.deliver(completed) == [200]
    assert (await billing.balance()).available == 170


async def test_a_stripe_lookup_failure_answers_500_and_the_retry_applies_it(
    billing: Billing,
) -> None:
    """invoice.paid asks Stripe for the invoice's payments; if Stripe fails, so do we."""
    session = await billing.checkout("plan_basic")
    events = billing.stripe.complete_session(session["id"])
    invoice_paid = next(e for e in events if e["type"] == "invoice.paid")
    billing.stripe.fail_next(500, path="/v1/invoice_payments")
    status, _ = await billing.sender.send(invoice_paid)
    assert status == 500
    assert (await billing.balance()).available == 20
    assert await billing.deliver(invoice_paid) == [200]
    assert (await billing.balance()).available == 220


async def test_oversized_and_odd_bodies_are_refused(billing: Billing) -> None:
    huge = json.dumps({"id": "evt_x", "object": "event", "pad": "x" * 3_000_000})
    status, _ = await billing.sender.send(huge)
    assert status in (400, 413)
    status, _ = await billing.sender.send(b"\xff\xfe not utf-8", signature="t=1,v1=00")
    assert status == 400
    signed_list = "[1, 2, 3]"
    status, _ = await billing.sender.send(signed_list)
    assert status == 400
    assert await billing.events_recorded() == 0
