"""The pager of /history (its download buttons are the results' Full resolution)."""

from __future__ import annotations

import re
from typing import Any

import discord
from discord import ui

from bot.discord import context, render, respond
from bot.discord.views.base import Handled, core_of
from bot.discord.views.gallery import GalleryButton
from bot.discord.views.results import JobButton
from core.types import HistoryPage


class PageButton(Handled, ui.DynamicItem[ui.Button[Any]], template=r"ib:hist:(?P<page>\d{1,6})"):
    """Previous / next page of /history (on an ephemeral message: only its owner sees it)."""

    def __init__(self, page: int, label: str, *, disabled: bool = False) -> None:
        super().__init__(
            ui.Button(
                label=label,
                style=discord.ButtonStyle.primary,
                custom_id=f"ib:hist:{page}",
                disabled=disabled,
            ),
            row=2,
        )
        self.page = page

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> PageButton:
        return cls(int(match["page"]), getattr(item, "label", None) or "")

    async def handle(self, interaction: discord.Interaction) -> None:
        if not await respond.defer(interaction, update=True):
            return
        page = await core_of(interaction).history.page(context.actor_of(interaction), self.page)
        await respond.update(
            interaction,
            render.history_text(page),
            view=history_view(
                page,
                interaction.user.id,
                gallery=core_of(interaction).gallery_access.enabled,
            ),
        )


def history_view(page: HistoryPage, owner_id: int, *, gallery: bool = False) -> ui.View | None:
    """A download button per finished line of a /history page, the pager, and the gallery
    when it is served."""
    view = ui.View(timeout=None)
    for number, job in enumerate(page.items, 1):
        if job.outputs:
            row = 0 if number <= 5 else 1
            view.add_item(JobButton("full", job.id, owner_id, None, label=f"⬇ {number}", row=row))
    if page.pages > 1:
        view.add_item(PageButton(max(page.page - 1, 1), "◀ Newer", disabled=page.page <= 1))
        view.add_item(
            PageButton(min(page.page + 1, page.pages), "Older ▶", disabled=page.page >= page.pages)
        )
    if gallery:
        view.add_item(GalleryButton(row=2))
    return view if view.children else None
