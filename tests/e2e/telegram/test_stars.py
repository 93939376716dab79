"""Telegram Stars end to end (issue 12): the real python-telegram-bot against the Telegram
fake, which validates invoices like the Bot API and plays the buyer. On both databases."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from bot.cli import stars_reconcile, stars_refund
from core.errors import InsufficientCredits, SpendingBlocked
from storage.billing.models import BillingPurchase
from storage.database import Database
from storage.schema import Base
from tests.conftest import make_settings
from tests.e2e.telegram.conftest import Person, TelegramHarness, launch
from tests.fakes.stripe_server import API_KEY, FakeStripe
from tests.fakes.telegram_server import TOKEN, BotCall, FakeTelegram
from tests.fakes.telegram_stars import SUBSCRIPTION_PERIOD
from tests.helpers import request

PRICED = {
    "free_credits": 20,
    "max_queued_per_user": 100,
    "prices": '{"demo": {"low": 10, "medium": 10, "high": 10, "auto": 10}}',
}


@pytest_asyncio.fixture
async def stars(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> AsyncIterator[TelegramHarness]:
    """A bot selling in Stars (the default on Telegram), no Stripe configured."""
    harness = await launch(database, tmp_path, fake_telegram, worker=False, **PRICED)
    try:
        yield harness
    finally:
        await harness.stop()


def _cli(h: TelegramHarness, database: Database, tmp_path: Path) -> Any:
    """The settings an operator's ``imagebot stars …`` runs with (same database)."""
    return make_settings(
        tmp_path / "cli",
        database,
        database_schema=database.schema,
        telegram_token=TOKEN,
        telegram_api_url=h.fake.base_url,
        **PRICED,
    )


async def _offers(h: TelegramHarness, who: Person, command: str = "/buy") -> BotCall:
    mark = h.mark()
    who.say(command)
    return await h.fake.wait_call("sendMessage", chat_id=who.chat.id, after=mark)


async def _invoice(h: TelegramHarness, who: Person, offer: str = "pack_m") -> Any:
    """Press the offer's Stars button; the invoice (packs) or the link (plans)."""
    listing = await _offers(h, who, "/subscribe" if offer.startswith("plan") else "/buy")
    data = next(d for _, d in listing.buttons() if d.startswith("bs:") and d.endswith(offer))
    before = len(h.fake.invoices)
    await h.fake.wait_answer(who.press(listing.result, data))
    failed = [(c.params, c.description) for c in h.fake.calls_of("sendInvoice") if not c.ok]
    assert not failed, failed
    await h.fake.wait_for(lambda: len(h.fake.invoices) > before, what="an invoice")
    return h.fake.invoices[-1]


async def _receipt(h: TelegramHarness, who: Person, after: int, words: str) -> BotCall:
    return await h.fake.wait_call(
        "sendMessage", chat_id=who.chat.id, after=after, where=lambda c: words in c.text
    )


async def _count(db: Database, *where: Any) -> int:
    async with db.engine.connect() as conn:
        return int(
            await conn.scalar(select(func.count()).select_from(BillingPurchase).where(*where)) or 0
        )


async def test_P05_a_stars_pack_bought_end_to_end(stars: TelegramHarness) -> None:
    h, fake = stars, stars.fake
    ada = await h.person()
    listing = await _offers(h, ada)
    assert "Telegram Stars" in listing.text and "⭐ 900" in listing.text
    invoice = await _invoice(h, ada, "pack_m")
    call = fake.calls_of("sendInvoice")[-1]
    assert call.params["currency"] == "XTR" and call.params.get("provider_token", "") == ""
    assert invoice.amount == 900 and invoice.title == "Creator pack"
    assert str(ada.id) not in invoice.payload  # the platform id never travels in clear
    mark = h.mark()
    paid = await fake.pay(ada.user, invoice)
    assert paid.pre_checkout.ok is True and paid.charge is not None
    assert paid.pre_checkout.answer_seconds is not None and paid.pre_checkout.answer_seconds < 10
    receipt = await _receipt(h, ada, mark, "150 credits added")
    assert "balance is 170" in receipt.text
    assert await ada.balance() == 170


async def test_P20_a_payment_replayed_five_times_and_on_two_processes_grants_once(
    stars: TelegramHarness, database: Database, tmp_path: Path
) -> None:
    h, fake = stars, stars.fake
    ada = await h.person()
    invoice = await _invoice(h, ada, "pack_s")
    paid = await fake.pay(ada.user, invoice)
    await _receipt(h, ada, 0, "50 credits added")
    assert paid.charge is not None
    # A second process (another replica, or this one after a restart) on the same database.
    other = await launch(database, tmp_path / "replica", fake, worker=False, **PRICED)
    try:
        for _ in range(5):
            update, _ = fake.payment_update(ada.user, paid.charge)
            fake.push_update(update)  # each is a new update id: redelivered as Telegram may
        await asyncio.sleep(1.0)
        await fake.wait_served()
    finally:
        await other.stop()
    assert await ada.balance() == 70
    assert await _count(database) == 1
    receipts = [c for c in fake.calls_of("sendMessage", ada.chat.id) if "credits added" in c.text]
    assert len(receipts) == 1


async def test_P20_pre_checkout_refuses_forged_stale_other_users_and_banned(
    stars: TelegramHarness,
) -> None:
    h, fake = stars, stars.fake
    ada, bob = await h.person("Ada"), await h.person("Bob")
    invoice = await _invoice(h, ada, "pack_s")

    async def answer(user: Any, payload: str, amount: int) -> Any:
        query = fake.send_pre_checkout(user, payload, amount)
        return await fake.wait_pre_checkout(query)

    forged = await answer(ada.user, "0" * 32 + ":pack_l", 2800)
    assert forged.ok is False and "not valid" in (forged.error_message or "")
    garbage = await answer(ada.user, "hello", 1)
    assert garbage.ok is False
    theirs = await answer(bob.user, invoice.payload, invoice.amount)
    assert theirs.ok is False and "someone else" in (theirs.error_message or "")
    cheap = await answer(ada.user, invoice.payload, 1)
    assert cheap.ok is False and "price" in (cheap.error_message or "")
    huge = await answer(ada.user, invoice.payload, 10**18)
    assert huge.ok is False
    long = await answer(ada.user, "f" * 32 + ":" + "x" * 500, 50)
    assert long.ok is False
    user_id = await h.core.credits.user_for(ada.actor)
    assert user_id is not None
    await h.core.safety.set_ban(user_id, by="operator", reason="test", hours=1)
    banned = await answer(ada.user, invoice.payload, invoice.amount)
    assert banned.ok is False and "cannot make purchases" in (banned.error_message or "")
    assert await ada.balance() == 20
    assert all(q.answer_seconds is not None and q.answer_seconds < 10 for q in fake.pre_checkouts)


async def test_P06_a_stars_refund_goes_negative_and_blocks_spending_until_a_top_up(
    stars: TelegramHarness, database: Database, tmp_path: Path
) -> None:
    h, fake = stars, stars.fake
    ada = await h.person()
    invoice = await _invoice(h, ada, "pack_s")
    paid = await fake.pay(ada.user, invoice)
    await _receipt(h, ada, 0, "50 credits added")
    assert paid.charge is not None
    # Spend 60 of the 70 (six images at ten credits).
    for i in range(6):
        await h.core.generation.submit(request(ada.actor, f"fox {i}", key=f"k{i}"))
    assert await ada.balance() == 10
    # The operator refunds: Telegram returns the Stars; the 50 credits go back.
    code = await stars_refund(
        _cli(h, database, tmp_path), paid.charge.charge_id, reason="asked by user"
    )
    assert code == 0
    assert fake.charges[paid.charge.charge_id].refunded
    assert await ada.balance() == -40
    # Telegram's own refunded_payment message about it changes nothing more.
    fake.refunded_update(ada.user, paid.charge)
    await fake.wait_served()
    await asyncio.sleep(0.3)
    assert await ada.balance() == -40
    with pytest.raises((InsufficientCredits, SpendingBlocked)):
        await h.core.generation.submit(request(ada.actor, "one more", key="k-neg"))
    # A top-up brings it above zero: spending opens again.
    paid2 = await fake.pay(ada.user, await _invoice(h, ada, "pack_m"))
    assert paid2.charge is not None
    for _ in range(50):
        if await ada.balance() == 110:
            break
        await asyncio.sleep(0.05)
    assert await ada.balance() == 110
    await h.core.generation.submit(request(ada.actor, "now it works", key="k-pos"))


async def test_P05_a_stars_plan_renewed_twice_then_cancelled(stars: TelegramHarness) -> None:
    h, fake = stars, stars.fake
    ada = await h.person()
    invoice = await _invoice(h, ada, "plan_basic")
    link_call = fake.calls_of("createInvoiceLink")[-1]
    assert int(link_call.params["subscription_period"]) == SUBSCRIPTION_PERIOD
    assert invoice.link and invoice.amount == 700
    mark = h.mark()
    paid = await fake.pay(ada.user, invoice.link)
    assert paid.charge is not None
    await _receipt(h, ada, mark, "is active")
    assert await ada.balance() == 220
    for expected in (420, 620):
        mark = h.mark()
        renewal = await fake.renew(ada.user, paid.charge)
        assert renewal is not None
        await _receipt(h, ada, mark, "renewed")
        assert await ada.balance() == expected
    # /billing shows the plan with a cancel button; pressing it cancels at Telegram.
    mark = h.mark()
    ada.say("/billing")
    billing = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "Monthly 200" in billing.text
    data = next(d for _, d in billing.buttons() if d.startswith("bx:"))
    mark = h.mark()
    await fake.wait_answer(ada.press(billing.result, data))
    await fake.wait_call("editUserStarSubscription", after=mark)
    assert fake.charges[paid.charge.charge_id].canceled
    assert await fake.renew(ada.user, paid.charge) is None
    mark = h.mark()
    ada.say("/billing")
    again = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "cancelled" in again.text and not any(d.startswith("bx:") for _, d in again.buttons())


async def test_P05_stars_reconcile_applies_a_lost_payment_once(
    stars: TelegramHarness, database: Database, tmp_path: Path
) -> None:
    h, fake = stars, stars.fake
    ada = await h.person()
    invoice = await _invoice(h, ada, "pack_s")
    lost = await fake.pay(ada.user, invoice, deliver=False)
    assert lost.charge is not None
    await asyncio.sleep(0.2)
    assert await ada.balance() == 20
    assert await stars_reconcile(_cli(h, database, tmp_path), days=3) == 0
    assert await ada.balance() == 70
    assert await stars_reconcile(_cli(h, database, tmp_path), days=3) == 0
    assert await ada.balance() == 70
    # A refund Telegram made while the bot was down is applied by reconcile too.
    fake.charges[lost.charge.charge_id].refunded = True
    fake._transaction_refund(fake.charges[lost.charge.charge_id])
    assert await stars_reconcile(_cli(h, database, tmp_path), days=3) == 0
    assert await ada.balance() == 20


async def test_paysupport_answers_with_help_and_refunds(stars: TelegramHarness) -> None:
    h = stars
    ada = await h.person()
    mark = h.mark()
    ada.say("/paysupport")
    answer = await h.fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "/support" in answer.text and "refund" in answer.text.lower()
    assert TOKEN not in answer.text


async def test_P04_a_stars_purchase_stores_ids_amounts_and_credits_only(
    stars: TelegramHarness, database: Database
) -> None:
    h, fake = stars, stars.fake
    ada = await h.person("Adalberta")
    paid = await fake.pay(ada.user, await _invoice(h, ada, "pack_s"))
    await _receipt(h, ada, 0, "50 credits added")
    assert paid.charge is not None
    found: list[str] = []
    async with database.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if not table.name.startswith(("billing_", "stripe_", "welcome_")):
                continue
            for row in (await conn.execute(select(table))).all():
                found.extend(v for v in row if isinstance(v, str))
    blob = " ".join(found)
    assert "Adalberta" not in blob  # no name
    assert not re.search(rf"\b{ada.id}\b", blob)  # no platform id
    assert f"telegram:{paid.charge.charge_id}" in blob and "xtr" in blob


async def test_P20_forged_and_double_pressed_stars_buttons(stars: TelegramHarness) -> None:
    h, fake = stars, stars.fake
    ada, bob = await h.person("Ada"), await h.person("Bob")
    listing = await _offers(h, ada)
    data = next(d for _, d in listing.buttons() if d.startswith("bs:") and d.endswith("pack_s"))
    # A double click: two invoices at most, each one a valid order of Ada's.
    presses = [ada.press(listing.result, data), ada.press(listing.result, data)]
    await asyncio.gather(*(fake.wait_answer(q) for q in presses))
    # Forged presses: an offer that does not exist, and Ada's button pressed by Bob.
    owner = data.split(":")[1]
    forged = ada.press(listing.result, f"bs:{owner}::0:pack_zzz", check=False)
    await fake.wait_answer(forged)
    theirs = bob.press(listing.result, data, check=False)
    await fake.wait_answer(theirs)
    invoices = fake.calls_of("sendInvoice")
    assert 1 <= len([c for c in invoices if c.ok]) <= 2
    assert all(c.chat_id == ada.chat.id for c in invoices)
    assert not any(i.payload.endswith("pack_zzz") for i in fake.invoices)
    for invoice in list(fake.invoices):
        paid = await fake.pay(ada.user, invoice)
        assert paid.pre_checkout.ok
    expected = 20 + 50 * len(fake.invoices)  # each invoice paid is one grant
    for _ in range(100):
        if await ada.balance() == expected:
            break
        await asyncio.sleep(0.05)
    assert await ada.balance() == expected


async def test_P05_both_shows_stars_and_card_offers(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    stripe = FakeStripe()
    await stripe.start()
    h = await launch(
        database,
        tmp_path,
        fake_telegram,
        worker=False,
        telegram_payments="both",
        stripe_secret_key=API_KEY,
        stripe_api_url=stripe.base_url,
        stripe_max_network_retries=0,
        **PRICED,
    )
    try:
        ada = await h.person()
        listing = await _offers(h, ada)
        kinds = [d.split(":")[0] for _, d in listing.buttons()]
        assert kinds.count("bs") == 3 and kinds.count("by") == 3
        card = next(d for _, d in listing.buttons() if d.startswith("by:"))
        mark = h.mark()
        await fake_telegram.wait_answer(ada.press(listing.result, card))
        link = await fake_telegram.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
        assert link.buttons()[0][1].startswith("http")
        assert stripe.errors == []
    finally:
        await h.stop()
        await stripe.stop()
