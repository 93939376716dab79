"""Billing tables (Stripe customers, checkout links, purchases, plans, refunds and
disputes, processed webhook events).

Only Stripe ids, amounts, currency, credits and plan state are stored (P04): never card
data, e-mail addresses, names or raw event payloads. Rows needed for tax (purchases,
refunds, disputes) reference the user with ``ON DELETE SET NULL`` and carry
``subject_hash``, filled in by the erasure, so they outlive it unlinked; the others go
with the user (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base

STRIPE_ID = 255
"""Stripe documents its object ids as at most 255 characters."""


class BillingCustomer(Base):
    """The Stripe customer of a user, reused by later checkouts and the billing portal."""

    __tablename__ = "billing_customers"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    stripe_customer_id: Mapped[str] = mapped_column(String(STRIPE_ID), unique=True)
    created_at: Mapped[datetime]


class BillingCheckout(Base):
    """A checkout link made for one button press; ``ref`` (a hash of user, offer and
    press) is also sent as metadata, so a paid session finds its buyer here."""

    __tablename__ = "billing_checkouts"
    ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    offer_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    credits: Mapped[int] = mapped_column(Integer)
    offer_name: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]
    stripe_session_id: Mapped[str | None] = mapped_column(String(STRIPE_ID), unique=True)
    url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class BillingPurchase(Base):
    """A paid (or pending, or failed) pack checkout or plan invoice: kept for tax."""

    __tablename__ = "billing_purchases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    subject_hash: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    offer_id: Mapped[str] = mapped_column(String(64))
    stripe_object_id: Mapped[str] = mapped_column(String(STRIPE_ID), unique=True)
    """The checkout session (packs) or invoice (plan periods)."""
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(STRIPE_ID), index=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(STRIPE_ID))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    credits: Mapped[int] = mapped_column(Integer)
    credits_revoked: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class BillingSubscription(Base):
    """A monthly plan's state as Stripe last reported it (shown by /balance)."""

    __tablename__ = "billing_subscriptions"
    stripe_subscription_id: Mapped[str] = mapped_column(String(STRIPE_ID), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    offer_id: Mapped[str] = mapped_column(String(64))
    plan_name: Mapped[str] = mapped_column(String(128))
    credits: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(24))
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    current_period_end: Mapped[datetime | None]
    state_at: Mapped[datetime]
    """When Stripe reported the state applied last (updates arrive out of order)."""
    updated_at: Mapped[datetime]


class BillingReversal(Base):
    """A refund (one row per charge, cumulative) or a dispute against a payment: kept
    for tax. ``purchase_id`` stays empty until the payment it reverses is known."""

    __tablename__ = "billing_reversals"
    __table_args__ = (UniqueConstraint("kind", "stripe_object_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    stripe_object_id: Mapped[str] = mapped_column(String(STRIPE_ID))
    """The charge (refunds) or the dispute."""
    stripe_payment_intent_id: Mapped[str] = mapped_column(String(STRIPE_ID), index=True)
    purchase_id: Mapped[int | None] = mapped_column(
        ForeignKey("billing_purchases.id", ondelete="SET NULL")
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    subject_hash: Mapped[str | None] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    payment_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))
    credits_taken: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class StripeEvent(Base):
    """A processed webhook event id (never its payload): a replay finds it and stops."""

    __tablename__ = "stripe_events"
    event_id: Mapped[str] = mapped_column(String(STRIPE_ID), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(index=True)


class WelcomeMark(Base):
    """ "This platform account was given the welcome credits": a keyed hash of the platform
    and account id (HMAC under the installation secret), nothing else, no link to a user.
    Kept after an erasure for the ledger's retention period, so that erasing and coming
    back does not give the free credits again."""

    __tablename__ = "welcome_marks"
    mark: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
