"""Acknowledging and answering interactions: defer first, then one answer.

Discord drops an interaction that is not answered within 3 seconds, so every handler
defers before it does any work (a database call, a download); the answer then edits the
deferred response. ``interaction.extras`` remembers how it was deferred, so errors can be
answered in the right place (errors.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord
from discord.utils import MISSING

from bot.discord import context, render
from core.types import ReplyTarget, Submitted

log = logging.getLogger("imagebot.discord")

EPHEMERAL = "ephemeral"
UPDATE = "update"
"""A component press deferred as an update: the answer edits the message it is on."""


async def defer(
    interaction: discord.Interaction, *, ephemeral: bool = False, update: bool = False
) -> bool:
    """Acknowledge now. ``update`` (buttons only) means the answer will edit the message
    the button is on; otherwise the user sees "thinking…" until the answer. False when
    the interaction can no longer be answered (answered already, or too late)."""
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
    interaction.extras[EPHEMERAL] = ephemeral
    interaction.extras[UPDATE] = update
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
    """The flow every generation shares: defer, make the job (one core call, after any
    downloads ``submit`` does), then show its place in the queue. The worker's events
    take it from there, through the same original response."""
    if not await defer(interaction, ephemeral=private):
        return
    target = context.reply_target(interaction, private=private)
    submitted = await submit(target)
    await interaction.client.notifier.show_submitted(target, submitted)  # type: ignore[attr-defined]
