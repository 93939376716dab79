"""The rail-neutral purchase verbs on real SQLite and PostgreSQL (issue 12): orders that a
rail carries back, payments keyed per rail, refunds in any order, concurrent deliveries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from core.billing import (
    DEFAULT_OFFERS,
    CreditLedger,
    PurchaseService,
    RailPaid,
    RailRefunded,
)
from core.clock import ManualClock
from core.notifier import NotifierHub
from storage.database import Database
from storage.uow import SqlUnitOfWorkFactory

OFFERS = {o.id: o for o in DEFAULT_OFFERS}


async def _setup(db: Database) -> tuple[PurchaseService, ManualClock, int]:
    clock = ManualClock(datetime(2026, 12, 6, 12, tzinfo=UTC))
    uow = SqlUnitOfWorkFactory(db)
    service = PurchaseService(uow, CreditLedger(clock), NotifierHub(), clock, DEFAULT_OFFERS)
    async with uow() as tx:
        user, _ = await tx.users.get_or_create("telegram", "555", "Ada", "en", clock.now())
        await tx.ledger.ensure_account(user.id, clock.now())
        await tx.commit()
    return service, clock, user.id


async def _balance(db: Database, user_id: int) -> int:
    async with SqlUnitOfWorkFactory(db)() as tx:
        account = await tx.ledger.account(user_id)
        return account.balance if account else 0


def _paid(user_id: int, charge: str, offer: str = "pack_s") -> RailPaid:
    stars = OFFERS[offer].stars
    assert stars is not None
    return RailPaid("telegram", charge, user_id, offer, stars, "XTR")


async def test_P20_an_order_is_refused_once_stale_or_for_another_price(database: Database) -> None:
    service, clock, user_id = await _setup(database)
    offer = OFFERS["pack_s"]
    ref = await service.open_order(user_id, offer, rail="telegram", request_key="press")
    kw = {"platform": "telegram", "platform_user_id": "555", "currency": "XTR"}
    assert await service.check_order(ref, "pack_s", amount=350, **kw) == (None, offer)
    assert (await service.check_order(ref, "pack_s", amount=349, **kw))[0] == "price_changed"
    assert (await service.check_order(ref, "pack_m", amount=900, **kw))[0] == "unknown"
    assert (await service.check_order("x" * 65, "pack_s", amount=350, **kw))[0] == "unknown"
    other = {**kw, "platform_user_id": "556"}
    assert (await service.check_order(ref, "pack_s", amount=350, **other))[0] == "other_user"
    euros = {**kw, "currency": "EUR"}
    assert (await service.check_order(ref, "pack_s", amount=350, **euros))[0] == "price_changed"
    clock.advance(hours=25)
    assert (await service.check_order(ref, "pack_s", amount=350, **kw))[0] == "expired"
    # The same press later gives the same reference, open again.
    again = await service.open_order(user_id, offer, rail="telegram", request_key="press")
    assert again == ref
    assert (await service.check_order(ref, "pack_s", amount=350, **kw))[0] is None


async def test_P06_a_refund_before_its_payment_is_settled_when_the_payment_arrives(
    database: Database,
) -> None:
    service, _, user_id = await _setup(database)
    refund = await service.apply(RailRefunded("telegram", "ch_1", 350, "XTR"))
    assert refund.applied and await _balance(database, user_id) == 0
    paid = await service.apply(_paid(user_id, "ch_1"))
    assert paid.applied
    assert await _balance(database, user_id) == 0  # granted and taken back at once
    assert not (await service.apply(RailRefunded("telegram", "ch_1", 350, "XTR"))).applied
    assert not (await service.apply(_paid(user_id, "ch_1"))).applied
    assert await _balance(database, user_id) == 0


async def test_P20_one_payment_delivered_ten_times_at_once_grants_once(database: Database) -> None:
    service, _, user_id = await _setup(database)
    outcomes = await asyncio.gather(
        *(service.apply(_paid(user_id, "ch_burst")) for _ in range(10)), return_exceptions=True
    )
    applied = [o for o in outcomes if not isinstance(o, BaseException) and o.applied]
    assert len(applied) == 1
    assert await _balance(database, user_id) == 50


async def test_P20_rails_have_their_own_key_spaces(database: Database) -> None:
    service, _, user_id = await _setup(database)
    await service.apply(_paid(user_id, "same-id"))
    discord = RailPaid("discord", "same-id", user_id, "pack_s", 0, "sku")
    assert (await service.apply(discord)).applied
    assert await _balance(database, user_id) == 100
    # A Discord refund (no amount) takes back the whole Discord purchase, not the Stars one.
    await service.apply(RailRefunded("discord", "same-id", 0, "sku"))
    assert await _balance(database, user_id) == 50
