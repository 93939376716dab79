"""One cog per feature area; ``all_cogs`` is what the client adds at start-up."""

from __future__ import annotations

from typing import Any

from discord import app_commands
from discord.ext import commands

from bot.discord.cogs.account import AccountCog
from bot.discord.cogs.admin import AdminCog
from bot.discord.cogs.billing import BillingCog
from bot.discord.cogs.history import HistoryCog
from bot.discord.cogs.imagine import ImagineCog
from bot.discord.cogs.privacy import PrivacyCog
from bot.discord.cogs.server import ServerCog
from bot.discord.cogs.support import SupportCog


def all_cogs(core: Any, tree: app_commands.CommandTree[Any]) -> list[commands.Cog]:
    """Every cog of the adapter, bound to ``core`` and registering in ``tree``."""
    return [
        ImagineCog(core, tree),
        HistoryCog(core, tree),
        AccountCog(core, tree),
        BillingCog(core, tree),
        PrivacyCog(core, tree),
        SupportCog(core, tree),
        AdminCog(core, tree),
        ServerCog(core, tree),
    ]
