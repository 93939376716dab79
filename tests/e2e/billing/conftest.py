"""Billing end to end: imagebot's core and HTTP server, the real ``stripe`` library, the
Stripe fake, and webhooks signed exactly as Stripe signs them. Every test runs on SQLite
and on PostgreSQL (the ``database`` fixture) and ends with the ledger invariants checked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp import ClientSession, web
from sqlalchemy import func, select

from bot.web.server import build_http_app
from core.app import Core
from core.types import Actor, Announcement, BalanceView
from payments.stripe.gateway import StripeGateway
from storage.billing.models import StripeEvent
from storage.database import Database
from storage.models import LedgerEntry
from tests.fakes.notifier import RecordingNotifier
from tests.fakes.stripe_server import API_KEY, WEBHOOK_SECRET, FakeStripe, WebhookSender
from tests.helpers import actor, make_core

PRICED = {
    "max_queued_per_user": 100,
    "prices": '{"demo": {"low": 10, "medium": 10, "high": 10, "auto": 10}}',
}
"""Ten credits an image, so a few jobs spend a pack."""


@dataclass
class Billing:
    """One running imagebot with Stripe configured, and handles on everything around it."""

    core: Core
    notes: RecordingNotifier
    stripe: FakeStripe
    sender: WebhookSender
    base_url: str
    db: Database
    clicks: int = 0
    _http: ClientSession | None = field(default=None, repr=False)

    @property
    def gateway(self) -> StripeGateway:
        gateway = self.core.billing.gateway
        assert isinstance(gateway, StripeGateway)
        return gateway

    async def link(self, offer_id: str, who: Actor | None = None, *, key: str | None = None) -> str:
        """What /buy or /subscribe does when a button is pressed: the checkout URL."""
        self.clicks += 1
        reply = await self.core.billing.checkout_link(
            who or actor(), offer_id, request_key=key or f"press-{self.clicks}"
        )
        return reply.url

    async def checkout(self, offer_id: str, who: Actor | None = None) -> dict[str, Any]:
        """A checkout session made by imagebot, as Stripe holds it."""
        return self.stripe.session_for(await self.link(offer_id, who))

    async def deliver(self, *events: dict[str, Any]) -> list[int]:
        """Stripe delivers each event (signed); returns the HTTP statuses."""
        statuses = []
        for event in events:
            status, _ = await self.sender.send(event)
            statuses.append(status)
        await self.gateway.drain()
        return statuses

    async def buy(self, offer_id: str = "pack_m", who: Actor | None = None) -> dict[str, Any]:
        """A pack bought and every event delivered; returns the session."""
        session = await self.checkout(offer_id, who)
        assert set(await self.deliver(*self.stripe.complete_session(session["id"]))) == {200}
        return self.stripe.sessions[session["id"]]

    async def balance(self, who: Actor | None = None) -> BalanceView:
        user_id = await self.core.credits.user_for(who or actor())
        assert user_id is not None
        return await self.core.credits.balance(user_id, recent=50)

    def dms(self, who: Actor | None = None) -> list[str]:
        """Texts of the direct messages the user got, in order."""
        who = who or actor()
        return [
            e.text
            for t, e in self.notes.events
            if isinstance(e, Announcement)
            and t.chat_id == who.user_id
            and t.platform == who.platform
            and t.extra.get("dm") == "1"
        ]

    async def get(self, path: str) -> tuple[int, str]:
        if self._http is None:
            self._http = ClientSession()
        async with self._http.get(self.base_url + path) as response:
            return response.status, await response.text()

    async def count(self, column: Any, *where: Any) -> int:
        async with self.db.engine.connect() as conn:
            stmt = select(func.count(column))
            if where:
                stmt = stmt.where(*where)
            return int((await conn.execute(stmt)).scalar_one())

    async def events_recorded(self) -> int:
        return await self.count(StripeEvent.event_id)

    async def ledger_rows(self, kind: str) -> int:
        return await self.count(LedgerEntry.id, LedgerEntry.kind == kind)


async def start_billing(
    database: Database, tmp_path: Path, stripe: FakeStripe, **settings: Any
) -> tuple[Billing, web.AppRunner]:
    """A core with Stripe configured and its HTTP server on a free port."""
    settings.setdefault("stripe_secret_key", API_KEY)
    settings.setdefault("stripe_webhook_secret", WEBHOOK_SECRET)
    settings.setdefault("stripe_api_url", stripe.base_url)
    settings.setdefault("stripe_max_network_retries", 0)
    settings.setdefault("public_url", "https://bot.example.net")
    core, notes = await make_core(database, tmp_path, **settings)
    runner = web.AppRunner(build_http_app(core), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    sender = WebhookSender(f"{base}/stripe/webhook", WEBHOOK_SECRET)
    return Billing(core, notes, stripe, sender, base, database), runner


@pytest_asyncio.fixture
async def stripe_fake() -> AsyncIterator[FakeStripe]:
    """The Stripe fake; its own crashes fail the test."""
    fake = FakeStripe()
    await fake.start()
    try:
        yield fake
        assert fake.errors == [], fake.errors
    finally:
        await fake.stop()


@pytest_asyncio.fixture
async def billing(
    database: Database, tmp_path: Path, stripe_fake: FakeStripe
) -> AsyncIterator[Billing]:
    """imagebot with billing on, a user ``test:1001`` with the 20 free credits, images at
    ten credits each."""
    harness, runner = await start_billing(database, tmp_path, stripe_fake, **PRICED)
    try:
        await harness.core.users.register(actor())
        yield harness
    finally:
        await harness.sender.close()
        if harness._http is not None:
            await harness._http.close()
        await runner.cleanup()
        await harness.core.aclose()
