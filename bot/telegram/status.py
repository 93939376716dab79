"""Status messages and the pace of their edits.

Each job has one status message, which moves forward through stages (received, queued,
generating, previews) until the result replaces it. Telegram allows about one message a
second per chat and edits count, so progress edits in one chat are spaced at least
``interval`` apart; with ``rate`` set, progress edits of all chats together stay under
that many a second, leaving the rest of the bot's budget to first answers and results.
An edit that has to wait gets a time slot; a newer stage replaces it while it waits (a
person sees the latest state, not every state), and it is dropped if the result comes
first. Stages only move forward, so a late "queued" never overwrites "generating", and
nothing is edited once the result or the failure went out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("imagebot.telegram")

# Ranks of what a status message shows; previews add their index.
RECEIVED = 0
QUEUED = 10
GENERATING = 20
PREVIEW = 30

Edit = Callable[["StatusMessage"], Awaitable[None]]


@dataclass
class StatusMessage:
    """What is known about one status message."""

    chat_id: int
    message_id: int
    shown: int = RECEIVED
    is_media: bool = False
    closed: bool = False
    pending: tuple[int, Edit] | None = None
    flusher: asyncio.Task[None] | None = field(default=None, repr=False)


class StatusBoard:
    """Tracks status messages and spaces their progress edits."""

    def __init__(
        self, *, interval: float = 1.0, rate: float | None = None, max_tracked: int = 20_000
    ) -> None:
        self.interval = interval
        self.spacing = 1.0 / rate if rate else 0.0
        self.max_tracked = max_tracked
        self._messages: OrderedDict[tuple[int, int], StatusMessage] = OrderedDict()
        self._last: dict[int, float] = {}
        self._next_slot = 0.0

    def get(self, chat_id: int, message_id: int) -> StatusMessage:
        """The state of one status message (created on first use, e.g. after a restart)."""
        key = (chat_id, message_id)
        state = self._messages.get(key)
        if state is None:
            state = self._messages[key] = StatusMessage(chat_id, message_id)
            while len(self._messages) > self.max_tracked:
                _, old = self._messages.popitem(last=False)
                if old.flusher is not None:
                    old.flusher.cancel()
        return state

    def sent(self, chat_id: int) -> None:
        """Something was just sent to ``chat_id`` (counts toward its pace)."""
        now = time.monotonic()
        self._last[chat_id] = max(self._last.get(chat_id, now), now)
        if len(self._last) > self.max_tracked:
            horizon = now - 10 * self.interval
            self._last = {k: v for k, v in self._last.items() if v > horizon}

    async def progress(self, chat_id: int, message_id: int, rank: int, edit: Edit) -> None:
        """Show stage ``rank`` with ``edit`` now, or in the next free slot; dropped when the
        message already shows as much, or is closed."""
        state = self.get(chat_id, message_id)
        if state.closed or rank <= state.shown:
            return
        if state.pending is not None:
            if rank > state.pending[0]:
                state.pending = (rank, edit)  # the waiting slot shows the newer stage
            return
        when = self._reserve(chat_id)
        if when <= time.monotonic():
            await self._apply(state, rank, edit)
            return
        state.pending = (rank, edit)
        state.flusher = asyncio.create_task(self._flush(state, when), name="telegram-status")

    def close(self, chat_id: int, message_id: int) -> StatusMessage:
        """The job ended: drop waiting edits; the returned state says what the message is."""
        # Kept (closed) until evicted, so a late edit for it is recognised and dropped.
        state = self.get(chat_id, message_id)
        state.closed = True
        state.pending = None
        if state.flusher is not None and state.flusher is not asyncio.current_task():
            state.flusher.cancel()
        return state

    async def aclose(self) -> None:
        """Cancel every waiting edit (shutdown)."""
        tasks = [s.flusher for s in self._messages.values() if s.flusher is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._messages.clear()

    def _reserve(self, chat_id: int) -> float:
        """The earliest time both the chat's pace and the global rate allow an edit, booked."""
        now = time.monotonic()
        last = self._last.get(chat_id)
        when = max(now, last + self.interval if last is not None else now, self._next_slot)
        self._last[chat_id] = when
        if self.spacing:
            self._next_slot = when + self.spacing
        return when

    async def _apply(self, state: StatusMessage, rank: int, edit: Edit) -> None:
        state.shown = rank
        try:
            await edit(state)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning(
                "status edit failed chat=%s message=%s",
                state.chat_id,
                state.message_id,
                exc_info=True,
            )

    async def _flush(self, state: StatusMessage, when: float) -> None:
        await asyncio.sleep(max(0.0, when - time.monotonic()))
        if state.closed or state.pending is None:
            return
        rank, edit = state.pending
        state.pending = None
        await self._apply(state, rank, edit)
