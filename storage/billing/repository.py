"""SQL implementation of core's billing repository port. Nothing here commits."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, not_, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.billing.ports import (
    ENDED_PLAN_STATES,
    FINAL_DISPUTE_STATES,
    CheckoutRecord,
    NewPurchase,
    PurchaseRecord,
    ReversalRecord,
    SubscriptionRecord,
)
from storage.billing.models import (
    BillingCheckout,
    BillingCustomer,
    BillingPurchase,
    BillingReversal,
    BillingSubscription,
    StripeEvent,
    WelcomeMark,
)
from storage.repositories import dialect_insert, is_postgres


def _checkout(row: BillingCheckout) -> CheckoutRecord:
    return CheckoutRecord(
        ref=row.ref,
        user_id=row.user_id,
        offer_id=row.offer_id,
        kind=row.kind,
        credits=row.credits,
        offer_name=row.offer_name,
        expires_at=row.expires_at,
        session_id=row.stripe_session_id,
        url=row.url,
    )


def _purchase(row: BillingPurchase) -> PurchaseRecord:
    return PurchaseRecord(
        id=row.id,
        user_id=row.user_id,
        kind=row.kind,
        offer_id=row.offer_id,
        stripe_object_id=row.stripe_object_id,
        payment_intent_id=row.stripe_payment_intent_id,
        subscription_id=row.stripe_subscription_id,
        amount_minor=row.amount_minor,
        currency=row.currency,
        credits=row.credits,
        credits_revoked=row.credits_revoked,
        status=row.status,
    )


def _subscription(row: BillingSubscription) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=row.stripe_subscription_id,
        user_id=row.user_id,
        offer_id=row.offer_id,
        plan_name=row.plan_name,
        credits=row.credits,
        status=row.status,
        cancel_at_period_end=row.cancel_at_period_end,
        current_period_end=row.current_period_end,
        state_at=row.state_at,
    )


def _reversal(row: BillingReversal) -> ReversalRecord:
    return ReversalRecord(
        id=row.id,
        kind=row.kind,
        stripe_object_id=row.stripe_object_id,
        payment_intent_id=row.stripe_payment_intent_id,
        purchase_id=row.purchase_id,
        user_id=row.user_id,
        amount_minor=row.amount_minor,
        payment_amount_minor=row.payment_amount_minor,
        currency=row.currency,
        status=row.status,
        credits_taken=row.credits_taken,
    )


class SqlBillingRepository:
    """Customers, checkout rows, purchases, plans, reversals and processed event ids.

    Reads that precede a change lock their rows (``FOR UPDATE`` on PostgreSQL; SQLite's
    ``BEGIN IMMEDIATE`` already serialises writers), so two events about one payment
    never both act on the same state.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    def _locked(self, stmt: Any) -> Any:
        stmt = stmt.execution_options(populate_existing=True)
        return stmt.with_for_update() if is_postgres(self.s) else stmt

    async def lock(self, name: str) -> None:
        """A transaction-scoped advisory lock on PostgreSQL; SQLite has one writer anyway."""
        if not is_postgres(self.s):
            return
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        await self.s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    # --- events -----------------------------------------------------------------------------

    async def record_event(self, event_id: str, event_type: str, now: datetime) -> bool:
        """Insert the event id unless present; a concurrent duplicate waits, then sees it."""
        stmt = (
            dialect_insert(self.s, StripeEvent)
            .values(event_id=event_id, event_type=event_type, received_at=now)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(StripeEvent.event_id)
        )
        return (await self.s.execute(stmt)).scalar_one_or_none() is not None

    async def has_event(self, event_id: str) -> bool:
        """True when processed."""
        stmt = select(StripeEvent.event_id).where(StripeEvent.event_id == event_id)
        return (await self.s.execute(stmt)).first() is not None

    async def prune_events(self, before: datetime) -> int:
        """Forget old event ids."""
        result = await self.s.execute(
            delete(StripeEvent)
            .where(StripeEvent.received_at < before)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # --- customers and checkout rows --------------------------------------------------------

    async def customer_for(self, user_id: int) -> str | None:
        """The user's customer id."""
        stmt = select(BillingCustomer.stripe_customer_id).where(BillingCustomer.user_id == user_id)
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def save_customer(self, user_id: int, customer_id: str, now: datetime) -> None:
        """Keep the first customer id of a user (a customer id never moves to another)."""
        stmt = (
            dialect_insert(self.s, BillingCustomer)
            .values(user_id=user_id, stripe_customer_id=customer_id, created_at=now)
            .on_conflict_do_nothing()
        )
        await self.s.execute(stmt)

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
        """Insert when new, then read whichever row won."""
        stmt = (
            dialect_insert(self.s, BillingCheckout)
            .values(
                ref=ref,
                user_id=user_id,
                offer_id=offer_id,
                kind=kind,
                credits=credits,
                offer_name=offer_name[:128],
                expires_at=expires_at,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["ref"])
        )
        await self.s.execute(stmt)
        row = await self.checkout(ref)
        assert row is not None
        return row

    async def renew_checkout(self, ref: str, expires_at: datetime) -> None:
        """New expiry, no session yet."""
        await self.s.execute(
            update(BillingCheckout)
            .where(BillingCheckout.ref == ref)
            .values(expires_at=expires_at, stripe_session_id=None, url=None)
            .execution_options(synchronize_session=False)
        )

    async def checkout_made(self, ref: str, session_id: str, url: str) -> None:
        """Store the session of a checkout row."""
        await self.s.execute(
            update(BillingCheckout)
            .where(BillingCheckout.ref == ref)
            .values(stripe_session_id=session_id, url=url)
            .execution_options(synchronize_session=False)
        )

    async def checkout(self, ref: str) -> CheckoutRecord | None:
        """A checkout row by ref."""
        stmt = (
            select(BillingCheckout)
            .where(BillingCheckout.ref == ref)
            .execution_options(populate_existing=True)
        )
        row = (await self.s.execute(stmt)).scalar_one_or_none()
        return _checkout(row) if row else None

    async def checkout_by_session(self, session_id: str) -> CheckoutRecord | None:
        """A checkout row by its session."""
        stmt = select(BillingCheckout).where(BillingCheckout.stripe_session_id == session_id)
        row = (await self.s.execute(stmt)).scalar_one_or_none()
        return _checkout(row) if row else None

    # --- purchases --------------------------------------------------------------------------

    async def purchase(self, stripe_object_id: str) -> PurchaseRecord | None:
        """A purchase by session or invoice id, locked."""
        stmt = select(BillingPurchase).where(BillingPurchase.stripe_object_id == stripe_object_id)
        row = (await self.s.execute(self._locked(stmt))).scalar_one_or_none()
        return _purchase(row) if row else None

    async def purchases_for_payment(self, payment_intent_id: str) -> list[PurchaseRecord]:
        """Purchases paid by a payment, locked, oldest first."""
        stmt = (
            select(BillingPurchase)
            .where(BillingPurchase.stripe_payment_intent_id == payment_intent_id)
            .order_by(BillingPurchase.id)
        )
        return [_purchase(r) for r in (await self.s.execute(self._locked(stmt))).scalars()]

    async def insert_purchase(self, purchase: NewPurchase, now: datetime) -> bool:
        """Insert unless the session or invoice id exists."""
        stmt = (
            dialect_insert(self.s, BillingPurchase)
            .values(
                user_id=purchase.user_id,
                kind=purchase.kind,
                offer_id=purchase.offer_id,
                stripe_object_id=purchase.stripe_object_id,
                stripe_payment_intent_id=purchase.payment_intent_id,
                stripe_subscription_id=purchase.subscription_id,
                amount_minor=purchase.amount_minor,
                currency=purchase.currency[:3].lower(),
                credits=purchase.credits,
                credits_revoked=0,
                status=purchase.status,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["stripe_object_id"])
            .returning(BillingPurchase.id)
        )
        return (await self.s.execute(stmt)).scalar_one_or_none() is not None

    async def set_purchase_status(self, purchase_id: int, status: str, now: datetime) -> None:
        """Change the status."""
        await self.s.execute(
            update(BillingPurchase)
            .where(BillingPurchase.id == purchase_id)
            .values(status=status, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def add_purchase_revoked(self, purchase_id: int, credits: int, now: datetime) -> None:
        """More credits taken back."""
        await self.s.execute(
            update(BillingPurchase)
            .where(BillingPurchase.id == purchase_id)
            .values(credits_revoked=BillingPurchase.credits_revoked + credits, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    # --- plans ------------------------------------------------------------------------------

    async def subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        """A plan by id, locked."""
        stmt = select(BillingSubscription).where(
            BillingSubscription.stripe_subscription_id == subscription_id
        )
        row = (await self.s.execute(self._locked(stmt))).scalar_one_or_none()
        return _subscription(row) if row else None

    async def insert_subscription(self, record: SubscriptionRecord, now: datetime) -> bool:
        """Insert unless present."""
        stmt = (
            dialect_insert(self.s, BillingSubscription)
            .values(
                stripe_subscription_id=record.subscription_id,
                user_id=record.user_id,
                offer_id=record.offer_id,
                plan_name=record.plan_name[:128],
                credits=record.credits,
                status=record.status[:24],
                cancel_at_period_end=record.cancel_at_period_end,
                current_period_end=record.current_period_end,
                state_at=record.state_at,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["stripe_subscription_id"])
            .returning(BillingSubscription.stripe_subscription_id)
        )
        return (await self.s.execute(stmt)).scalar_one_or_none() is not None

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
        """One conditional update: not older than the state applied last, and an ended
        plan never comes back (Stripe never revives a cancelled subscription)."""
        conditions = [
            BillingSubscription.stripe_subscription_id == subscription_id,
            BillingSubscription.state_at <= state_at,
        ]
        if status not in ENDED_PLAN_STATES:
            conditions.append(BillingSubscription.status.not_in(sorted(ENDED_PLAN_STATES)))
        values: dict[str, Any] = {
            "status": status[:24],
            "cancel_at_period_end": cancel_at_period_end,
            "state_at": state_at,
            "updated_at": now,
        }
        if current_period_end is not None:
            values["current_period_end"] = current_period_end
        result = await self.s.execute(
            update(BillingSubscription)
            .where(*conditions)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def extend_subscription_period(
        self, subscription_id: str, period_end: datetime, now: datetime
    ) -> None:
        """Only ever forward."""
        await self.s.execute(
            update(BillingSubscription)
            .where(
                BillingSubscription.stripe_subscription_id == subscription_id,
                or_(
                    BillingSubscription.current_period_end.is_(None),
                    BillingSubscription.current_period_end < period_end,
                ),
            )
            .values(current_period_end=period_end, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def current_plan(self, user_id: int) -> SubscriptionRecord | None:
        """The newest plan that has not ended."""
        stmt = (
            select(BillingSubscription)
            .where(
                BillingSubscription.user_id == user_id,
                BillingSubscription.status.not_in(sorted(ENDED_PLAN_STATES)),
            )
            .order_by(BillingSubscription.state_at.desc())
            .limit(1)
        )
        row = (await self.s.execute(stmt)).scalar_one_or_none()
        return _subscription(row) if row else None

    # --- refunds and disputes ---------------------------------------------------------------

    async def reversal(self, kind: str, stripe_object_id: str) -> ReversalRecord | None:
        """A refund or dispute, locked."""
        stmt = select(BillingReversal).where(
            BillingReversal.kind == kind, BillingReversal.stripe_object_id == stripe_object_id
        )
        row = (await self.s.execute(self._locked(stmt))).scalar_one_or_none()
        return _reversal(row) if row else None

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
        """Insert unless present."""
        stmt = (
            dialect_insert(self.s, BillingReversal)
            .values(
                kind=kind,
                stripe_object_id=stripe_object_id,
                stripe_payment_intent_id=payment_intent_id,
                amount_minor=amount_minor,
                payment_amount_minor=payment_amount_minor,
                currency=currency[:3].lower(),
                status=status[:32],
                credits_taken=0,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["kind", "stripe_object_id"])
        )
        await self.s.execute(stmt)

    async def update_reversal(
        self, reversal_id: int, *, amount_minor: int, status: str, now: datetime
    ) -> None:
        """New cumulative amount or state."""
        await self.s.execute(
            update(BillingReversal)
            .where(BillingReversal.id == reversal_id)
            .values(amount_minor=amount_minor, status=status[:32], updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def reversals_for_payment(self, payment_intent_id: str) -> list[ReversalRecord]:
        """Every reversal of a payment, oldest first, locked."""
        stmt = (
            select(BillingReversal)
            .where(BillingReversal.stripe_payment_intent_id == payment_intent_id)
            .order_by(BillingReversal.id)
        )
        return [_reversal(r) for r in (await self.s.execute(self._locked(stmt))).scalars()]

    async def settle_reversal(
        self,
        reversal_id: int,
        *,
        purchase_id: int,
        user_id: int | None,
        credits_taken: int,
        now: datetime,
    ) -> None:
        """Link to the purchase and record the credits taken in total."""
        await self.s.execute(
            update(BillingReversal)
            .where(BillingReversal.id == reversal_id)
            .values(
                purchase_id=purchase_id,
                user_id=user_id,
                credits_taken=credits_taken,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )

    async def open_disputes(self, user_id: int) -> int:
        """Disputes of the user's payments that are not closed."""
        stmt = select(func.count()).where(
            and_(
                BillingReversal.user_id == user_id,
                BillingReversal.kind == "dispute",
                not_(BillingReversal.status.in_(sorted(FINAL_DISPUTE_STATES))),
            )
        )
        return int((await self.s.execute(stmt)).scalar_one())

    async def mark_welcome(self, mark: str, now: datetime) -> bool:
        """Insert the welcome mark unless present; True when inserted."""
        stmt = (
            dialect_insert(self.s, WelcomeMark)
            .values(mark=mark, created_at=now)
            .on_conflict_do_nothing(index_elements=["mark"])
            .returning(WelcomeMark.mark)
        )
        return (await self.s.execute(stmt)).scalar_one_or_none() is not None
