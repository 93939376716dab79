"""Acknowledging and answering interactions: defer first, then one answer.

Discord drops an interaction that is not answered within 3 seconds, so every handler
defers before it does any work (a database call, a download); the answer then edits the
deferred response. ``interaction.extras`` remembers how it was deferred, so errors can be
answered in the right place (errors.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord
from discord.utils import MISSING

from bot.discord import context, render
from core.types import ReplyTarget, Submitted

log = logging.getLogger("imagebot.discord")

ACK_WINDOW = 3.0
"""Discord's deadline for the first answer: an interaction not deferred by then never will
be (it is forgotten by :class:`AcksFirst` after that)."""
MAX_HOLD = 1.0
"""The longest a deferred interaction's work waits for the others' acknowledgements."""
QUIET = 0.05
"""How long no interaction must have arrived before work after a defer goes ahead."""


class AcksFirst:
    """Acknowledgements before work. In a burst of commands, each handler that has
    deferred would otherwise start its job (moderation, the database) while the
    interactions behind it still wait for their defer, and the event loop shares itself
    among all of them: the later ones are acknowledged seconds late. Commands that defer
    first are counted from arrival to defer; work after a defer waits (at most
    :data:`MAX_HOLD`) until none is left waiting for its acknowledgement."""

    def __init__(self) -> None:
        self._waiting: dict[int, float] = {}
        self._last_arrival = 0.0
        self._clear = asyncio.Event()
        self._clear.set()

    def arrived(self, interaction: discord.Interaction) -> None:
        """A command that will defer first has arrived."""
        self._last_arrival = time.monotonic()
        self._waiting[interaction.id] = self._last_arrival
        self._clear.clear()

    def answered(self, interaction: discord.Interaction) -> None:
        """It deferred (or cannot be answered any more)."""
        self._waiting.pop(interaction.id, None)
        if not self._waiting:
            self._clear.set()

    async def hold(self) -> None:
        """Until no counted interaction waits for its defer and none arrived for
        :data:`QUIET` (the rest of a burst still being read), or :data:`MAX_HOLD`."""
        deadline = time.monotonic() + MAX_HOLD
        while True:
            now = time.monotonic()
            cutoff = now - ACK_WINDOW
            for key in [k for k, at in self._waiting.items() if at < cutoff]:
                del self._waiting[key]  # never deferred (it failed before): not waited for
            if not self._waiting:
                self._clear.set()
            quiet_in = self._last_arrival + QUIET - now
            left = deadline - now
            if left <= 0 or (not self._waiting and quiet_in <= 0):
                return
            if self._waiting:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._clear.wait(), left)
            else:
                await asyncio.sleep(min(quiet_in, left))


def acks_of(interaction: discord.Interaction) -> AcksFirst | None:
    """The client's :class:`AcksFirst` (None for a client without one)."""
    acks = getattr(interaction.client, "acks", None)
    return acks if isinstance(acks, AcksFirst) else None


EPHEMERAL = "ephemeral"
UPDATE = "update"
"""A component press deferred as an update: the answer edits the message it is on."""


async def defer(
    interaction: discord.Interaction, *, ephemeral: bool = False, update: bool = False
) -> bool:
    """Acknowledge now. ``update`` (buttons only) means the answer will edit the message
    the button is on; otherwise the user sees "thinking…" until the answer. False when
    the interaction can no longer be answered (answered already, or too late)."""
    acks = acks_of(interaction)
    try:
        if update:
            await interaction.response.defer()
        else:
            await interaction.response.defer(ephemeral=ephemeral, thinking=True)
    except discord.InteractionResponded:
        return False
    except discord.HTTPException as exc:
        # 10062: over 3 seconds late or unknown; 40060: answered by an earlier delivery.
        log.warning("could not defer interaction=%s code=%s", interaction.id, exc.code)
        return False
    finally:
        if acks is not None:
            acks.answered(interaction)
    interaction.extras[EPHEMERAL] = ephemeral
    interaction.extras[UPDATE] = update
    await context.settle_language(interaction)  # begun, not awaited, before the defer
    return True


async def reply(
    interaction: discord.Interaction,
    content: str = "",
    *,
    view: discord.ui.View | None = MISSING,
    files: Sequence[discord.File] = (),
    ephemeral: bool = True,
) -> None:
    """Answer an interaction: the first response, the edit of a deferred "thinking"
    response, or (after a deferred button update) a new follow-up."""
    text = render.clip(content)
    if not interaction.response.is_done():
        kwargs: dict[str, Any] = {"files": list(files)} if files else {}
        if view is not MISSING and view is not None:
            kwargs["view"] = view
        await interaction.response.send_message(
            text, ephemeral=ephemeral, allowed_mentions=render.NO_MENTIONS, **kwargs
        )
    elif interaction.extras.get(UPDATE):
        kwargs = {"files": list(files)} if files else {}
        if view is not MISSING and view is not None:
            kwargs["view"] = view
        await interaction.followup.send(
            text, ephemeral=ephemeral, allowed_mentions=render.NO_MENTIONS, **kwargs
        )
    else:
        await interaction.edit_original_response(
            content=text,
            attachments=list(files),
            view=view,
            allowed_mentions=render.NO_MENTIONS,
        )


async def update(
    interaction: discord.Interaction,
    content: str,
    *,
    view: discord.ui.View | None = MISSING,
    attachments: Sequence[discord.File] | None = None,
) -> None:
    """Edit the message a deferred button is on (a page of /history, a deleted result)."""
    kwargs: dict[str, Any] = {}
    if attachments is not None:
        kwargs["attachments"] = list(attachments)
    await interaction.edit_original_response(
        content=render.clip(content), view=view, allowed_mentions=render.NO_MENTIONS, **kwargs
    )


async def run_job(
    interaction: discord.Interaction,
    submit: Callable[[ReplyTarget], Awaitable[Submitted]],
    *,
    private: bool,
) -> None:
    """The flow every generation shares: defer (before any core call: the command's
    language lookup only begins before it), make the job (one core call, after any
    downloads ``submit`` does), then show its place in the queue. The worker's events
    take it from there, through the same original response."""
    if not await defer(interaction, ephemeral=private):
        return
    acks = acks_of(interaction)
    if acks is not None:
        await acks.hold()  # the burst's other defers first
    target = context.reply_target(interaction, private=private)
    submitted = await submit(target)
    await interaction.client.notifier.show_submitted(target, submitted)  # type: ignore[attr-defined]
