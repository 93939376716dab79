"""``/feedback`` and ``/support``: a message to the operators (P26); answers come as DMs."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.app_commands import Range

from bot.discord import context, render, respond
from bot.discord.cogs.base import BaseCog, require_terms
from bot.discord.translator import d


class SupportCog(BaseCog):
    """Messages to the people who run the bot (always ephemeral)."""

    @app_commands.command(name="feedback", description=d("cmd.feedback"))
    @app_commands.describe(text=d("opt.feedback.text"))
    async def feedback(self, interaction: discord.Interaction, text: Range[str, 1, 4000]) -> None:
        """Store and forward feedback."""
        await self._submit(interaction, "feedback", text)

    @app_commands.command(name="support", description=d("cmd.support"))
    @app_commands.describe(text=d("opt.support.question"))
    async def support(self, interaction: discord.Interaction, text: Range[str, 1, 4000]) -> None:
        """Store and forward a support request."""
        await self._submit(interaction, "support", text)

    async def _submit(self, interaction: discord.Interaction, kind: str, text: str) -> None:
        if not await respond.defer(interaction, ephemeral=True):
            return
        actor = context.actor_of(interaction)
        await require_terms(self.core, actor)
        ticket = await self.core.messages.submit(actor, kind, text)
        await respond.reply(interaction, render.ticket_text(ticket.kind, ticket.id))
