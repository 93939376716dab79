"""Billing use cases on real SQLite and PostgreSQL, driven through core's verbs (no HTTP):
fast enough for property tests. The Stripe side is modelled by :class:`Shop`."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from core.billing.ledger import CreditLedger
from core.billing.offers import DEFAULT_OFFERS, Offer
from core.billing.purchases import (
    BillingOutcome,
    ChargeRefunded,
    CheckoutPaid,
    DisputeChanged,
    PurchaseService,
)
from core.clock import SystemClock
from core.notifier import NotifierHub
from storage.database import Database
from storage.uow import SqlUnitOfWorkFactory

OFFERS = {o.id: o for o in DEFAULT_OFFERS}
_ids = itertools.count(1)


@dataclass
class Payment:
    """One pack bought at Stripe: what Stripe knows about it."""

    offer: Offer
    ref: str
    session_id: str
    payment_intent: str
    refunded: int = 0
    dispute: str | None = None
    dispute_status: str | None = None


@dataclass
class Shop:
    """A user, the purchase service, and a model of the Stripe side."""

    db: Database
    purchases: PurchaseService
    ledger: CreditLedger
    user_id: int
    payments: list[Payment] = field(default_factory=list)

    @classmethod
    async def open(cls, db: Database, *, free: int = 0, name: str | None = None) -> Shop:
        clock = SystemClock()
        ledger = CreditLedger(clock)
        uow = SqlUnitOfWorkFactory(db)
        service = PurchaseService(uow, ledger, NotifierHub(), clock, DEFAULT_OFFERS)
        async with uow() as tx:
            user, _ = await tx.users.get_or_create(
                "test", name or f"u{next(_ids)}", "", "", clock.now()
            )
            await tx.ledger.ensure_account(user.id, clock.now())
            if free:
                await ledger.grant(tx, user.id, free, key=f"free:{user.id}")
            await tx.commit()
        return cls(db, service, ledger, user.id)

    async def begin(self, offer_id: str = "pack_m", *, user_id: int | None = None) -> Payment:
        """The user presses a pack button; Stripe makes a session."""
        offer = OFFERS[offer_id]
        n = next(_ids)
        ticket = await self.purchases.begin_checkout(
            user_id or self.user_id, offer, request_key=f"press{n}", lifetime=timedelta(hours=1)
        )
        payment = Payment(offer, ticket.ref, f"cs_test_{n}", f"pi_test_{n}")
        self.payments.append(payment)
        return payment

    def paid(self, p: Payment, *, claimed: int | None = None, paid: bool = True) -> CheckoutPaid:
        return CheckoutPaid(
            session_id=p.session_id,
            mode="payment",
            checkout_ref=p.ref,
            claimed_user_id=claimed if claimed is not None else self.user_id,
            paid=paid,
            failed=False,
            amount_minor=p.offer.price_minor,
            currency="usd",
            customer_id=f"cus_{self.user_id}",
            payment_intent_id=p.payment_intent,
            subscription_id=None,
            at=datetime.now(UTC),
        )

    def refund(self, p: Payment, amount: int) -> ChargeRefunded:
        p.refunded = min(p.offer.price_minor, p.refunded + amount)
        return ChargeRefunded(
            charge_id=f"ch_{p.payment_intent}",
            payment_intent_id=p.payment_intent,
            amount_minor=p.offer.price_minor,
            amount_refunded=p.refunded,
            currency="usd",
            at=datetime.now(UTC),
        )

    def dispute(self, p: Payment, status: str) -> DisputeChanged:
        p.dispute = p.dispute or f"dp_{p.payment_intent}"
        p.dispute_status = status
        return DisputeChanged(
            dispute_id=p.dispute,
            payment_intent_id=p.payment_intent,
            amount_minor=p.offer.price_minor,
            currency="usd",
            status=status,
            at=datetime.now(UTC),
        )

    async def apply(self, change: object, event_id: str | None = None) -> BillingOutcome:
        return await self.purchases.apply(change, event_id=event_id, event_type="test")  # type: ignore[arg-type]

    async def account(self) -> tuple[int, int, bool]:
        async with SqlUnitOfWorkFactory(self.db)() as uow:
            account = await uow.ledger.account(self.user_id)
        assert account is not None
        return account.balance, account.held, account.frozen
