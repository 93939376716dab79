"""Buying credits through Discord end to end (issue 5, P05): ``/buy`` -> a pack button -> an
ephemeral checkout link -> Stripe's signed webhook at imagebot's HTTP server -> a DM
"credits added" -> ``/imagine`` paid with them. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio
from aiohttp import web

from bot.web.server import build_http_app
from payments.stripe.gateway import StripeGateway
from storage.database import Database
from tests.e2e.discord.conftest import GUILD, DiscordHarness
from tests.e2e.discord.support import actor, answered, buttons, result
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.stripe_server import API_KEY, WEBHOOK_SECRET, FakeStripe, WebhookSender

ADA = FakeDiscord.user(4242, "Ada")


@dataclass
class Shop:
    """The Discord harness with Stripe configured, and imagebot's HTTP server."""

    bot: DiscordHarness
    stripe: FakeStripe
    sender: WebhookSender

    async def deliver(self, events: list[dict]) -> None:
        """Stripe delivers each event, signed as Stripe signs them."""
        for event in events:
            status, _ = await self.sender.send(event)
            assert status == 200
        assert self.bot.core is not None
        gateway = self.bot.core.billing.gateway
        assert isinstance(gateway, StripeGateway)
        await gateway.drain()


@pytest_asyncio.fixture
async def shop(fake: FakeDiscord, database: Database, tmp_path: Path) -> AsyncIterator[Shop]:
    stripe = FakeStripe()
    await stripe.start()
    harness = DiscordHarness(
        fake,
        database,
        tmp_path,
        {
            "stripe_secret_key": API_KEY,
            "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_api_url": stripe.base_url,
            "stripe_max_network_retries": 0,
            "public_url": "https://bot.example.net",
            "free_credits": 0,
            "prices": '{"demo": {"low": 10, "medium": 10, "high": 10, "auto": 10}}',
        },
    )
    await harness.start()
    assert harness.core is not None
    runner = web.AppRunner(build_http_app(harness.core), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sender = WebhookSender(f"http://127.0.0.1:{port}/stripe/webhook", WEBHOOK_SECRET)
    try:
        yield Shop(harness, stripe, sender)
        assert stripe.errors == [], stripe.errors
    finally:
        await sender.close()
        await runner.cleanup()
        await harness.stop()
        await stripe.stop()


async def test_P05_buy_through_discord_then_imagine_with_the_credits(
    shop: Shop, fake: FakeDiscord
) -> None:
    core = shop.bot.core
    assert core is not None
    broke = await fake.slash("imagine", {"prompt": "a red fox"}, user=ADA, guild_id=GUILD)
    await broke.wait(lambda i: any("/buy" in m["content"] for m in i.followups))
    assert "balance is 0" in broke.followups[-1]["content"]

    offers = await fake.slash("buy", user=ADA, guild_id=GUILD)
    listing = await answered(offers)
    assert offers.ephemeral and "Credit packs" in listing["content"]
    [label] = [b for b in buttons(listing) if b.startswith("Starter pack")]
    press = await fake.press(listing, buttons(listing)[label], user=ADA)
    link = await answered(press)
    assert press.ephemeral  # the link is Ada's alone
    url = buttons(link)["Open"]
    session = shop.stripe.session_for(url)
    assert session["client_reference_id"] == str(await core.credits.user_for(actor(ADA)))

    await shop.deliver(shop.stripe.complete_session(session["id"]))
    await fake.wait_until(lambda: fake.dm_messages(ADA["id"]))
    [dm] = fake.dm_messages(ADA["id"])
    assert "50 credits added" in dm["content"]
    assert dm["allowed_mentions"] == {"parse": []}

    paid = await result(
        await fake.slash("imagine", {"prompt": "a red fox"}, user=ADA, guild_id=GUILD)
    )
    assert paid["attachments"] and "10 credits" in paid["content"]
    assert "balance 40" in paid["content"]
    balance = await fake.slash("balance", user=ADA, guild_id=GUILD)
    assert "**40 credits**" in (await answered(balance))["content"]


async def test_P05_a_double_click_on_a_pack_makes_one_checkout_session(
    shop: Shop, fake: FakeDiscord
) -> None:
    offers = await fake.slash("buy", user=ADA, guild_id=GUILD)
    listing = await answered(offers)
    button = next(v for k, v in buttons(listing).items() if k.startswith("Starter pack"))
    first, second = await asyncio.gather(
        fake.press(listing, button, user=ADA), fake.press(listing, button, user=ADA)
    )
    links = [buttons(await answered(ix))["Open"] for ix in (first, second)]
    assert links[0] == links[1]
    assert len(shop.stripe.sessions) == 1
    # A new /buy is a new choice: a new session.
    again = await answered(await fake.slash("buy", user=ADA, guild_id=GUILD))
    third = await fake.press(again, button, user=ADA)
    assert buttons(await answered(third))["Open"] != links[0]
    assert len(shop.stripe.sessions) == 2


async def test_P05_a_plan_bought_through_discord_shows_in_balance(
    shop: Shop, fake: FakeDiscord
) -> None:
    plans = await answered(await fake.slash("subscribe", user=ADA))
    assert "Monthly plans" in plans["content"]
    button = next(v for k, v in buttons(plans).items() if k.startswith("Monthly 200"))
    link = await answered(await fake.press(plans, button, user=ADA))
    session = shop.stripe.session_for(buttons(link)["Open"])
    assert session["mode"] == "subscription"
    await shop.deliver(shop.stripe.complete_session(session["id"]))
    await fake.wait_until(lambda: fake.dm_messages(ADA["id"]))
    assert "200 credits added" in fake.dm_messages(ADA["id"])[-1]["content"]
    shown = (await answered(await fake.slash("balance", user=ADA)))["content"]
    assert "**200 credits**" in shown
    assert "Plan: Monthly 200, 200 credits a month, renews on " in shown
