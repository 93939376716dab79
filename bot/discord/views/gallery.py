"""/gallery on Discord: a one-time sign-in link to the private web gallery as a link button
in an ephemeral reply, and the persistent Gallery button under /history and results."""

from __future__ import annotations

import re
from typing import Any

import discord
from discord import ui

from bot.discord import context, render, respond
from bot.discord.views.base import Handled, core_of
from core.errors import AgeRefused, TermsRequired


async def send_gallery_link(interaction: discord.Interaction) -> None:
    """Answer (ephemerally: only the person sees the link) with a fresh sign-in link.

    Raises :class:`core.generation.GalleryNotConfigured` without IMAGEBOT_PUBLIC_URL (the
    error renderer says what the operator must set).
    """
    core = core_of(interaction)
    actor = context.actor_of(interaction)
    status = await core.onboarding.status(actor)
    if status.state == "refused":
        raise AgeRefused()
    if not status.may_generate:
        raise TermsRequired(policy_changed=status.state == "policy_changed")
    link = await core.gallery_access.sign_in_link(actor)
    view = ui.View(timeout=None)
    view.add_item(ui.Button(label=render.gallery_button(), url=link))
    await respond.reply(interaction, render.gallery_link(), view=view, ephemeral=True)


class GalleryButton(Handled, ui.DynamicItem[ui.Button[Any]], template=r"ib:gallery"):
    """Under /history and results: whoever presses it gets their own link, privately
    (links expire, so none is baked into a message)."""

    def __init__(self, *, row: int | None = None) -> None:
        super().__init__(
            ui.Button(
                label=render.gallery_short(),
                emoji="🖼",
                style=discord.ButtonStyle.secondary,
                custom_id="ib:gallery",
            ),
            row=row,
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> GalleryButton:
        return cls()

    async def handle(self, interaction: discord.Interaction) -> None:
        if not await respond.defer(interaction, ephemeral=True):
            return
        await send_gallery_link(interaction)
