"""The discord.py client of imagebot: an auto-sharded bot with slash commands only."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord import errors, render, respond, views
from bot.discord.cogs import all_cogs
from bot.discord.notifier import DiscordNotifier
from bot.discord.premium import PremiumCog
from bot.discord.translator import CatalogTranslator, LocalisedTree

log = logging.getLogger("imagebot.discord")

IDENTIFY_INTERVAL = 5.0
"""Seconds between two shards' IDENTIFY (Discord allows one per 5 s per bucket)."""


class _NoGuildsIntentWarning(logging.Filter):
    """imagebot answers interactions only and keeps no guild cache on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Guilds intent seems to be disabled" not in record.getMessage()


def _quiet_irrelevant_warnings() -> None:
    # No voice support is needed, and no guild state: these start-up warnings are noise.
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False
    state_log = logging.getLogger("discord.state")
    if not any(isinstance(f, _NoGuildsIntentWarning) for f in state_log.filters):
        state_log.addFilter(_NoGuildsIntentWarning())


class ImagebotBot(commands.AutoShardedBot):
    """Holds the core and the notifier; adds the cogs, the persistent buttons and syncs the
    commands when it logs in."""

    def __init__(
        self,
        core: Any,
        *,
        shard_count: int | None = None,
        shard_ids: list[int] | None = None,
        guild_id: int | None = None,
        serve_commands: bool = True,
    ) -> None:
        _quiet_irrelevant_warnings()
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            # Interactions need no gateway intents; no guild, member or message cache.
            intents=discord.Intents.none(),
            member_cache_flags=discord.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            max_messages=None,
            guild_ready_timeout=0.1,
            allowed_mentions=render.NO_MENTIONS,
            # Usable in servers, in DMs with the bot and (user-installed) anywhere else.
            allowed_contexts=app_commands.AppCommandContext(
                guild=True, dm_channel=True, private_channel=True
            ),
            allowed_installs=app_commands.AppInstallationType(guild=True, user=True),
            shard_count=shard_count,
            shard_ids=shard_ids,  # type: ignore[arg-type]  # None means every shard
            tree_cls=LocalisedTree,
        )
        self.core = core
        self.guild_id = guild_id
        self.serve_commands = serve_commands
        self.notifier = DiscordNotifier(self, core.files, gallery=core.gallery_access.enabled)
        self.acks = respond.AcksFirst()
        self.tree.on_error = self._on_tree_error  # type: ignore[method-assign]

    async def setup_hook(self) -> None:
        """Runs once after login: cogs, persistent buttons, command sync (none of it for a
        delivery-only client)."""
        if not self.serve_commands:
            return
        await self.tree.set_translator(CatalogTranslator())
        for cog in all_cogs(self.core, self.tree):
            await self.add_cog(cog)
        await self.add_cog(PremiumCog(self.core, self))
        self.add_dynamic_items(*views.DYNAMIC_ITEMS)
        self.add_listener(views.refuse_foreign_press, "on_interaction")
        await self.sync_commands()

    async def sync_commands(self) -> list[app_commands.AppCommand]:
        """One bulk PUT: to ``IMAGEBOT_DISCORD_GUILD_ID`` (instant, for development) or
        globally."""
        if self.guild_id is not None:
            guild = discord.Object(id=self.guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        log.info("commands synced count=%s guild=%s", len(synced), self.guild_id or "global")
        return synced

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Space the shards' IDENTIFYs as Discord requires (discord.py's default, tunable)."""
        if not initial:
            await asyncio.sleep(IDENTIFY_INTERVAL)

    async def report_error(self, interaction: discord.Interaction, exc: BaseException) -> None:
        """The one error answer, for commands, buttons and modals alike."""
        await errors.report_error(self.core, interaction, exc)

    async def _on_tree_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError, /
    ) -> None:
        await self.report_error(interaction, error)
