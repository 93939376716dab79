"""``/buy``, ``/subscribe`` and ``/billing``: private payment links (P05)."""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands

from bot.discord import context, render, respond, views
from bot.discord.cogs.base import BaseCog, require_terms
from bot.discord.premium import premium_offers, sells_cards, sells_premium
from bot.discord.translator import d
from core.billing.offers import BillingDisabled


class BillingCog(BaseCog):
    """Credit packs, monthly plans and the billing portal; every answer is ephemeral."""

    @app_commands.command(name="buy", description=d("cmd.buy"))
    async def buy(self, interaction: discord.Interaction) -> None:
        """The credit packs, a button each."""
        await self._offers(interaction, "pack")

    @app_commands.command(name="subscribe", description=d("cmd.subscribe"))
    async def subscribe(self, interaction: discord.Interaction) -> None:
        """The monthly plans, a button each."""
        await self._offers(interaction, "plan")

    @app_commands.command(name="billing", description=d("cmd.billing"))
    async def billing(self, interaction: discord.Interaction) -> None:
        """A private link to the billing portal."""
        if not await respond.defer(interaction, ephemeral=True):
            return
        actor = context.actor_of(interaction)
        await require_terms(self.core, actor)
        if sells_premium(self.core) and not sells_cards(self.core):
            await respond.reply(interaction, render.premium_billing())
            return
        link = await self.core.billing.portal_link(actor)
        await views.send_link(interaction, link)

    async def _offers(
        self, interaction: discord.Interaction, kind: Literal["pack", "plan"]
    ) -> None:
        if not await respond.defer(interaction, ephemeral=True):
            return
        await require_terms(self.core, context.actor_of(interaction))
        premium = premium_offers(self.core, kind)
        if premium:
            # Discord's own checkout (a premium button per SKU), and cards in "both" mode.
            cards = self.core.billing.offers(kind) if sells_cards(self.core) else ()
            await respond.reply(
                interaction,
                render.premium_offers_text(kind, premium, cards),
                view=views.premium_offers_view(premium, cards),
            )
            return
        if not self.core.billing.enabled or not sells_cards(self.core):
            raise BillingDisabled()
        offers = self.core.billing.offers(kind)
        await respond.reply(
            interaction, render.offers_text(kind, offers), view=views.offers_view(offers)
        )
