"""Calls that send to a chat, with Telegram's own failures handled in one place.

- ``RetryAfter`` (429): wait as long as Telegram asks, then try again (a few times).
- ``Forbidden`` (403, the user blocked the bot or left the group): stop sending to that
  chat; nothing stored changes, and the chat is unmarked as soon as an update comes from
  it again.
- "message is not modified" (an edit to identical content): nothing to do.
- A network hiccup: one more try after a short pause.
- Groups: Telegram lets a bot post about 20 messages a minute in one group. With a
  :class:`GroupPacer`, every send and edit to a group takes a slot of that budget first
  (kept in the database, so all processes share it): results wait for theirs, in order;
  a progress edit that finds no free slot is skipped, and the status board shows the
  newest stage with the next one (merged, never queued). A busy group is served, slowly,
  instead of refused.

Everything else is raised to the caller, which decides on a fallback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

log = logging.getLogger("imagebot.telegram")

T = TypeVar("T")


class ChatBlocked(Exception):
    """The chat does not take messages from the bot (it was blocked or left)."""


class Skipped(Exception):
    """A progress edit found no free slot in its group's budget (a later one will show)."""


Take = Callable[[str, float, float], Awaitable[float]]
"""(chat id, limit, window) -> 0 when a slot was taken, else seconds until one frees."""

Pace = Literal["send", "progress", "none"]


class GroupPacer:
    """The per-group sending budget: ``limit`` messages per ``window`` seconds a group."""

    def __init__(self, take: Take, *, limit: float = 20.0, window: float = 60.0) -> None:
        self.take = take
        self.limit = limit
        self.window = window
        self._queues: dict[int, asyncio.Lock] = {}
        self.waited = 0.0
        """Seconds spent waiting for slots, all groups together (for metrics and tests)."""
        self.skipped = 0
        """Progress edits skipped for want of a slot."""

    @staticmethod
    def applies(chat_id: int) -> bool:
        """Groups, supergroups and channels have negative ids; private chats are not paced."""
        return chat_id < 0

    async def wait(self, chat_id: int) -> None:
        """Wait for a slot; sends of one process to one group go in arrival order (an
        asyncio lock is first come, first served)."""
        lock = self._queues.setdefault(chat_id, asyncio.Lock())
        async with lock:
            while True:
                delay = await self.take(str(chat_id), self.limit, self.window)
                if delay <= 0:
                    break
                self.waited += delay
                await asyncio.sleep(min(delay, self.window))
        if not lock.locked() and len(self._queues) > 10_000:
            self._queues.pop(chat_id, None)

    async def try_take(self, chat_id: int) -> bool:
        """A slot now, or False (never while sends of this process wait for one)."""
        lock = self._queues.get(chat_id)
        if lock is not None and lock.locked():
            return False
        return await self.take(str(chat_id), self.limit, self.window) <= 0


class Outbox:
    """Sends through :meth:`call`; remembers chats that blocked the bot."""

    def __init__(
        self, *, retries: int = 3, max_wait: float = 60.0, pacer: GroupPacer | None = None
    ) -> None:
        self.retries = retries
        self.max_wait = max_wait
        self.blocked: set[int] = set()
        self.pacer = pacer

    def unblock(self, chat_id: int) -> None:
        """An update arrived from ``chat_id``: it takes messages again."""
        self.blocked.discard(chat_id)

    async def call(
        self, chat_id: int, make: Callable[[], Awaitable[T]], *, pace: Pace = "send"
    ) -> T:
        """Run ``make()`` (a fresh request each attempt). Raises :class:`ChatBlocked` when
        the chat blocked the bot, ``BadRequest`` for the caller's fallbacks, and
        :class:`Skipped` for a ``progress`` call that found its group's budget spent.

        ``pace``: ``send`` waits for a slot of the group's budget, ``progress`` takes one
        only if free, ``none`` (deletions, lookups: not messages) takes none."""
        if chat_id in self.blocked:
            raise ChatBlocked()
        if self.pacer is not None and pace != "none" and self.pacer.applies(chat_id):
            if pace == "send":
                await self.pacer.wait(chat_id)
            elif not await self.pacer.try_take(chat_id):
                self.pacer.skipped += 1
                raise Skipped()
        network_tries = 0
        attempt = 0
        while True:
            try:
                return await make()
            except RetryAfter as exc:
                attempt += 1
                wait = exc.retry_after
                seconds = wait if isinstance(wait, int | float) else wait.total_seconds()
                if attempt > self.retries or seconds > self.max_wait:
                    raise
                log.info("telegram asked to wait chat=%s seconds=%s", chat_id, seconds)
                await asyncio.sleep(seconds)
            except Forbidden:
                log.info("chat blocked the bot chat=%s", chat_id)
                self.blocked.add(chat_id)
                raise ChatBlocked() from None
            except (TimedOut, NetworkError) as exc:
                if isinstance(exc, BadRequest) or network_tries >= 1:
                    raise
                network_tries += 1
                await asyncio.sleep(0.5)

    async def edit(
        self, chat_id: int, make: Callable[[], Awaitable[object]], *, progress: bool = False
    ) -> bool:
        """An edit: True when applied or already identical, False when the message is gone
        or cannot be edited that way, or the chat blocked the bot, or (``progress``) the
        group's budget has no slot free now."""
        try:
            await self.call(chat_id, make, pace="progress" if progress else "send")
        except (ChatBlocked, Skipped):
            return False
        except BadRequest as exc:
            if is_not_modified(exc):
                return True
            log.info("edit refused chat=%s reason=%s", chat_id, _reason(exc))
            return False
        return True


def is_not_modified(exc: BadRequest) -> bool:
    """True for Telegram's answer to an edit into identical content."""
    return "not modified" in exc.message.lower()


def _reason(exc: BadRequest) -> str:
    # Telegram's descriptions never carry user content; keep them short in logs.
    return exc.message[:80]
