"""The review queue's buttons (``/admin reviews``): approve, dismiss, or look first.

Persistent like every button: the custom id carries the review item's number. A press is
checked against the operators before anything else, so for anyone else it answers exactly
as an unknown command does; core checks again and audits the decision.
"""

from __future__ import annotations

import re
from typing import Any

import discord
from discord import ui

from bot.discord import context, media, render, respond
from bot.discord.views.base import Handled, core_of
from core.admin.service import NotAnOperator
from core.errors import NotFound
from core.generation.intake import image_dimensions
from core.i18n import msg
from core.safety.ports import ReviewRecord

_CHOICES = {
    "approve": ("✅", discord.ButtonStyle.success),
    "dismiss": ("🗑", discord.ButtonStyle.danger),
    "view": ("👁", discord.ButtonStyle.secondary),
}


class ReviewButton(
    Handled,
    ui.DynamicItem[ui.Button[Any]],
    template=r"ib:review:(?P<review>\d{1,12}):(?P<choice>approve|dismiss|view)",
):
    """One decision on one item of the review queue."""

    def __init__(self, review_id: int, choice: str, *, row: int | None = None) -> None:
        emoji, style = _CHOICES[choice]
        super().__init__(
            ui.Button(
                label=f"{emoji} #{review_id}",
                style=style,
                custom_id=f"ib:review:{review_id}:{choice}",
            ),
            row=row,
        )
        self.review_id = review_id
        self.choice = choice

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> ReviewButton:
        return cls(int(match["review"]), match["choice"])

    async def handle(self, interaction: discord.Interaction) -> None:
        core = core_of(interaction)
        operator = context.actor_of(interaction)
        if not core.admin.is_operator(operator):
            raise NotAnOperator()  # answered before any deferral: as an unknown command
        if self.choice == "view":
            await self._show(interaction, core, operator)
            return
        if not await respond.defer(interaction, update=True):
            return
        approve = self.choice == "approve"
        await core.admin.decide_review(operator, self.review_id, approve=approve)
        items = await core.admin.reviews(operator)
        await respond.update(
            interaction,
            render.admin_reviews_text(
                items, render.review_decided_text(self.review_id, approved=approve)
            ),
            view=reviews_view(items),
        )

    async def _show(self, interaction: discord.Interaction, core: Any, operator: Any) -> None:
        if not await respond.defer(interaction, ephemeral=True):
            return
        items = await core.admin.reviews(operator)
        item = next((i for i in items if i.id == self.review_id), None)
        if item is None or not item.path:
            raise NotFound(msg("dc.admin.no_review"))
        data = await core.files.read(item.path)
        info = image_dimensions(data)
        content_type = info[0] if info else "application/octet-stream"
        upload = await media.upload(
            data,
            content_type=content_type,
            size=len(data),
            limit=interaction.filesize_limit,
            name=f"review-{item.id}.{content_type.rsplit('/', 1)[-1]}",
        )
        await respond.reply(
            interaction,
            render.tr("dc.admin.review_file", review_id=item.id, job=item.job_id),
            files=[upload.file],
        )


def reviews_view(items: list[ReviewRecord]) -> ui.View | None:
    """Approve, dismiss and look buttons for the first items (a row for two items would
    not fit three buttons each: one item a row, five rows)."""
    view = ui.View(timeout=None)
    for row, item in enumerate(items[:5]):
        for choice in ("approve", "dismiss", "view") if item.path else ("approve", "dismiss"):
            view.add_item(ReviewButton(item.id, choice, row=row))
    return view if view.children else None
