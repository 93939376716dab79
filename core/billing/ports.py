"""The billing repository port and the records it returns; ``storage/`` implements it.

Only payment-processor ids, amounts, currency, credits and plan state pass through here
(P04): never card data, e-mail addresses, names or raw event payloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

ENDED_PLAN_STATES = frozenset({"canceled", "incomplete_expired"})
"""Subscription states after which a plan gives no more credits."""

FINAL_DISPUTE_STATES = frozenset({"won", "lost", "warning_closed", "prevented"})
"""Dispute states that close it; a dispute in any other state freezes spending."""


@dataclass(frozen=True, slots=True)
class CheckoutRecord:
    """A checkout link made for one button press (``ref`` is a hash of user, offer and
    press), so a double click finds the same link instead of making a second one."""

    ref: str
    user_id: int
    offer_id: str
    kind: str
    credits: int
    offer_name: str
    expires_at: datetime
    session_id: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class PurchaseRecord:
    """A paid (or pending) one-time checkout or plan invoice and the credits it gave."""

    id: int
    user_id: int | None
    kind: str
    offer_id: str
    stripe_object_id: str
    payment_intent_id: str | None
    subscription_id: str | None
    amount_minor: int
    currency: str
    credits: int
    credits_revoked: int
    status: str


@dataclass(frozen=True, slots=True)
class NewPurchase:
    """What a payment inserts."""

    user_id: int
    kind: str
    offer_id: str
    stripe_object_id: str
    payment_intent_id: str | None
    subscription_id: str | None
    amount_minor: int
    currency: str
    credits: int
    status: str


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """A monthly plan as last reported by the payment processor."""

    subscription_id: str
    user_id: int
    offer_id: str
    plan_name: str
    credits: int
    status: str
    cancel_at_period_end: bool
    current_period_end: datetime | None
    state_at: datetime

    @property
    def ended(self) -> bool:
        """True once the plan gives no more credits."""
        return self.status in ENDED_PLAN_STATES


@dataclass(frozen=True, slots=True)
class ReversalRecord:
    """A refund (one per charge, cumulative) or a dispute against a payment.

    ``purchase_id`` is None while the payment it reverses is not known yet (events
    arrive in any order); ``credits_taken`` is what it has taken back so far.
    """

    id: int
    kind: str
    stripe_object_id: str
    payment_intent_id: str
    purchase_id: int | None
    user_id: int | None
    amount_minor: int
    payment_amount_minor: int
    currency: str
    status: str
    credits_taken: int

    @property
    def open_dispute(self) -> bool:
        """True for a dispute that is not closed yet."""
        return self.kind == "dispute" and self.status not in FINAL_DISPUTE_STATES


class BillingRepository(Protocol):
    """Customers, checkout links, purchases, plans, refunds, disputes and seen events."""

    async def lock(self, name: str) -> None:
        """Serialise this transaction with others taking the same lock until it ends."""
        ...

    async def record_event(self, event_id: str, event_type: str, now: datetime) -> bool:
        """Remember a processed event id; False when it was seen before."""
        ...

    async def has_event(self, event_id: str) -> bool:
        """True when this event id was processed."""
        ...

    async def prune_events(self, before: datetime) -> int:
        """Forget event ids received before ``before``; returns how many."""
        ...

    async def customer_for(self, user_id: int) -> str | None:
        """The payment customer id of a user."""
        ...

    async def save_customer(self, user_id: int, customer_id: str, now: datetime) -> None:
        """Remember a user's customer id (the first one stays)."""
        ...

    async def claim_checkout(
        self,
        *,
        ref: str,
        user_id: int,
        offer_id: str,
        kind: str,
        credits: int,
        offer_name: str,
        expires_at: datetime,
        now: datetime,
    ) -> CheckoutRecord:
        """The checkout row for ``ref``, inserted when new (a concurrent insert wins)."""
        ...

    async def renew_checkout(self, ref: str, expires_at: datetime) -> None:
        """Give an expired checkout row a new expiry and forget its old session."""
        ...

    async def checkout_made(self, ref: str, session_id: str, url: str) -> None:
        """Store the session made for a checkout row."""
        ...

    async def checkout(self, ref: str) -> CheckoutRecord | None:
        """A checkout row by its ref."""
        ...

    async def checkout_by_session(self, session_id: str) -> CheckoutRecord | None:
        """A checkout row by the session made for it."""
        ...

    async def purchase(self, stripe_object_id: str) -> PurchaseRecord | None:
        """A purchase by its session or invoice id (locked for this transaction)."""
        ...

    async def purchases_for_payment(self, payment_intent_id: str) -> list[PurchaseRecord]:
        """The purchases paid by a payment (locked for this transaction)."""
        ...

    async def insert_purchase(self, purchase: NewPurchase, now: datetime) -> bool:
        """Insert unless the session or invoice id exists; True when inserted."""
        ...

    async def set_purchase_status(self, purchase_id: int, status: str, now: datetime) -> None:
        """Change a purchase's status."""
        ...

    async def add_purchase_revoked(self, purchase_id: int, credits: int, now: datetime) -> None:
        """Count ``credits`` more as taken back from a purchase."""
        ...

    async def subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        """A plan by its subscription id."""
        ...

    async def insert_subscription(self, record: SubscriptionRecord, now: datetime) -> bool:
        """Insert unless it exists; True when inserted."""
        ...

    async def update_subscription_state(
        self,
        subscription_id: str,
        *,
        status: str,
        cancel_at_period_end: bool,
        current_period_end: datetime | None,
        state_at: datetime,
        now: datetime,
    ) -> bool:
        """Apply a reported state unless a newer one was applied; True when applied."""
        ...

    async def extend_subscription_period(
        self, subscription_id: str, period_end: datetime, now: datetime
    ) -> None:
        """Move the period end forward (never back)."""
        ...

    async def current_plan(self, user_id: int) -> SubscriptionRecord | None:
        """The user's newest plan that has not ended."""
        ...

    async def reversal(self, kind: str, stripe_object_id: str) -> ReversalRecord | None:
        """A refund (by charge id) or dispute (by dispute id), locked for this transaction."""
        ...

    async def insert_reversal(
        self,
        *,
        kind: str,
        stripe_object_id: str,
        payment_intent_id: str,
        amount_minor: int,
        payment_amount_minor: int,
        currency: str,
        status: str,
        now: datetime,
    ) -> None:
        """Insert a refund or dispute (nothing when it exists)."""
        ...

    async def update_reversal(
        self, reversal_id: int, *, amount_minor: int, status: str, now: datetime
    ) -> None:
        """Record a refund's new cumulative amount or a dispute's new state."""
        ...

    async def reversals_for_payment(self, payment_intent_id: str) -> list[ReversalRecord]:
        """Every refund and dispute of a payment, oldest first (locked)."""
        ...

    async def settle_reversal(
        self,
        reversal_id: int,
        *,
        purchase_id: int,
        user_id: int | None,
        credits_taken: int,
        now: datetime,
    ) -> None:
        """Link a reversal to its purchase and record what it has taken back in total."""
        ...

    async def open_disputes(self, user_id: int) -> int:
        """How many disputes of the user's payments are not closed."""
        ...

    async def mark_welcome(self, mark: str, now: datetime) -> bool:
        """Remember that the account behind ``mark`` got the welcome credits; False when
        it had them before (a concurrent insert counts as before)."""
        ...
