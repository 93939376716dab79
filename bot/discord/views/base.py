"""What every button and modal shares: the core behind the interaction, and sending any
exception to the one error renderer."""

from __future__ import annotations

from typing import Any

import discord

from bot.discord import context


def core_of(interaction: discord.Interaction) -> Any:
    """The core of the bot that received ``interaction``."""
    return interaction.client.core  # type: ignore[attr-defined]


class Handled:
    """Mixin: run ``handle`` and send any exception to the one error renderer."""

    async def handle(self, interaction: discord.Interaction) -> None:
        """The press or submission itself."""
        raise NotImplementedError

    async def callback(self, interaction: discord.Interaction) -> None:
        """discord.py's entry point."""
        try:
            await context.use_language_of(core_of(interaction), interaction)
            await self.handle(interaction)
        except Exception as exc:
            await interaction.client.report_error(interaction, exc)  # type: ignore[attr-defined]
