"""One Stripe event -> one core change, applied once per event id.

Used by the webhook and by ``imagebot stripe reconcile`` alike. The few look-ups an
event may need (an invoice's payments, a subscription's metadata, a dispute's charge)
happen before the transaction; the change itself is one transaction in core.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import stripe

from core.billing.purchases import BillingChange, BillingOutcome, PurchaseService
from payments.stripe.translate import (
    CHECKOUT_EVENTS,
    DISPUTE_EVENTS,
    HANDLED_EVENTS,
    MAX_ID_LENGTH,
    SUBSCRIPTION_EVENTS,
    MalformedEvent,
    Obj,
    checkout_change,
    dispute_change,
    invoice_change,
    invoice_payment_intents,
    invoice_subscription,
    object_id,
    ours,
    refund_change,
    subscription_change,
    timestamp,
)

log = logging.getLogger("imagebot.stripe")


class StripeEventProcessor:
    """Translates Stripe events into core's billing changes and applies them."""

    def __init__(self, client: stripe.StripeClient, purchases: PurchaseService) -> None:
        self.client = client
        self.purchases = purchases

    async def process(self, event: Obj) -> BillingOutcome:
        """Apply one event (a replay of a processed event id changes nothing).

        Raises when Stripe or the database fails, so the webhook answers 500 and Stripe
        delivers the event again.
        """
        event_id = str(event.get("id") or "")
        event_type = str(event.get("type") or "")
        if not event_id.startswith("evt_") or len(event_id) > MAX_ID_LENGTH:
            raise MalformedEvent("not a Stripe event id")
        if await self.purchases.seen(event_id):
            return BillingOutcome(duplicate=True)
        change: BillingChange | None = None
        if event_type in HANDLED_EVENTS:
            data = event.get("data")
            obj = data.get("object") if isinstance(data, Mapping) else None
            at = timestamp(event.get("created")) or datetime.now(UTC)
            if isinstance(obj, Mapping):
                change = await self.change_for(event_type, obj, at)
            if change is None:
                log.info("stripe event %s (%s) concerns nothing of ours", event_id, event_type)
        else:
            log.info("stripe event %s of unhandled type %s ignored", event_id, event_type)
        outcome = await self.purchases.apply(change, event_id=event_id, event_type=event_type)
        if outcome.applied:
            log.info("stripe event %s (%s) applied", event_id, event_type)
        return outcome

    async def change_for(self, event_type: str, obj: Obj, at: datetime) -> BillingChange | None:
        """The core change an event of ``event_type`` about ``obj`` stands for."""
        if event_type in CHECKOUT_EVENTS:
            return checkout_change(obj, event_type=event_type, at=at)
        if event_type == "invoice.paid":
            return await self.invoice(obj, at=at)
        if event_type in SUBSCRIPTION_EVENTS:
            return subscription_change(obj, event_type=event_type, at=at)
        if event_type == "charge.refunded":
            return refund_change(obj, at=at)
        if event_type in DISPUTE_EVENTS:
            payment_intent = None
            if object_id(obj.get("payment_intent")) is None and object_id(obj.get("charge")):
                charge = await self.client.v1.charges.retrieve_async(
                    str(object_id(obj.get("charge")))
                )
                payment_intent = object_id(plain(charge).get("payment_intent"))
            return dispute_change(obj, at=at, payment_intent=payment_intent)
        return None

    async def invoice(self, invoice: Obj, *, at: datetime) -> BillingChange | None:
        """A paid invoice, with its payment intents (asked from Stripe, which leaves them
        off invoices by default) and, when the invoice carries none, its subscription's
        metadata."""
        subscription_id, meta = invoice_subscription(invoice)
        invoice_id = object_id(invoice.get("id"))
        if subscription_id is None or invoice_id is None:
            return None
        if invoice.get("status") not in (None, "paid"):
            return None
        intents = invoice_payment_intents(invoice)
        if intents is None:
            listing = await self.client.v1.invoice_payments.list_async(
                params={"invoice": invoice_id, "limit": 10}
            )
            intents = invoice_payment_intents({"payments": {"data": plain(listing.data)}})
        metadata: Obj | None = None
        if ours(meta) == (None, None):
            sub = await self.client.v1.subscriptions.retrieve_async(subscription_id)
            metadata = plain(sub).get("metadata") or {}
        return invoice_change(invoice, at=at, payment_intents=intents or (), metadata=metadata)


def plain(value: Any) -> Any:
    """A StripeObject (or a list of them) as plain dicts."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value
