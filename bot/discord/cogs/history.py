"""``/history``: past results, a page at a time, each downloadable at full resolution (P23)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.app_commands import Range

from bot.discord import context, render, respond, views
from bot.discord.cogs.base import BaseCog
from bot.discord.translator import d


class HistoryCog(BaseCog):
    """The user's history (always ephemeral: it is nobody else's business)."""

    @app_commands.command(name="history", description=d("cmd.history"))
    @app_commands.describe(page=d("opt.history.page"))
    async def history(
        self, interaction: discord.Interaction, page: Range[int, 1, 100_000] = 1
    ) -> None:
        """One page of the user's jobs with a download button per finished line."""
        if not await respond.defer(interaction, ephemeral=True):
            return
        result = await self.core.history.page(context.actor_of(interaction), page)
        await respond.reply(
            interaction,
            render.history_text(result),
            view=views.history_view(
                result, interaction.user.id, gallery=self.core.gallery_access.enabled
            ),
        )

    @app_commands.command(name="gallery", description=d("dc.cmd.gallery"))
    async def gallery(self, interaction: discord.Interaction) -> None:
        """A one-time sign-in link to the web gallery, as a button only the user sees."""
        if not await respond.defer(interaction, ephemeral=True):
            return
        await views.send_gallery_link(interaction)
