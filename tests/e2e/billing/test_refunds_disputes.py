"""Refunds and disputes move the ledger; negative or frozen accounts cannot spend."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from core.errors import InsufficientCredits, SpendingBlocked
from storage.billing.models import BillingReversal
from storage.database import Database
from storage.models import CreditAccount
from tests.conftest import ledger_problems
from tests.e2e.billing.conftest import Billing, start_billing
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import actor, request


async def _spend(billing: Billing, times: int) -> None:
    for _ in range(times):
        await billing.core.generation.submit(request())
    await billing.core.worker.run_until_idle()


async def test_a_refund_below_zero_blocks_spending_until_topped_up(billing: Billing) -> None:
    session = await billing.buy("pack_s")  # 20 + 50
    await _spend(billing, 6)  # ten credits each (the fixture's price table)
    assert (await billing.balance()).available == 10
    await billing.deliver(billing.stripe.refund(session["payment_intent"]))
    view = await billing.balance()
    assert view.available == -40 and view.spending_blocked
    assert "50 credits were taken back" in billing.dms()[-1]
    assert "Spending is paused until the balance is above zero" in billing.dms()[-1]
    with pytest.raises(SpendingBlocked):
        await billing.core.generation.submit(request())
    # A new pack brings it back above zero.
    await billing.buy("pack_m")
    assert (await billing.balance()).available == 110
    await _spend(billing, 1)


async def test_a_dispute_opened_and_lost(billing: Billing) -> None:
    session = await billing.buy("pack_m")  # 170
    pi = session["payment_intent"]
    opened = billing.stripe.open_dispute(pi)
    assert await billing.deliver(opened) == [200]
    view = await billing.balance()
    assert view.spending_blocked and view.available == 170
    assert "dispute was opened" in billing.dms()[-1]
    with pytest.raises(SpendingBlocked) as blocked:
        await billing.core.generation.submit(request())
    assert "dispute" in blocked.value.user_message
    await billing.deliver(opened)  # replayed: still one freeze, no new message
    assert len([m for m in billing.dms() if "dispute was opened" in m]) == 1

    await billing.deliver(billing.stripe.close_dispute(opened["data"]["object"]["id"], won=False))
    view = await billing.balance()
    assert view.available == 20 and not view.spending_blocked
    texts = billing.dms()[-2:]
    assert "closed against this account: 150 credits were taken back" in texts[0]
    assert "Spending is open again" in texts[1]
    await _spend(billing, 1)
    async with billing.db.engine.connect() as conn:
        row = (
            await conn.execute(
                select(BillingReversal.kind, BillingReversal.status, BillingReversal.credits_taken)
            )
        ).one()
    assert tuple(row) == ("dispute", "lost", 150)


async def test_a_dispute_won_unfreezes_and_keeps_the_credits(billing: Billing) -> None:
    session = await billing.buy("pack_s")
    opened = billing.stripe.open_dispute(session["payment_intent"])
    closed = billing.stripe.close_dispute(opened["data"]["object"]["id"], won=True)
    # Closed arrives before created: the dispute ends closed, the account unfrozen.
    await billing.deliver(closed, opened)
    view = await billing.balance()
    assert view.available == 70 and not view.spending_blocked
    async with billing.db.engine.connect() as conn:
        frozen = (await conn.execute(select(CreditAccount.frozen))).scalar_one()
    assert frozen is False


async def test_two_webhooks_at_the_moment_of_twenty_spends(
    database: Database, tmp_path: Path, stripe_fake: FakeStripe
) -> None:
    """Two packs paid (each delivered twice, all at once) while the user fires 20
    generations of 10 credits from an empty balance: the ledger sums to the balance,
    nothing is granted twice, nothing is spent below zero."""
    harness, runner = await start_billing(
        database,
        tmp_path,
        stripe_fake,
        free_credits=0,
        max_queued_per_user=100,
        prices='{"demo": {"low": 10, "medium": 10, "high": 10, "auto": 10}}',
    )
    try:
        await harness.core.users.register(actor())
        first = await harness.checkout("pack_s")
        second = await harness.checkout("pack_m")
        a = stripe_fake.complete_session(first["id"])[0]
        b = stripe_fake.complete_session(second["id"])[0]
        results = await asyncio.gather(
            harness.sender.send(a),
            harness.sender.send(b),
            harness.sender.send(a),
            harness.sender.send(b),
            *(harness.core.generation.submit(request(key=f"burst-{i}")) for i in range(20)),
            return_exceptions=True,
        )
        await harness.gateway.drain()
        hooks, spends = results[:4], results[4:]
        assert [h[0] for h in hooks] == [200, 200, 200, 200]  # type: ignore[index]
        assert sorted(h[1]["duplicate"] for h in hooks) == [False, False, True, True]  # type: ignore[index]
        accepted = [s for s in spends if not isinstance(s, BaseException)]
        refused = [s for s in spends if isinstance(s, BaseException)]
        assert all(isinstance(r, InsufficientCredits) for r in refused), refused
        view = await harness.balance()
        assert view.available >= 0
        assert view.held == 10 * len(accepted)
        assert view.available + view.held == 50 + 150
        assert await harness.ledger_rows("purchase") == 2
        assert len([m for m in harness.dms() if "credits added" in m]) == 2
        assert await ledger_problems(database) == []
    finally:
        await harness.sender.close()
        await runner.cleanup()
        await harness.core.aclose()
