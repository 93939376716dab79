"""Billing use cases on both databases: who the buyer is, order, plans, checkout rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from core.billing.ledger import CreditLedger, CreditsService
from core.billing.offers import DEFAULT_OFFERS
from core.billing.purchases import PurchaseService, SubscriptionChanged
from core.clock import ManualClock
from core.notifier import NotifierHub
from storage.billing.models import BillingPurchase, StripeEvent
from storage.database import Database
from storage.models import User
from storage.uow import SqlUnitOfWorkFactory
from tests.integration.billing.conftest import OFFERS, Shop


async def test_metadata_naming_another_user_is_not_trusted(database: Database) -> None:
    shop = await Shop.open(database)
    other = await Shop.open(database)
    payment = await shop.begin("pack_s")
    outcome = await shop.apply(shop.paid(payment, claimed=other.user_id), "evt_mismatch")
    assert not outcome.applied
    assert await shop.account() == (0, 0, False)
    assert await other.account() == (0, 0, False)


async def test_a_payment_after_the_buyer_was_erased_credits_nobody(database: Database) -> None:
    shop = await Shop.open(database)
    payment = await shop.begin("pack_s")
    async with database.engine.begin() as conn:
        await conn.execute(delete(User).where(User.id == shop.user_id))
    # A new user may even get the old id on SQLite; the checkout row went with the buyer.
    late = await Shop.open(database)
    outcome = await late.apply(shop.paid(payment, claimed=shop.user_id), "evt_after_erasure")
    assert not outcome.applied
    async with database.engine.connect() as conn:
        assert (await conn.execute(select(func.count(BillingPurchase.id)))).scalar_one() == 0


async def test_partial_refund_reports_out_of_order(database: Database) -> None:
    shop = await Shop.open(database)
    payment = await shop.begin("pack_m")  # 150 credits for 1299
    small = shop.refund(payment, 300)
    large = shop.refund(payment, 700)  # cumulative 1000
    await shop.apply(shop.paid(payment), "evt_paid")
    await shop.apply(large, "evt_large")
    assert await shop.account() == (150 - 116, 0, False)  # ceil(150 * 1000 / 1299)
    await shop.apply(small, "evt_small")  # older news: nothing more
    assert await shop.account() == (34, 0, False)


async def test_a_dispute_before_its_payment_freezes_when_the_payment_arrives(
    database: Database,
) -> None:
    shop = await Shop.open(database, free=10)
    payment = await shop.begin("pack_s")
    outcome = await shop.apply(shop.dispute(payment, "needs_response"), "evt_dp")
    assert outcome.applied and not outcome.notices
    assert await shop.account() == (10, 0, False)  # nobody to freeze yet
    await shop.apply(shop.paid(payment), "evt_paid")
    assert await shop.account() == (60, 0, True)
    await shop.apply(shop.dispute(payment, "lost"), "evt_lost")
    assert await shop.account() == (10, 0, False)
    # A late "created" after "lost" does not reopen it.
    await shop.apply(shop.dispute(payment, "needs_response"), "evt_dp_again")
    assert await shop.account() == (10, 0, False)


async def test_plan_state_applies_only_newer_reports(database: Database) -> None:
    shop = await Shop.open(database)
    payment = await shop.begin("plan_basic")
    t0 = datetime(2026, 5, 1, tzinfo=UTC)

    def state(status: str, at: datetime, *, cancel: bool = False) -> SubscriptionChanged:
        return SubscriptionChanged(
            subscription_id="sub_order",
            checkout_ref=payment.ref,
            claimed_user_id=shop.user_id,
            customer_id="cus_order",
            status=status,
            cancel_at_period_end=cancel,
            current_period_end=at + timedelta(days=30),
            at=at,
        )

    credits = CreditsService(SqlUnitOfWorkFactory(database), shop.ledger, shop.ledger.clock)
    await shop.apply(state("active", t0 + timedelta(minutes=2)), "evt_s2")
    await shop.apply(state("past_due", t0 + timedelta(minutes=1)), "evt_s1")  # older
    plan = (await credits.balance(shop.user_id)).plan
    assert plan is not None and plan.status == "active" and plan.name == "Monthly 200"
    await shop.apply(state("canceled", t0 + timedelta(minutes=3)), "evt_s3")
    await shop.apply(state("active", t0 + timedelta(minutes=3)), "evt_s3b")  # same second
    assert (await credits.balance(shop.user_id)).plan is None


async def test_a_press_keeps_its_checkout_until_it_nearly_expires(database: Database) -> None:
    clock = ManualClock(datetime(2026, 6, 1, tzinfo=UTC))
    uow = SqlUnitOfWorkFactory(database)
    service = PurchaseService(uow, CreditLedger(clock), NotifierHub(), clock, DEFAULT_OFFERS)
    shop = await Shop.open(database)
    offer = OFFERS["pack_s"]
    hour = timedelta(hours=1)
    first = await service.begin_checkout(shop.user_id, offer, request_key="p1", lifetime=hour)
    again = await service.begin_checkout(shop.user_id, offer, request_key="p1", lifetime=hour)
    assert again == first and first.url is None
    assert first.expires_at == datetime(2026, 6, 1, 1, tzinfo=UTC)
    await service.checkout_made(first.ref, "cs_1", "https://checkout.example/cs_1")
    clock.advance(minutes=40)
    reused = await service.begin_checkout(shop.user_id, offer, request_key="p1", lifetime=hour)
    assert reused.url == "https://checkout.example/cs_1"
    clock.advance(minutes=17)  # three minutes left: too close to hand out again
    renewed = await service.begin_checkout(shop.user_id, offer, request_key="p1", lifetime=hour)
    assert renewed.url is None and renewed.ref == first.ref
    assert renewed.expires_at == clock.now() + hour
    other = await service.begin_checkout(shop.user_id, offer, request_key="p2", lifetime=hour)
    assert other.ref != first.ref


async def test_old_event_ids_are_pruned(database: Database) -> None:
    shop = await Shop.open(database)
    await shop.apply(None, "evt_old")
    clock = ManualClock(datetime.now(UTC) + timedelta(days=60))
    uow = SqlUnitOfWorkFactory(database)
    service = PurchaseService(uow, CreditLedger(clock), NotifierHub(), clock, DEFAULT_OFFERS)
    assert await service.prune_events(timedelta(days=45)) == 1
    async with database.engine.connect() as conn:
        assert (await conn.execute(select(func.count(StripeEvent.event_id)))).scalar_one() == 0
