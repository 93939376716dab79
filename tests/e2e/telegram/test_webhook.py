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
