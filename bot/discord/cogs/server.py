"""``/server``: a server's own controls of imagebot, for members with Manage Server.

Limit the bot to chosen channels, cap the images each member may make a day, or switch
it off. Discord shows the group only to members with Manage Server (``default_permissions``)
and only in servers; the check here holds whatever a server's admins change in Discord's
command permissions. Core stores the controls, applies them to every job, and audits each
change.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import AppCommandChannel, AppCommandThread, Choice, Range

from bot.discord import context, render, respond
from bot.discord.cogs.base import BaseCog
from bot.discord.translator import d
from core.errors import InvalidRequest
from core.i18n import LANGUAGE_NAMES, LANGUAGES, Msg
from core.safety.ports import ChatControlRecord


def may_manage(interaction: discord.Interaction) -> bool:
    """True when the member may change the server's settings (Discord computed the
    member's permissions in this channel; Administrator implies every permission)."""
    permissions = interaction.permissions
    return permissions.manage_guild or permissions.administrator


class PostableChannel(app_commands.Transformer):
    """A channel option offering only where members can use imagebot and it can post:
    text and announcement channels and their threads. Not voice, stage or category
    channels, and not forum or media channels, whose posts are threads with ids of their
    own (the allow-list matches the channel a command is used in exactly)."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        return [
            discord.ChannelType.text,
            discord.ChannelType.news,
            discord.ChannelType.news_thread,
            discord.ChannelType.public_thread,
            discord.ChannelType.private_thread,
        ]

    async def transform(
        self, interaction: discord.Interaction, value: Any, /
    ) -> AppCommandChannel | AppCommandThread:
        return value


Postable = app_commands.Transform[AppCommandChannel | AppCommandThread, PostableChannel]


class ServerCog(BaseCog):
    """The ``/server`` group (every answer ephemeral)."""

    server = app_commands.Group(
        name="server",
        description=d("cmd.server.server"),
        default_permissions=discord.Permissions(manage_guild=True),
        allowed_contexts=app_commands.AppCommandContext(
            guild=True, dm_channel=False, private_channel=False
        ),
        allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
    )

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """In a server, from a member with Manage Server; checked before any option."""
        if interaction.guild_id is None:
            raise render.CheckRefused(InvalidRequest(Msg("server.only")))
        if not may_manage(interaction):
            raise render.CheckRefused(
                InvalidRequest(Msg("server.manage_required"), code="manage_server_required")
            )
        return True

    @server.command(name="status", description=d("cmd.server.status"))
    async def status(self, interaction: discord.Interaction) -> None:
        """On or off, the channels, the cap."""
        if not await respond.defer(interaction, ephemeral=True):
            return
        control = await self.core.safety.chat_control(context.PLATFORM, str(interaction.guild_id))
        await respond.reply(interaction, render.server_text(control))

    @server.command(name="on", description=d("cmd.server.on"))
    async def on(self, interaction: discord.Interaction) -> None:
        """Switch the bot on."""
        await self._change(interaction, enabled=True)

    @server.command(name="off", description=d("cmd.server.off"))
    async def off(self, interaction: discord.Interaction) -> None:
        """Switch the bot off (private chats with it are not affected)."""
        await self._change(interaction, enabled=False)

    @server.command(name="channels", description=d("cmd.server.channels"))
    @app_commands.describe(
        channel1=d("opt.server.channel"),
        channel2=d("opt.another_channel"),
        channel3=d("opt.another_channel"),
        channel4=d("opt.another_channel"),
        channel5=d("opt.another_channel"),
    )
    async def channels(
        self,
        interaction: discord.Interaction,
        channel1: Postable | None = None,
        channel2: Postable | None = None,
        channel3: Postable | None = None,
        channel4: Postable | None = None,
        channel5: Postable | None = None,
    ) -> None:
        """Replace the list of allowed channels."""
        chosen = [c for c in (channel1, channel2, channel3, channel4, channel5) if c is not None]
        await self._change(
            interaction, allowed_channels=tuple(dict.fromkeys(str(c.id) for c in chosen))
        )

    @server.command(name="cap", description=d("cmd.server.cap"))
    @app_commands.describe(images=d("opt.server.cap"))
    async def cap(
        self, interaction: discord.Interaction, images: Range[int, 0, 10_000] | None = None
    ) -> None:
        """Set or remove the per-member daily cap."""
        await self._change(interaction, daily_cap_per_member=images)

    @server.command(name="rate", description=d("cmd.server.rate"))
    @app_commands.describe(requests=d("opt.server.rate"))
    async def rate(
        self, interaction: discord.Interaction, requests: Range[int, 1, 10_000] | None = None
    ) -> None:
        """Set or remove the server's own request cap (by default a busy server is served)."""
        await self._change(interaction, requests_per_minute=requests)

    @server.command(name="language", description=d("cmd.server.language"))
    @app_commands.describe(language=d("opt.server.language"))
    @app_commands.choices(
        language=[
            *(Choice(name=LANGUAGE_NAMES[lang], value=lang) for lang in LANGUAGES),
            Choice(name=d("choice.default_language"), value="default"),
        ]
    )
    async def language(self, interaction: discord.Interaction, language: Choice[str]) -> None:
        """The server language of server-wide notices (``default``: the bot's default)."""
        await self._change(
            interaction, language=None if language.value == "default" else language.value
        )

    async def _change(self, interaction: discord.Interaction, **changes: Any) -> None:
        if not await respond.defer(interaction, ephemeral=True):
            return
        control: ChatControlRecord = await self.core.safety.set_chat_control(
            context.PLATFORM,
            str(interaction.guild_id),
            by=f"{context.PLATFORM}:{interaction.user.id}",
            **changes,
        )
        await respond.reply(interaction, render.server_text(control, changed=True))
