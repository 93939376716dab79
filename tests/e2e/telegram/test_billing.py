"""Issue 5 end to end through Telegram: /buy, a pack button, the checkout link in the
private chat, Stripe's signed webhook on imagebot's HTTP server, the direct message that
the credits arrived, and an /imagine that now succeeds. On both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from bot.web.server import build_http_app, start_http
from storage.database import Database
from tests.e2e.telegram.conftest import free_port, launch
from tests.fakes.stripe_server import API_KEY, WEBHOOK_SECRET, FakeStripe, WebhookSender
from tests.fakes.telegram_server import FakeTelegram


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


async def test_P05_buy_a_pack_in_telegram_then_imagine(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram, stripe_fake: FakeStripe
) -> None:
    port = free_port()
    telegram = await launch(
        database,
        tmp_path,
        fake_telegram,
        free_credits=0,
        http_port=port,
        public_url="https://bot.example.net",
        stripe_secret_key=API_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_url=stripe_fake.base_url,
        stripe_max_network_retries=0,
        telegram_payments="stripe",
    )
    runner = await start_http(telegram.core, build_http_app(telegram.core))
    telegram.stoppers.insert(1, runner.cleanup)
    sender = WebhookSender(f"http://127.0.0.1:{port}/stripe/webhook", WEBHOOK_SECRET)
    try:
        fake, core = telegram.fake, telegram.core
        ada = await telegram.person()
        mark = telegram.mark()
        ada.say("/imagine a fox --quality low")
        await fake.wait_call(
            "editMessageText", chat_id=ada.chat.id, after=mark, where=lambda c: "/buy" in c.text
        )

        # In a group /buy points to the private chat: links are sent privately.
        group = fake.group()
        mark = telegram.mark()
        ada.say("/buy", chat=group)
        pointer = await fake.wait_call("sendMessage", chat_id=group.id, after=mark)
        assert "private chat" in pointer.text

        mark = telegram.mark()
        ada.say("/buy")
        packs = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
        assert "Credit packs" in packs.text
        _, data = packs.buttons()[0]
        # A double click: both presses at once, and one more a moment later.
        mark = telegram.mark()
        presses = [ada.press(packs.result, data), ada.press(packs.result, data)]
        await asyncio.gather(*(fake.wait_answer(q) for q in presses))
        await fake.wait_answer(ada.press(packs.result, data))
        await fake.wait_for(
            lambda: len([c for c in fake.calls[mark:] if c.method == "sendMessage"]) == 3,
            what="three checkout links",
        )
        links = {
            url for c in fake.calls[mark:] if c.method == "sendMessage" for _, url in c.buttons()
        }
        assert len(links) == 1 and len(stripe_fake.sessions) == 1
        (url,) = links
        session = stripe_fake.session_for(url)
        assert session["client_reference_id"]

        # Ada pays; Stripe delivers the signed events; she is told in the private chat.
        mark = telegram.mark()
        for event in stripe_fake.complete_session(session["id"]):
            status, _ = await sender.send(event)
            assert status == 200
        gateway = core.billing.gateway
        await gateway.drain()  # type: ignore[union-attr]
        dm = await fake.wait_call(
            "sendMessage",
            chat_id=ada.chat.id,
            after=mark,
            where=lambda c: "credits added" in c.text,
        )
        assert "Payment received" in dm.text
        assert await ada.balance() > 0

        mark = telegram.mark()
        ada.say("/imagine a fox --quality low")
        result = await telegram.result(ada.chat.id, after=mark)
        assert result.method == "sendPhoto"
    finally:
        await sender.close()
        await telegram.stop()
