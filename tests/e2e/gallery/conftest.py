"""The web gallery end to end: imagebot's core and its HTTP server on a free port, with
IMAGEBOT_PUBLIC_URL pointing at it, results made by the demo model on the test database
(SQLite and PostgreSQL), and an aiohttp client with its own cookie jar per browser."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest_asyncio
from aiohttp import ClientSession, CookieJar, web

from bot.web.gallery import SignInLimiter, install_gallery_routes
from bot.web.server import build_http_app
from core.app import Core
from core.clock import ManualClock
from core.types import Actor
from storage.database import Database
from tests.fakes.notifier import RecordingNotifier
from tests.helpers import actor, make_core, request

BOT_TOKEN = "123456:TEST-gallery-token_abcdefghijklmnopqrstu"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_data(
    user_id: int | str,
    *,
    token: str = BOT_TOKEN,
    auth_date: int | None = None,
    forge: bool = False,
    extra: dict[str, str] | None = None,
) -> str:
    """Telegram's ``initData`` for a Mini App launch, signed as Telegram signs it
    (core.telegram.org/bots/webapps: key = HMAC_SHA256("WebAppData", bot_token))."""
    fields = {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps(
            {"id": int(user_id), "first_name": "Ada", "language_code": "en"},
            separators=(",", ":"),
        ),
        "auth_date": str(
            auth_date if auth_date is not None else int(datetime.now(UTC).timestamp())
        ),
        **(extra or {}),
    }
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    digest = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    if forge:
        digest = ("0" if digest[0] != "0" else "1") + digest[1:]
    return urlencode({**fields, "hash": digest})


@dataclass
class Gallery:
    """One running imagebot serving the gallery."""

    core: Core
    notes: RecordingNotifier
    base_url: str
    db: Database
    clock: ManualClock
    clients: list[ClientSession] = field(default_factory=list)

    async def make(
        self,
        count: int = 1,
        who: Actor | None = None,
        prompt: str = "a red fox in snow",
        **options: Any,
    ) -> list[str]:
        """``count`` finished results of ``who``; returns their job ids, oldest first."""
        ids = []
        for i in range(count):
            self.clock.advance(seconds=1)
            sub = await self.core.generation.submit(request(who, f"{prompt} {i}", **options))
            ids.append(sub.job.id)
        await self.core.worker.run_until_idle()
        return ids

    def browser(self) -> ClientSession:
        """A new client with an empty cookie jar (another browser)."""
        client = ClientSession(cookie_jar=CookieJar(unsafe=True))
        self.clients.append(client)
        return client

    async def link(self, who: Actor | None = None) -> str:
        """What /gallery answers in the chat: a one-time sign-in link."""
        return await self.core.gallery_access.sign_in_link(who or actor())

    async def signed_in(self, who: Actor | None = None) -> ClientSession:
        """A browser signed in as ``who`` through a fresh link."""
        client = self.browser()
        token = (await self.link(who)).rsplit("/", 1)[1]
        async with client.post(
            f"{self.base_url}/gallery/signin", data={"token": token}, allow_redirects=False
        ) as r:
            assert r.status == 303, await r.text()
        return client


async def start_gallery(
    database: Database, tmp_path: Path, *, limiter: SignInLimiter | None = None, **settings: Any
) -> tuple[Gallery, web.AppRunner]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings.setdefault("public_url", base)
    settings.setdefault("telegram_token", BOT_TOKEN)
    settings.setdefault("max_queued_per_user", 1000)
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    core, notes = await make_core(database, tmp_path, clock=clock, **settings)
    app = web.Application()
    if limiter is not None:
        install_gallery_routes(core, app, limiter=limiter)
    else:
        app = build_http_app(core)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return Gallery(core, notes, base, database, clock), runner


@pytest_asyncio.fixture
async def gallery(database: Database, tmp_path: Path) -> AsyncIterator[Gallery]:
    """imagebot serving the gallery at its public URL, on SQLite and PostgreSQL."""
    harness, runner = await start_gallery(database, tmp_path)
    try:
        yield harness
    finally:
        for client in harness.clients:
            await client.close()
        await runner.cleanup()
        await harness.core.aclose()
