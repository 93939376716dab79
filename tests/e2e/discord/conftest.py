"""Fixtures of the Discord tests: the loopback fake Discord and imagebot's real adapter
(discord.py) connected to it, on a real database and the demo model."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio

from bot.discord.app import RunningAdapter, start
from core.app import Core
from storage.database import Database
from tests.conftest import ledger_problems
from tests.fakes.discord_server import TOKEN, FakeDiscord
from tests.fakes.notifier import RecordingNotifier
from tests.helpers import make_core

GUILD = "800000000000000001"
CHANNEL = "900000000000000001"


@dataclass
class DiscordHarness:
    """The fake Discord and the imagebot process talking to it; ``restart`` stops the
    adapter and the core and builds new ones on the same database and data folder."""

    fake: FakeDiscord
    database: Database
    tmp_path: Path
    settings: dict[str, Any]
    core: Core | None = None
    notes: RecordingNotifier | None = None
    """Events of jobs whose reply target is the ``test`` platform (made through core)."""
    adapter: RunningAdapter | None = None
    min_interval: float = 0.02
    run_worker: bool = True

    async def start(self) -> None:
        """Build a core, start the Discord adapter and the worker."""
        self.core, self.notes = await make_core(
            self.database,
            self.tmp_path,
            discord_token=TOKEN,
            discord_api_url=self.fake.api_url,
            discord_gateway_url=self.fake.gateway_url,
            **self.settings,
        )
        adapter = await start(self.core)
        assert isinstance(adapter, RunningAdapter)
        self.adapter = adapter
        adapter.bot.notifier.min_interval = self.min_interval
        if self.run_worker:
            await self.start_worker()

    async def start_worker(self) -> None:
        """Start the job workers (tests that need a job to wait start them later)."""
        assert self.core is not None
        await self.core.worker.start(exclusive=self.core.exclusive_worker)

    async def stop(self) -> None:
        """Stop the adapter and the core (the database stays)."""
        if self.adapter is not None:
            await self.adapter()
            self.adapter = None
        if self.core is not None:
            await self.core.aclose()
            self.core = None

    async def restart(self) -> None:
        """A new imagebot process, as far as the fake can tell."""
        await self.stop()
        await self.start()


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """The loopback Discord; it must never have crashed."""
    server = FakeDiscord()
    await server.start()
    try:
        yield server
        assert server.errors == [], server.errors
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def sqlite_db(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Database]:
    """A fresh SQLite database (the adapter's tests do not depend on the database kind;
    the P23/P24 and restart tests also run on PostgreSQL through ``database``)."""
    path = tmp_path / "imagebot.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        yield db
        problems = await ledger_problems(db)
        assert not problems, problems
    finally:
        await db.dispose()


async def _harness(
    fake: FakeDiscord, db: Database, tmp_path: Path, **settings: Any
) -> AsyncIterator[DiscordHarness]:
    harness = DiscordHarness(fake, db, tmp_path, settings)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


@pytest_asyncio.fixture
async def bot(
    fake: FakeDiscord, sqlite_db: Database, tmp_path: Path
) -> AsyncIterator[DiscordHarness]:
    """imagebot's Discord adapter on SQLite, terms not required, demo model."""
    async for harness in _harness(fake, sqlite_db, tmp_path):
        yield harness


@pytest_asyncio.fixture
async def bot_any_db(
    fake: FakeDiscord, database: Database, tmp_path: Path
) -> AsyncIterator[DiscordHarness]:
    """The same on SQLite and on PostgreSQL."""
    async for harness in _harness(fake, database, tmp_path):
        yield harness
