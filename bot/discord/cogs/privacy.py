"""``/privacy``, ``/export``, ``/delete_my_data`` and ``/appeal``: answered only in a DM with
the bot.

In a server or a group DM the answer is an ephemeral pointer to the DM; in the DM each
command is one call to core's privacy service (its switches and the erasure question are
buttons, see views.py).
"""

from __future__ import annotations

import discord
from discord import app_commands, ui
from discord.app_commands import Range

from bot.discord import context, media, render, respond, views
from bot.discord.cogs.base import BaseCog
from bot.discord.translator import d
from core.errors import InvalidRequest
from core.i18n import Msg


class PrivacyCog(BaseCog):
    """Privacy requests (P07, P08, P09, P10, P12)."""

    @app_commands.command(name="privacy", description=d("cmd.privacy"))
    async def privacy(self, interaction: discord.Interaction) -> None:
        """What is stored, for how long, the policy, and the switches."""
        await self._request(interaction, "privacy")

    @app_commands.command(name="export", description=d("cmd.export"))
    async def export(self, interaction: discord.Interaction) -> None:
        """A ZIP of everything stored about the user."""
        await self._request(interaction, "export")

    @app_commands.command(name="delete_my_data", description=d("cmd.delete_my_data"))
    async def delete_my_data(self, interaction: discord.Interaction) -> None:
        """Erasure, after a confirmation."""
        await self._request(interaction, "delete_my_data")

    @app_commands.command(name="appeal", description=d("cmd.appeal"))
    @app_commands.describe(request=d("opt.privacy.request"), reason=d("opt.privacy.reason"))
    async def appeal(
        self,
        interaction: discord.Interaction,
        request: Range[int, 1, 2**53 - 1],  # Discord's bound: ±(2**53 - 1)
        reason: Range[str, 1, 1000],
    ) -> None:
        """Send a refused request to the operators for review (P12)."""
        await self._request(interaction, "appeal", request_id=request, reason=reason)

    async def _request(
        self,
        interaction: discord.Interaction,
        command: str,
        *,
        request_id: int = 0,
        reason: str = "",
    ) -> None:
        """The one route of every privacy command."""
        if not context.is_dm(interaction):
            await respond.reply(interaction, render.private_only_text(command), ephemeral=True)
            return
        service = getattr(self.core, "privacy", None)
        if service is None:
            await respond.reply(interaction, render.not_available(), ephemeral=True)
            return
        if not await respond.defer(interaction):
            return
        actor = context.actor_of(interaction)
        conversation = context.conversation_of(interaction)
        if command == "privacy":
            overview = await service.overview(actor, conversation)
            await respond.reply(
                interaction,
                render.privacy_text(overview),
                view=views.consent_view(overview.consents),
            )
        elif command == "export":
            await self._export(interaction, service)
        elif command == "appeal":
            await service.appeal(actor, conversation, request_id, reason)
            await respond.reply(interaction, render.appeal_filed_text(request_id))
        else:
            question = service.erasure_confirmation(conversation)
            await respond.reply(
                interaction, render.text_of(question.text), view=views.erase_view(question)
            )

    async def _export(self, interaction: discord.Interaction, service: object) -> None:
        actor = context.actor_of(interaction)
        result = await service.export(actor, context.conversation_of(interaction))  # type: ignore[attr-defined]
        try:
            url: str | None = await service.export_link(actor, result)  # type: ignore[attr-defined]
        except InvalidRequest:  # no public address and no presigned URL: upload it
            url = None
        if url is not None and len(url) <= 512:
            # The ZIP goes from the store (or imagebot's HTTP server) to the person: it
            # is never read into this process for the chat.
            view = ui.View(timeout=None)
            view.add_item(ui.Button(label=render.words("button.download_data"), url=url))
            await respond.reply(interaction, render.export_ready_text(result), view=view)
            return
        if url is not None:  # too long for a button: as text (still never the bytes)
            await views.send_link(interaction, render.export_link_reply(result, url))
            return
        if result.size_bytes > interaction.filesize_limit:
            raise InvalidRequest(Msg("export.no_address"))
        files = self.core.files
        local = files.local_path(result.path)
        source = await files.read(result.path) if local is None else local
        upload = await media.upload(
            source,
            content_type="application/zip",
            size=result.size_bytes,
            limit=interaction.filesize_limit,
            name="imagebot-export.zip",
        )
        await respond.reply(interaction, render.export_text(result), files=[upload.file])
