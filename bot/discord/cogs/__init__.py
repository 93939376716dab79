"""One cog per feature area; ``all_cogs`` is what the client adds at start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord.ext import commands

from bot.discord.cogs.account import AccountCog
from bot.discord.cogs.admin import AdminCog
from bot.discord.cogs.billing import BillingCog
from bot.discord.cogs.history import HistoryCog
from bot.discord.cogs.imagine import ImagineCog
from bot.discord.cogs.privacy import PrivacyCog
from bot.discord.cogs.server import ServerCog
from bot.discord.cogs.support import SupportCog

if TYPE_CHECKING:
    from bot.discord.client import ImagebotBot


def all_cogs(bot: ImagebotBot) -> list[commands.Cog]:
    """Every cog of the adapter."""
    return [
        ImagineCog(bot),
        HistoryCog(bot),
        AccountCog(bot),
        BillingCog(bot),
        PrivacyCog(bot),
        SupportCog(bot),
        AdminCog(bot),
        ServerCog(bot),
    ]
