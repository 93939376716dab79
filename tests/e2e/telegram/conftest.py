"""Fixtures for the Telegram adapter: the fake Bot API server and a running bot.

``telegram`` starts :class:`TelegramHarness`: a core on the test database (demo model
unless a test passes another), the real python-telegram-bot adapter pointed at the fake,
long polling, the worker running, progress edits spaced 0.05 s apart instead of 1 s.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest_asyncio

from bot.telegram.app import TelegramAdapter
from bot.web.server import build_http_app, start_http
from core.app import Core
from core.generation.ports import ImageModel
from core.types import Actor
from storage.database import Database
from tests.fakes.telegram_server import TOKEN, BotCall, FakeChat, FakeTelegram, FakeUser
from tests.helpers import make_core


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Person:
    """A user of the fake Telegram, in their private chat with the bot."""

    harness: TelegramHarness
    user: FakeUser
    chat: FakeChat

    @property
    def id(self) -> int:
        """The Telegram user id."""
        return self.user.id

    @property
    def actor(self) -> Actor:
        """The core's view of this person."""
        return Actor("telegram", str(self.user.id))

    def say(self, text: str, *, chat: FakeChat | None = None, **kw: Any) -> dict[str, Any]:
        """Send a text message (or command)."""
        return self.harness.fake.send_text(self.user, chat or self.chat, text, **kw)

    def press(self, message: dict[str, Any], data: str, **kw: Any) -> str:
        """Press a button; returns the callback query id."""
        return self.harness.fake.press(self.user, message, data, **kw)

    async def balance(self) -> int:
        """Available credits, straight from core."""
        core = self.harness.core
        user_id = await core.credits.user_for(self.actor)
        assert user_id is not None
        return (await core.credits.balance(user_id)).available


@dataclass
class TelegramHarness:
    """A running bot against the fake, with shortcuts for tests."""

    core: Core
    fake: FakeTelegram
    adapter: TelegramAdapter
    stoppers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def person(self, name: str = "Ada", *, accepted: bool = True) -> Person:
        """A new user; ``accepted`` has them accept the terms (through core) first."""
        user = self.fake.user(name)
        person = Person(self, user, self.fake.private_chat(user))
        if accepted:
            await self.core.onboarding.accept(Actor("telegram", str(user.id), name))
        return person

    def mark(self) -> int:
        """Index of the next recorded call."""
        return len(self.fake.calls)

    async def result(self, chat_id: int, *, after: int = 0, timeout: float = 15.0) -> BotCall:
        """The next result message with buttons (a photo, a document, the message that
        follows an album, or the status message showing a preview edited into the result)."""

        def is_result(call: BotCall) -> bool:
            return any(data.startswith("rr:") for _, data in call.buttons())

        for_methods = ("sendPhoto", "sendDocument", "sendMessage", "editMessageMedia")
        return await self.fake.wait_for(
            lambda: next(
                (
                    c
                    for c in self.fake.calls[after:]
                    if c.method in for_methods and c.ok and c.chat_id == chat_id and is_result(c)
                ),
                None,
            ),
            timeout=timeout,
            what="a result with buttons",
        )

    def button(self, call: BotCall, prefix: str) -> str:
        """The callback data of the first button of ``call`` starting with ``prefix``."""
        for _, data in call.buttons():
            if data.startswith(prefix):
                return data
        raise AssertionError(f"no {prefix} button in {call.buttons()}")

    async def stop(self) -> None:
        """Stop everything started (last first)."""
        while self.stoppers:
            await self.stoppers.pop()()


async def launch(
    database: Database,
    tmp_path: Path,
    fake: FakeTelegram,
    *,
    model: ImageModel | None = None,
    webhook: bool = False,
    worker: bool = True,
    adapter_options: dict[str, Any] | None = None,
    **settings: Any,
) -> TelegramHarness:
    """Start a core and the Telegram adapter against ``fake``."""
    settings.setdefault("require_terms", True)
    settings.setdefault("telegram_rate_limit", False)
    if webhook:
        port = free_port()
        settings.update(
            http_port=port,
            telegram_webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
            telegram_webhook_secret="s3cret_Token-for-tests",
        )
    core, _ = await make_core(
        database,
        tmp_path,
        model=model,
        telegram_token=TOKEN,
        telegram_api_url=fake.base_url,
        **settings,
    )
    options: dict[str, Any] = {"progress_interval": 0.05, "album_wait": 0.2, "poll_timeout": 2}
    options.update(adapter_options or {})
    adapter = TelegramAdapter(core, **options)
    harness = TelegramHarness(core, fake, adapter)
    harness.stoppers.append(core.aclose)
    if webhook:
        app = build_http_app(core)
        adapter.install_routes(app)
        runner = await start_http(core, app)
        harness.stoppers.append(runner.cleanup)
    await adapter.start()
    harness.stoppers.append(adapter.stop)
    if worker:
        await core.worker.start(exclusive=core.exclusive_worker)
        harness.stoppers.append(lambda: core.worker.stop(grace=1))
    return harness


@pytest_asyncio.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    """The loopback Bot API server; it must never have crashed."""
    fake = FakeTelegram()
    await fake.start()
    try:
        yield fake
        assert fake.errors == [], fake.errors
    finally:
        await fake.stop()


@pytest_asyncio.fixture
async def telegram(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> AsyncIterator[TelegramHarness]:
    """A bot on the demo model, long polling the fake, worker running."""
    harness = await launch(database, tmp_path, fake_telegram)
    try:
        yield harness
    finally:
        await harness.stop()


@pytest_asyncio.fixture
async def telegram_sqlite(
    sqlite_only: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> AsyncIterator[TelegramHarness]:
    """The same bot, on SQLite only: for behaviour of the adapter that does not depend on
    the database (the core's paths run on both databases in the other tests)."""
    harness = await launch(sqlite_only, tmp_path, fake_telegram)
    try:
        yield harness
    finally:
        await harness.stop()
