"""What the Telegram handlers and the notifier share for one running bot."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from telegram import Bot
from telegram.ext import CallbackContext

from bot.telegram.media import AlbumCache
from bot.telegram.outbox import Outbox
from bot.telegram.status import StatusBoard
from core.app import Core
from core.generation.models import ModelSpec


class FirstAnswers:
    """Commands whose first answer has not gone out yet.

    Work that follows a first answer (downloads, the submit transaction) waits until every
    command received so far has had its answer, or ``patience`` seconds: under a burst,
    every person hears back first, and the bookkeeping follows.
    """

    def __init__(self, *, patience: float = 1.0) -> None:
        self.patience = patience
        self._pending = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Around sending one first answer."""
        self._pending += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._pending -= 1
            if self._pending == 0:
                self._quiet.set()

    async def wait(self) -> None:
        """Until no first answer is waiting (or ``patience`` ran out)."""
        if self._quiet.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), self.patience)


class SeenUpdates:
    """The last ``size`` update ids, so a redelivered update is handled once."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._ids: OrderedDict[int, None] = OrderedDict()

    def first_time(self, update_id: int) -> bool:
        """True the first time ``update_id`` is seen."""
        if update_id in self._ids:
            return False
        self._ids[update_id] = None
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


@dataclass
class Runtime:
    """The core, the bot and the adapter's in-memory helpers."""

    core: Core
    bot: Bot
    outbox: Outbox = field(default_factory=Outbox)
    board: StatusBoard = field(default_factory=StatusBoard)
    albums: AlbumCache = field(default_factory=AlbumCache)
    seen: SeenUpdates = field(default_factory=SeenUpdates)
    album_wait: float = 1.0
    """How long to wait for the rest of an album after its captioned member."""
    uploads: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(8))
    """Uploads of stored images at once (each streams a file from disk)."""
    submits: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(16))
    """Commands past their first answer (downloading inputs, submitting) at once."""
    first_answers: FirstAnswers = field(default_factory=FirstAnswers)
    document_limit: int = 50_000_000
    """The largest document a bot may send (Telegram's limit): larger exports go as a link."""

    @property
    def spec(self) -> ModelSpec:
        """The default image model's table of options, as the running catalog has it."""
        generation = self.core.generation
        return generation.catalog.spec(generation.choose_model(None))

    @property
    def choose_model(self) -> bool:
        """True when users have more than one model to choose from."""
        return len(self.core.generation.offered_models()) > 1

    @property
    def username(self) -> str:
        """The bot's @username (known once the bot is initialised)."""
        try:
            return self.bot.username
        except RuntimeError:
            return ""


def runtime(context: CallbackContext[Any, Any, Any, Any]) -> Runtime:
    """The runtime stored in the application's ``bot_data``."""
    value = context.application.bot_data["runtime"]
    assert isinstance(value, Runtime)
    return value
