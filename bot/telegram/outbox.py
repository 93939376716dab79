"""Calls that send to a chat, with Telegram's own failures handled in one place.

- ``RetryAfter`` (429): wait as long as Telegram asks, then try again (a few times).
- ``Forbidden`` (403, the user blocked the bot or left the group): stop sending to that
  chat; nothing stored changes, and the chat is unmarked as soon as an update comes from
  it again.
- "message is not modified" (an edit to identical content): nothing to do.
- A network hiccup: one more try after a short pause.

Everything else is raised to the caller, which decides on a fallback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

log = logging.getLogger("imagebot.telegram")

T = TypeVar("T")


class ChatBlocked(Exception):
    """The chat does not take messages from the bot (it was blocked or left)."""


class Outbox:
    """Sends through :meth:`call`; remembers chats that blocked the bot."""

    def __init__(self, *, retries: int = 3, max_wait: float = 60.0) -> None:
        self.retries = retries
        self.max_wait = max_wait
        self.blocked: set[int] = set()

    def unblock(self, chat_id: int) -> None:
        """An update arrived from ``chat_id``: it takes messages again."""
        self.blocked.discard(chat_id)

    async def call(self, chat_id: int, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()`` (a fresh request each attempt). Raises :class:`ChatBlocked` when
        the chat blocked the bot, ``BadRequest`` for the caller's fallbacks."""
        if chat_id in self.blocked:
            raise ChatBlocked()
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

    async def edit(self, chat_id: int, make: Callable[[], Awaitable[object]]) -> bool:
        """An edit: True when applied or already identical, False when the message is gone
        or cannot be edited that way, or the chat blocked the bot."""
        try:
            await self.call(chat_id, make)
        except ChatBlocked:
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
