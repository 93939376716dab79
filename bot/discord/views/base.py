"""What every button and modal shares: the core behind the interaction, and sending any
exception to the one error renderer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import discord

from bot.discord import context, render, respond


def core_of(interaction: discord.Interaction) -> Any:
    """The core of the bot that received ``interaction``."""
    return interaction.client.core  # type: ignore[attr-defined]


def _components(items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        yield item
        yield from _components(getattr(item, "children", ()) or ())
        accessory = getattr(item, "accessory", None)
        if accessory is not None:
            yield accessory


def pressed_on_message(interaction: discord.Interaction) -> bool:
    """Whether a component press names a component of the message it was made on (Discord
    sends that message, as it stands, with the interaction). Anything but a component
    press is not concerned."""
    if interaction.type is not discord.InteractionType.component:
        return True
    data: Mapping[str, Any] = interaction.data or {}
    custom_id = data.get("custom_id")
    message = interaction.message
    if message is None or not isinstance(custom_id, str):
        return False
    return any(
        getattr(component, "custom_id", None) == custom_id
        for component in _components(message.components)
    )


async def refuse_foreign_press(interaction: discord.Interaction) -> None:
    """A press of one of our buttons that is not on the message it came with: discord.py
    drops it without an answer (the user would see "This interaction failed"), so it is
    answered here, kindly, and nothing else happens. Registered as the client's
    ``on_interaction`` listener."""
    data: Mapping[str, Any] = interaction.data or {}
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id.startswith("ib:"):
        return
    if pressed_on_message(interaction):
        return
    # Too late, or answered meanwhile: nothing was done either way.
    with contextlib.suppress(discord.HTTPException):
        await respond.reply(interaction, render.stale(), ephemeral=True)


class Handled:
    """Mixin: run ``handle`` and send any exception to the one error renderer."""

    async def handle(self, interaction: discord.Interaction) -> None:
        """The press or submission itself."""
        raise NotImplementedError

    async def callback(self, interaction: discord.Interaction) -> None:
        """discord.py's entry point. A press acts only when its button is really on the
        message it came with: a tampered client can claim any custom id on any message of
        the bot, and discord.py routes persistent buttons by custom id alone."""
        try:
            if not pressed_on_message(interaction):
                await respond.reply(interaction, render.stale(), ephemeral=True)
                return
            await context.use_language_of(core_of(interaction), interaction)
            await self.handle(interaction)
        except Exception as exc:
            await interaction.client.report_error(interaction, exc)  # type: ignore[attr-defined]
