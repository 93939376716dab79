"""A property test: random purchases, spends, refunds, disputes, late deliveries and
replays, in any order. After every step the ledger sums to the balance (DESIGN.md), the
balance is exactly what the delivered events and the spends add up to, spending is
refused exactly when it must be, and no spend takes a balance below zero."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.billing.purchases import ChargeRefunded, CheckoutPaid, DisputeChanged
from core.errors import InsufficientCredits, SpendingBlocked
from storage.database import Database
from storage.uow import SqlUnitOfWorkFactory
from tests.conftest import ledger_problems
from tests.integration.billing.conftest import Payment, Shop

FREE = 30
_events = itertools.count(1)

step = st.one_of(
    st.tuples(st.just("buy"), st.sampled_from(["pack_s", "pack_m"]), st.booleans()),
    st.tuples(st.just("spend"), st.integers(1, 80)),
    st.tuples(st.just("refund"), st.integers(0, 5), st.integers(1, 100), st.booleans()),
    st.tuples(st.just("dispute"), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("close"), st.integers(0, 5), st.booleans(), st.booleans()),
    st.tuples(st.just("deliver"), st.integers(0, 40)),
)


@dataclass
class Model:
    """What Stripe sent, what arrived, and what the balance must therefore be."""

    outbox: list[tuple[str, object]] = field(default_factory=list)
    delivered: set[int] = field(default_factory=set)
    spent: int = 0

    def expected(self, payments: list[Payment]) -> tuple[int, bool]:
        """(balance, frozen) from the delivered events alone."""
        arrived = [self.outbox[i][1] for i in sorted(self.delivered)]
        paid = {c.payment_intent_id for c in arrived if isinstance(c, CheckoutPaid)}
        balance = FREE - self.spent
        frozen = False
        for p in payments:
            if p.payment_intent not in paid:
                continue
            credits, amount = p.offer.credits, p.offer.price_minor
            refunded = max(
                (
                    c.amount_refunded
                    for c in arrived
                    if isinstance(c, ChargeRefunded) and c.payment_intent_id == p.payment_intent
                ),
                default=0,
            )
            states = {
                c.status
                for c in arrived
                if isinstance(c, DisputeChanged) and c.payment_intent_id == p.payment_intent
            }
            closed = states & {"won", "lost"}
            refund_take = min(credits, -(-credits * refunded // amount))
            dispute_take = credits if "lost" in closed else 0
            balance += credits - min(credits, refund_take + dispute_take)
            frozen = frozen or (bool(states) and not closed)
        return balance, frozen


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=18))
async def test_invariants_hold_after_every_step(database: Database, steps: list[tuple]) -> None:
    shop = await Shop.open(database, free=FREE)
    model = Model()
    jobs = itertools.count()

    async def send(change: object, now: bool) -> None:
        model.outbox.append((f"evt_prop_{next(_events)}", change))
        if now:
            await deliver(len(model.outbox) - 1)

    async def deliver(index: int) -> None:
        event_id, change = model.outbox[index]
        outcome = await shop.apply(change, event_id)
        assert outcome.duplicate == (index in model.delivered)
        model.delivered.add(index)

    for op in steps:
        kind = op[0]
        if kind == "buy":
            payment = await shop.begin(op[1])
            await send(shop.paid(payment), op[2])
        elif kind == "refund" and shop.payments:
            p = shop.payments[op[1] % len(shop.payments)]
            if p.refunded < p.offer.price_minor:
                share = max(1, p.offer.price_minor * op[2] // 100)
                await send(shop.refund(p, share), op[3])
        elif kind == "dispute" and shop.payments:
            p = shop.payments[op[1] % len(shop.payments)]
            if p.dispute is None:
                await send(shop.dispute(p, "needs_response"), op[2])
        elif kind == "close" and shop.payments:
            p = shop.payments[op[1] % len(shop.payments)]
            if p.dispute is not None and p.dispute_status == "needs_response":
                await send(shop.dispute(p, "won" if op[2] else "lost"), op[3])
        elif kind == "deliver" and model.outbox:
            await deliver(op[1] % len(model.outbox))  # late, out of order, or a replay
        elif kind == "spend":
            balance, frozen = model.expected(shop.payments)
            allowed = not frozen and balance >= op[1]
            job = f"prop-{shop.user_id}-{next(jobs)}"
            async with SqlUnitOfWorkFactory(database)() as uow:
                try:
                    await shop.ledger.hold(uow, shop.user_id, op[1], job)
                    await shop.ledger.capture(uow, shop.user_id, op[1], job)
                    await uow.commit()
                    assert allowed, (balance, frozen, op)
                    model.spent += op[1]
                except SpendingBlocked:
                    assert not allowed and (frozen or balance < 0)
                except InsufficientCredits:
                    assert not allowed and 0 <= balance < op[1]
        balance, frozen = model.expected(shop.payments)
        assert await shop.account() == (balance, 0, frozen), (op, model.delivered)
        assert await ledger_problems(database) == []
