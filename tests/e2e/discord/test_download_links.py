"""Full-resolution downloads that do not pass through Discord (issue #15, P23), pressed
through discord.py against the loopback Discord: with the S3 store the Full resolution
button answers privately with a link button to a presigned URL of exactly the stored
image; with an encrypted local store and a public address, to imagebot's signed link,
streamed decrypted; another member's press is refused; /history's download buttons
give links too."""

from __future__ import annotations

import os
from base64 import urlsafe_b64encode
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.web.server import build_http_app
from storage.database import Database
from tests.e2e.discord.conftest import GUILD, DiscordHarness
from tests.e2e.discord.support import actor, buttons, finished, job_of, result
from tests.e2e.telegram.conftest import free_port
from tests.fakes.discord_server import FakeDiscord

ADA = FakeDiscord.user(4242, "Ada")
EVE = FakeDiscord.user(6666, "Eve")
KEY = urlsafe_b64encode(os.urandom(32)).decode()


async def started(
    fake: FakeDiscord, db: Database, tmp_path: Path, **settings: Any
) -> DiscordHarness:
    bot = DiscordHarness(fake, db, tmp_path, settings)
    await bot.start()
    return bot


async def made(bot: DiscordHarness, fake: FakeDiscord, prompt: str) -> dict:
    ix = await fake.slash("imagine", {"prompt": prompt}, user=ADA, guild_id=GUILD)
    message = await result(ix)
    await finished(bot.core, ADA, job_of(message))
    return message


async def pressed(fake: FakeDiscord, message: dict, label: str, user: dict = ADA) -> dict:
    ix = await fake.press(message, buttons(message)[label], user=user)
    await ix.wait(lambda i: i.acked)
    await ix.wait(lambda i: i.original and (i.original["components"] or i.original["content"]))
    assert ix.ephemeral
    return ix.original


async def test_P23_full_resolution_over_s3_is_a_private_presigned_link(
    fake: FakeDiscord, sqlite_only: Database, tmp_path: Path, s3_settings: dict[str, Any]
) -> None:
    bot = await started(fake, sqlite_only, tmp_path, **s3_settings)
    try:
        assert bot.core is not None
        message = await made(bot, fake, "a red fox in snow")
        _, stored = await bot.core.history.download(actor(ADA), job_of(message), 0)
        answer = await pressed(fake, message, "Full resolution")
        assert not answer["attachments"] and "15 min" in answer["content"]
        url = buttons(answer)["⬇️ Download full resolution"]
        assert url.startswith(s3_settings["s3_endpoint_url"] + "/") and "X-Amz-Signature" in url
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert resp.status == 200 and await resp.read() == stored
        # Eve presses Ada's button: refused, no link.
        refused = await pressed(fake, message, "Full resolution", user=EVE)
        assert "belong to the person who made this request" in refused["content"]
        assert not refused["components"]
    finally:
        await bot.stop()


async def test_P23_encrypted_local_store_links_to_imagebots_streaming_route(
    fake: FakeDiscord, sqlite_only: Database, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bot = await started(fake, sqlite_only, tmp_path, encryption_key=KEY, public_url=base)
    assert bot.core is not None
    runner = web.AppRunner(build_http_app(bot.core), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        message = await made(bot, fake, "a heron in fog")
        _, stored = await bot.core.history.download(actor(ADA), job_of(message), 0)
        answer = await pressed(fake, message, "Full resolution")
        url = buttons(answer)["⬇️ Download full resolution"]
        assert url.startswith(f"{base}/files/")
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Length"] == str(len(stored))
            assert await resp.read() == stored
        # /history's download button for that line: a link as well.
        ix = await fake.slash("history", user=ADA, guild_id=GUILD)
        await ix.wait(lambda i: i.original and i.original["components"])
        page = ix.original
        label = next(k for k in buttons(page) if k.startswith("⬇"))
        answer = await pressed(fake, page, label)
        [link] = [v for v in buttons(answer).values() if v.startswith(f"{base}/files/")]
        async with aiohttp.ClientSession() as http, http.get(link) as resp:
            assert await resp.read() == stored
    finally:
        await runner.cleanup()
        await bot.stop()
