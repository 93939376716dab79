"""Webhook mode: updates posted to imagebot's own HTTP server, each checked for the secret."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import ClientSession

from storage.database import Database
from tests.e2e.telegram.conftest import launch
from tests.fakes.telegram_server import FakeTelegram


async def test_webhook_checks_the_secret_and_handles_each_update_once(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    telegram = await launch(database, tmp_path, fake_telegram, webhook=True)
    try:
        fake = telegram.fake
        assert fake.webhook_url.endswith("/telegram/webhook")
        assert fake.webhook_secret == "s3cret_Token-for-tests"
        assert not fake.calls_of("getUpdates")
        ada = await telegram.person()

        # Wrong and missing secrets: 403, and nothing is processed.
        update, _ = fake.text_update(ada.user, ada.chat, "/help")
        assert (await fake.post_webhook(update, secret="wrong")).status == 403
        assert (await fake.post_webhook(update, secret=None)).status == 403
        async with (
            ClientSession() as session,
            session.post(
                fake.webhook_url,
                data=json.dumps(update),
                headers={
                    "Content-Type": "text/plain",
                    "X-Telegram-Bot-Api-Secret-Token": "s3cret_Token-for-tests",
                },
            ) as resp,
        ):
            assert resp.status == 403
        await asyncio.sleep(0.2)
        assert not fake.calls_of("sendMessage")

        # The right secret: handled.
        mark = telegram.mark()
        assert (await fake.post_webhook(update)).status == 200
        answer = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
        assert "/imagine" in answer.text

        # Telegram redelivers an /imagine (say our answer was lost): one job, one reply.
        update, _ = fake.text_update(ada.user, ada.chat, "/imagine a fox --quality low")
        mark = telegram.mark()
        assert (await fake.post_webhook(update)).status == 200
        assert (await fake.post_webhook(update)).status == 200
        await telegram.result(ada.chat.id, after=mark)
        await asyncio.sleep(0.2)
        statuses = [c for c in fake.calls_of("sendMessage", ada.chat.id)[1:] if "Got it" in c.text]
        assert len(statuses) == 1
        assert (await telegram.core.history.page(ada.actor)).total == 1
    finally:
        await telegram.stop()


async def test_two_replicas_handle_an_update_once(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    """Issue 8: webhook replicas (two imagebot HTTP servers, two cores, one database)
    receiving the same update: the database lets exactly one of them handle it."""
    first = await launch(database, tmp_path / "a", fake_telegram, webhook=True)
    second = await launch(database, tmp_path / "b", fake_telegram, webhook=True, worker=False)
    try:
        fake = fake_telegram
        urls = [first.adapter.webhook_url, second.adapter.webhook_url]
        assert urls[0] != urls[1] and all(urls)
        ada = await first.person()

        update, _ = fake.text_update(ada.user, ada.chat, "/help")
        mark = first.mark()
        results = await asyncio.gather(*(fake.post_webhook(update, url=u) for u in urls))
        assert [r.status for r in results] == [200, 200]
        await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
        await asyncio.sleep(0.3)
        assert len(fake.calls_of("sendMessage", ada.chat.id)) == 1

        # An /imagine delivered to both replicas (and again to the first): one job.
        update, _ = fake.text_update(ada.user, ada.chat, "/imagine a heron --quality low")
        mark = first.mark()
        results = await asyncio.gather(
            *(fake.post_webhook(update, url=u) for u in [*urls, urls[0], urls[1]])
        )
        assert {r.status for r in results} == {200}
        await first.result(ada.chat.id, after=mark)
        await asyncio.sleep(0.3)
        statuses = [
            c for c in fake.calls[mark:] if c.method == "sendMessage" and "Got it" in c.text
        ]
        assert len(statuses) == 1
        assert (await first.core.history.page(ada.actor)).total == 1
    finally:
        await second.stop()
        await first.stop()
