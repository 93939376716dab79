"""Stripe objects (plain dicts, as in webhook bodies and API answers) -> core's changes.

Pure functions: nothing here calls Stripe or the database. They read ids, amounts,
currency, states and imagebot's own metadata, and ignore everything else on the object
(customer details, card details, addresses), so none of it can reach storage (P04).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from core.billing.purchases import (
    ChargeRefunded,
    CheckoutPaid,
    DisputeChanged,
    InvoicePaid,
    SubscriptionChanged,
)

META_REF = "imagebot_checkout"
"""Metadata key: the checkout row's reference (a hash; names the buyer in our tables)."""
META_USER = "imagebot_user"
META_OFFER = "imagebot_offer"
META_CREDITS = "imagebot_credits"

CHECKOUT_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
)
SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
DISPUTE_EVENTS = ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed")
HANDLED_EVENTS = (
    *CHECKOUT_EVENTS,
    "invoice.paid",
    *SUBSCRIPTION_EVENTS,
    "charge.refunded",
    *DISPUTE_EVENTS,
)

Obj = Mapping[str, Any]

MAX_AMOUNT = 10**15
"""No Stripe amount comes near this (Stripe caps a charge at eight digits of minor units);
anything above it is a malformed event, not money."""
MAX_ID_LENGTH = 255
"""Stripe documents object ids as at most 255 characters."""


class MalformedEvent(ValueError):
    """A validly signed event that can never be applied, however often it is retried
    (an id that is not Stripe's, an amount out of any range): answered 400 and counted."""


def object_id(value: Any) -> str | None:
    """The id of an expandable field: a plain id, or an expanded object's ``id``."""
    if isinstance(value, Mapping):
        value = value.get("id")
    if not isinstance(value, str) or not value:
        return None
    if len(value) > MAX_ID_LENGTH:
        raise MalformedEvent("an object id longer than Stripe's")
    return value


def timestamp(value: Any) -> datetime | None:
    """Unix seconds as an aware UTC datetime."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise MalformedEvent("a time stamp out of range") from None
    return None


def ours(metadata: Any, client_reference_id: Any = None) -> tuple[str | None, int | None]:
    """imagebot's checkout reference and claimed user id from metadata, if any."""
    meta = metadata if isinstance(metadata, Mapping) else {}
    ref = meta.get(META_REF)
    ref = ref if isinstance(ref, str) and 0 < len(ref) <= 64 else None
    claimed = meta.get(META_USER, client_reference_id)
    user = (
        int(claimed)
        if isinstance(claimed, str)
        and claimed.isascii()
        and claimed.isdigit()
        and len(claimed) < 19
        else None
    )
    return ref, user


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        return 0
    if not -MAX_AMOUNT <= value <= MAX_AMOUNT:
        raise MalformedEvent("an amount out of any range")
    return value


def _currency(value: Any) -> str:
    return value.lower()[:3] if isinstance(value, str) else "usd"


def checkout_change(session: Obj, *, event_type: str, at: datetime) -> CheckoutPaid | None:
    """A finished Checkout Session; None when imagebot did not make it."""
    ref, claimed = ours(session.get("metadata"), session.get("client_reference_id"))
    session_id = object_id(session.get("id"))
    mode = session.get("mode")
    if session_id is None or (ref is None and claimed is None):
        return None
    if mode not in ("payment", "subscription"):
        return None
    failed = event_type == "checkout.session.async_payment_failed"
    paid = not failed and (
        event_type == "checkout.session.async_payment_succeeded"
        or session.get("payment_status") in ("paid", "no_payment_required")
    )
    return CheckoutPaid(
        session_id=session_id,
        mode=mode,
        checkout_ref=ref,
        claimed_user_id=claimed,
        paid=paid,
        failed=failed,
        amount_minor=_int(session.get("amount_total")),
        currency=_currency(session.get("currency")),
        customer_id=object_id(session.get("customer")),
        payment_intent_id=object_id(session.get("payment_intent")),
        subscription_id=object_id(session.get("subscription")),
        at=at,
    )


def invoice_subscription(invoice: Obj) -> tuple[str | None, Obj]:
    """The subscription of an invoice and its metadata snapshot.

    Since API version 2025-03-31 (basil) it sits in ``parent.subscription_details``;
    older versions had ``subscription`` and ``subscription_details`` on the invoice.
    """
    parent = invoice.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    if isinstance(details, Mapping) and object_id(details.get("subscription")):
        meta = details.get("metadata")
        return object_id(details.get("subscription")), meta if isinstance(meta, Mapping) else {}
    legacy = object_id(invoice.get("subscription"))
    old_details = invoice.get("subscription_details")
    meta = old_details.get("metadata") if isinstance(old_details, Mapping) else None
    if legacy is None and isinstance(invoice.get("subscription"), Mapping):
        meta = invoice["subscription"].get("metadata")
    return legacy, meta if isinstance(meta, Mapping) else {}


def invoice_payment_intents(invoice: Obj) -> tuple[str, ...] | None:
    """Payment intents listed on the invoice itself (only when ``payments`` was
    included); None when the invoice does not say."""
    payments = invoice.get("payments")
    if not isinstance(payments, Mapping) or not isinstance(payments.get("data"), list):
        legacy = object_id(invoice.get("payment_intent"))
        return (legacy,) if legacy else None
    found = []
    for item in payments["data"]:
        payment = item.get("payment") if isinstance(item, Mapping) else None
        if isinstance(payment, Mapping) and item.get("status", "paid") == "paid":
            pi = object_id(payment.get("payment_intent"))
            if pi:
                found.append(pi)
    return tuple(found)


def _period_end(invoice: Obj) -> datetime | None:
    lines = invoice.get("lines")
    ends = []
    if isinstance(lines, Mapping) and isinstance(lines.get("data"), list):
        for line in lines["data"]:
            period = line.get("period") if isinstance(line, Mapping) else None
            if isinstance(period, Mapping) and timestamp(period.get("end")):
                ends.append(timestamp(period.get("end")))
    return max((e for e in ends if e is not None), default=None)


def invoice_change(
    invoice: Obj,
    *,
    at: datetime,
    payment_intents: tuple[str, ...],
    metadata: Obj | None = None,
) -> InvoicePaid | None:
    """A paid plan invoice; None for invoices that belong to no subscription.

    ``metadata`` replaces the invoice's subscription metadata when the caller fetched the
    subscription because the invoice carried none.
    """
    subscription_id, meta = invoice_subscription(invoice)
    invoice_id = object_id(invoice.get("id"))
    if subscription_id is None or invoice_id is None:
        return None
    ref, claimed = ours(metadata if metadata is not None else meta)
    return InvoicePaid(
        invoice_id=invoice_id,
        subscription_id=subscription_id,
        checkout_ref=ref,
        claimed_user_id=claimed,
        customer_id=object_id(invoice.get("customer")),
        amount_minor=_int(invoice.get("amount_paid")),
        currency=_currency(invoice.get("currency")),
        billing_reason=str(invoice.get("billing_reason") or ""),
        period_end=_period_end(invoice),
        payment_intent_ids=payment_intents,
        at=at,
    )


def subscription_change(sub: Obj, *, event_type: str, at: datetime) -> SubscriptionChanged | None:
    """A subscription's state; the period end sits on its items since API 2025-03-31."""
    subscription_id = object_id(sub.get("id"))
    if subscription_id is None:
        return None
    ref, claimed = ours(sub.get("metadata"))
    ends = []
    items = sub.get("items")
    if isinstance(items, Mapping) and isinstance(items.get("data"), list):
        for item in items["data"]:
            if isinstance(item, Mapping) and timestamp(item.get("current_period_end")):
                ends.append(timestamp(item.get("current_period_end")))
    period_end = max((e for e in ends if e is not None), default=None) or timestamp(
        sub.get("current_period_end")
    )
    status = "canceled" if event_type.endswith(".deleted") else str(sub.get("status") or "")
    return SubscriptionChanged(
        subscription_id=subscription_id,
        checkout_ref=ref,
        claimed_user_id=claimed,
        customer_id=object_id(sub.get("customer")),
        status=status,
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
        current_period_end=period_end,
        at=at,
    )


def refund_change(charge: Obj, *, at: datetime) -> ChargeRefunded | None:
    """A charge's refunds so far; None when it has no payment intent to link it by."""
    charge_id = object_id(charge.get("id"))
    payment_intent = object_id(charge.get("payment_intent"))
    if charge_id is None or payment_intent is None:
        return None
    return ChargeRefunded(
        charge_id=charge_id,
        payment_intent_id=payment_intent,
        amount_minor=_int(charge.get("amount")),
        amount_refunded=_int(charge.get("amount_refunded")),
        currency=_currency(charge.get("currency")),
        at=at,
    )


def dispute_change(
    dispute: Obj, *, at: datetime, payment_intent: str | None = None
) -> DisputeChanged | None:
    """A dispute's state; ``payment_intent`` when the caller looked it up via the charge."""
    dispute_id = object_id(dispute.get("id"))
    pi = object_id(dispute.get("payment_intent")) or payment_intent
    if dispute_id is None or pi is None:
        return None
    return DisputeChanged(
        dispute_id=dispute_id,
        payment_intent_id=pi,
        amount_minor=_int(dispute.get("amount")),
        currency=_currency(dispute.get("currency")),
        status=str(dispute.get("status") or ""),
        at=at,
    )
