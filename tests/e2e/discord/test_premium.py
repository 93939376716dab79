"""Discord premium end to end (issue 12): SKUs and entitlements through the real discord.py
against the Discord fake, on SQLite and PostgreSQL. A consumable grants once and is consumed
once; a subscription grants each period and stops when it ends; lost events are caught up."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio
from sqlalchemy import select

from bot.cli import discord_reconcile
from storage.database import Database
from storage.schema import Base
from tests.conftest import make_settings
from tests.e2e.discord.conftest import DiscordHarness
from tests.e2e.discord.support import actor, answered
from tests.fakes.discord_server import TOKEN, FakeDiscord

ADA = FakeDiscord.user(4343, "Ada")


@dataclass
class Premium:
    bot: DiscordHarness
    pack_sku: str
    plan_sku: str

    async def balance(self) -> int:
        core = self.bot.core
        assert core is not None
        user_id = await core.credits.user_for(actor(ADA))
        return 0 if user_id is None else (await core.credits.balance(user_id)).available

    async def until(self, credits: int, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while await self.balance() != credits:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"balance {await self.balance()} != {credits}")
            await asyncio.sleep(0.05)


@pytest_asyncio.fixture
async def premium(fake: FakeDiscord, database: Database, tmp_path: Path) -> AsyncIterator[Premium]:
    pack_sku = fake.add_sku("Creator pack")
    plan_sku = fake.add_sku("Monthly 200", subscription=True)
    offers = [
        {"id": "pack_m", "kind": "pack", "name": "Creator pack", "credits": 150,
         "price_minor": 1299, "discord_sku_id": pack_sku},
        {"id": "plan_basic", "kind": "plan", "name": "Monthly 200", "credits": 200,
         "price_minor": 999, "discord_sku_id": plan_sku},
    ]  # fmt: skip
    harness = DiscordHarness(
        fake,
        database,
        tmp_path,
        {
            "discord_payments": "premium",
            "offers": json.dumps(offers),
            "free_credits": 0,
            "require_terms": False,
        },
        run_worker=False,
    )
    await harness.start()
    try:
        yield Premium(harness, pack_sku, plan_sku)
    finally:
        await harness.stop()


async def test_P05_buy_shows_premium_buttons_for_offers_with_a_sku(
    premium: Premium, fake: FakeDiscord
) -> None:
    ix = await fake.slash("buy", {}, user=ADA)
    message = await answered(ix)
    buttons = [c for row in message.get("components", []) for c in row["components"]]
    assert [(b["style"], b.get("sku_id")) for b in buttons] == [(6, premium.pack_sku)]
    assert not any(b.get("label") or b.get("custom_id") for b in buttons)


async def test_P05_P06_P20_a_consumable_grants_once_is_consumed_once_replays_grant_nothing(
    premium: Premium, fake: FakeDiscord
) -> None:
    entitlement = await fake.buy(ADA["id"], premium.pack_sku)
    await premium.until(150)
    await fake.wait_until(lambda: fake.consumed == [entitlement["id"]])
    # Discord redelivers the event (a resume, another shard): nothing more.
    await fake.dispatch("ENTITLEMENT_CREATE", dict(entitlement, consumed=False))
    await asyncio.sleep(0.5)
    assert await premium.balance() == 150
    assert fake.consumed == [entitlement["id"]]
    consumes = fake.requests_to("POST", r"/entitlements/\d+/consume$")
    statuses = [r.status for r in consumes]
    assert statuses[0] == 204 and set(statuses[1:]) <= {400}  # Discord refuses a second
    # A refund by Discord (ENTITLEMENT_DELETE) takes the credits back, once.
    await fake.withdraw(entitlement["id"])
    await premium.until(0)
    await fake.withdraw(entitlement["id"])
    await asyncio.sleep(0.3)
    assert await premium.balance() == 0


async def test_P05_P20_a_subscription_grants_each_period_and_stops_when_it_ends(
    premium: Premium, fake: FakeDiscord
) -> None:
    entitlement = await fake.buy(ADA["id"], premium.plan_sku)
    await premium.until(200)
    await fake.renew(entitlement["id"])
    await premium.until(400)
    await fake.dispatch("ENTITLEMENT_UPDATE", dict(entitlement))  # a redelivery
    await asyncio.sleep(0.3)
    assert await premium.balance() == 400
    await fake.end(entitlement["id"])
    await asyncio.sleep(0.5)
    assert await premium.balance() == 400
    assert fake.consumed == []  # subscriptions are never consumed
    core = premium.bot.core
    assert core is not None and core.billing.purchases is not None
    user_id = await core.credits.user_for(actor(ADA))
    assert user_id is not None
    assert await core.billing.purchases.rail_plans(user_id) is None  # the plan has ended


async def test_P05_a_lost_event_is_caught_up_at_the_next_interaction(
    premium: Premium, fake: FakeDiscord
) -> None:
    entitlement = await fake.buy(ADA["id"], premium.pack_sku, dispatch=False)
    await asyncio.sleep(0.2)
    assert await premium.balance() == 0
    await answered(await fake.slash("balance", {}, user=ADA))
    await premium.until(150)
    await fake.wait_until(lambda: fake.consumed == [entitlement["id"]])


async def test_P05_discord_reconcile_applies_a_lost_purchase_once(
    premium: Premium, fake: FakeDiscord, database: Database, tmp_path: Path
) -> None:
    entitlement = await fake.buy(ADA["id"], premium.pack_sku, dispatch=False)
    core = premium.bot.core
    assert core is not None
    settings = make_settings(
        tmp_path / "cli",
        database,
        database_schema=database.schema,
        discord_token=TOKEN,
        discord_api_url=fake.api_url,
        discord_payments="premium",
        offers=core.settings.offers,
        free_credits=0,
    )
    assert await discord_reconcile(settings, days=3) == 0
    await premium.until(150)
    assert fake.consumed == [entitlement["id"]]
    assert await discord_reconcile(settings, days=3) == 0
    assert await premium.balance() == 150
    assert fake.consumed == [entitlement["id"]]


async def test_P04_a_discord_purchase_stores_ids_and_credits_only(
    premium: Premium, fake: FakeDiscord, database: Database
) -> None:
    await fake.buy(ADA["id"], premium.pack_sku)
    await premium.until(150)
    found: list[str] = []
    async with database.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name.startswith(("billing_", "stripe_", "welcome_")):
                for row in (await conn.execute(select(table))).all():
                    found.extend(v for v in row if isinstance(v, str))
    blob = " ".join(found)
    assert not re.search(rf"\b{ADA['id']}\b", blob) and "Ada" not in blob


async def test_a_spanish_buyer_reads_the_discord_offers_and_billing_in_spanish(
    premium: Premium, fake: FakeDiscord
) -> None:
    fake.locales[ADA["id"]] = "es-ES"
    packs = (await answered(await fake.slash("buy", {}, user=ADA)))["content"]
    assert "💎 **Paquetes de créditos**, comprados a través de Discord" in packs
    assert "• Creator pack: 150 créditos" in packs
    assert "Los créditos llegan aquí en cuanto Discord confirma la compra." in packs
    plans = (await answered(await fake.slash("subscribe", {}, user=ADA)))["content"]
    assert "**Planes mensuales**" in plans and "Monthly 200: 200 créditos cada mes" in plans
    billing = (await answered(await fake.slash("billing", {}, user=ADA)))["content"]
    assert billing.startswith("Las compras hechas a través de Discord las gestiona Discord")
    assert "bought through" not in packs + plans and "managed by" not in billing
