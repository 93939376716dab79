"""The buttons under a result (Reroll, Edit, Variation, Full resolution, Delete) and the
modals that ask for an edit's instruction.

Persistent: custom ids carry ``ib:<action>:<job id>:<image index>:<owner id>``, and
discord.py's dynamic items rebuild the button from the id on any press, so they work
after a restart. Only the owner may press them; core answers for the job itself.
"""

from __future__ import annotations

import re
from typing import Any

import discord
from discord import ui

from bot.discord import context, intake, media, render, respond
from bot.discord.views.base import Handled, core_of
from core.errors import NotFound
from core.i18n import current_language, set_language
from core.types import GenerateOptions, GenerateRequest, ReplyTarget, Submitted

MAX_LINK_URL = 512
"""Discord's limit on a link button's URL."""

JOB_ID = r"[0-9a-f]{16}"

_LABELS = {
    "reroll": ("button.reroll_plain", "🎲", discord.ButtonStyle.secondary),
    "edit": ("button.edit_plain", "✏️", discord.ButtonStyle.secondary),
    "var": ("button.variation_plain", "🔀", discord.ButtonStyle.secondary),
    "full": ("button.full_res_plain", "⬇️", discord.ButtonStyle.secondary),
    "del": ("button.delete_plain", "🗑️", discord.ButtonStyle.danger),
}


class JobButton(
    Handled,
    ui.DynamicItem[ui.Button[Any]],
    template=rf"ib:(?P<action>reroll|edit|var|full|del):(?P<job>{JOB_ID}):(?P<index>\d|a)"
    r":(?P<owner>\d{1,20})",
):
    """One button of a result (or of /history): Reroll, Edit, Variation, Full resolution,
    Delete. ``index`` is the image of the job it acts on (``a``: all of them)."""

    def __init__(
        self,
        action: str,
        job_id: str,
        owner_id: int,
        index: int | None = 0,
        *,
        label: str | None = None,
        row: int | None = None,
    ) -> None:
        name, emoji, style = _LABELS[action]
        where = "a" if index is None else str(index)
        super().__init__(
            ui.Button(
                label=label or render.words(name),
                emoji=emoji,
                style=style,
                custom_id=f"ib:{action}:{job_id}:{where}:{owner_id}",
            ),
            row=row,
        )
        self.action = action
        self.job_id = job_id
        self.owner_id = owner_id
        self.index = index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        index = None if match["index"] == "a" else int(match["index"])
        return cls(match["action"], match["job"], int(match["owner"]), index)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Only the job's owner may use its buttons; others get a kind refusal."""
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message(render.not_yours(), ephemeral=True)
        return False

    async def handle(self, interaction: discord.Interaction) -> None:
        await getattr(self, f"_{self.action}")(interaction)

    async def _reroll(self, interaction: discord.Interaction) -> None:
        core = core_of(interaction)
        private = context.is_ephemeral_message(interaction.message)

        async def submit(target: ReplyTarget) -> Submitted:
            return await core.generation.repeat(
                context.actor_of(interaction),
                self.job_id,
                idempotency_key=context.request_key(interaction),
                conversation=context.conversation_of(interaction),
                reply_target=target,
            )

        await respond.run_job(interaction, submit, private=private)

    async def _var(self, interaction: discord.Interaction) -> None:
        core = core_of(interaction)
        private = context.is_ephemeral_message(interaction.message)

        async def submit(target: ReplyTarget) -> Submitted:
            return await core.generation.derive(
                context.actor_of(interaction),
                self.job_id,
                prompt=None,
                index=self.index or 0,
                idempotency_key=context.request_key(interaction),
                conversation=context.conversation_of(interaction),
                reply_target=target,
            )

        await respond.run_job(interaction, submit, private=private)

    async def _edit(self, interaction: discord.Interaction) -> None:
        # A modal must be the first answer: nothing to defer, nothing slow before it.
        private = context.is_ephemeral_message(interaction.message)
        await interaction.response.send_modal(
            EditResultModal(interaction.id, self.job_id, self.index or 0, private=private)
        )

    async def _full(self, interaction: discord.Interaction) -> None:
        core = core_of(interaction)
        if not await respond.defer(interaction, ephemeral=True):
            return
        actor = context.actor_of(interaction)
        if self.index is None:
            job = await core.generation.job(actor, self.job_id)
            indexes = list(range(len(job.outputs)))
        else:
            indexes = [self.index]
        if not indexes:
            raise NotFound()
        # Links when core can give them (an object store's presigned URLs, or imagebot's
        # signed links): the files go from the store to the person, not through Discord.
        links = [await core.history.download_link(actor, self.job_id, i) for i in indexes]
        usable = [link for link in links if link is not None and len(link.url) <= MAX_LINK_URL]
        if usable and len(usable) == len(indexes):
            view = ui.View(timeout=None)
            for link in usable:
                label = (
                    render.words("button.download_full")
                    if len(usable) == 1
                    else f"⬇️ {link.index + 1}"
                )
                view.add_item(ui.Button(label=label, url=link.url))
            await respond.reply(interaction, render.download_links_text(usable), view=view)
            return
        uploads = []
        for index in indexes:
            image, data = await core.history.download(actor, self.job_id, index)
            uploads.append(
                await media.upload(
                    data,
                    content_type=image.content_type,
                    size=len(data),
                    limit=interaction.filesize_limit,
                    name=media.file_name(self.job_id, index, image.content_type),
                )
            )
        notes = dict.fromkeys(u.note for u in uploads if u.note)
        await respond.reply(
            interaction, render.full_res_text(len(uploads), notes), files=[u.file for u in uploads]
        )

    async def _del(self, interaction: discord.Interaction) -> None:
        core = core_of(interaction)
        if not await respond.defer(interaction, update=True):
            return
        await core.history.delete(context.actor_of(interaction), self.job_id)
        await respond.update(interaction, render.deleted(), view=None, attachments=[])


def result_view(job_id: str, count: int, owner_id: int, *, gallery: bool = False) -> ui.View:
    """The buttons under a result: one row for one image; with several, Reroll and Delete
    on the first row and Edit, Variation and Full resolution per image below. With
    ``gallery``, a Gallery button (a row of its own for one image: five fill a row)."""
    from bot.discord.views.gallery import GalleryButton

    view = ui.View(timeout=None)
    if count <= 1:
        for action in ("reroll", "edit", "var", "full", "del"):
            view.add_item(JobButton(action, job_id, owner_id, 0, row=0))
        if gallery:
            view.add_item(GalleryButton(row=1))
        return view
    view.add_item(JobButton("reroll", job_id, owner_id, 0, row=0))
    view.add_item(JobButton("del", job_id, owner_id, 0, row=0))
    if gallery:
        view.add_item(GalleryButton(row=0))
    for index in range(min(count, 4)):
        number = index + 1
        view.add_item(
            JobButton(
                "edit",
                job_id,
                owner_id,
                index,
                label=render.words("button.edit_n", number=number),
                row=number,
            )
        )
        view.add_item(
            JobButton(
                "var",
                job_id,
                owner_id,
                index,
                label=render.words("button.variation_n", number=number),
                row=number,
            )
        )
        view.add_item(
            JobButton(
                "full",
                job_id,
                owner_id,
                index,
                label=render.words("button.full_n", number=number),
                row=number,
            )
        )
    return view


# --- modals -----------------------------------------------------------------------------------


class _PromptModal(ui.Modal):
    """A modal asking for one instruction; errors go to the one error renderer."""

    def __init__(self, title: str, custom_id: str) -> None:
        # Modals live in memory only while someone is typing: 15 minutes at most.
        super().__init__(title=title, custom_id=custom_id, timeout=900)
        self.language = current_language()
        self.instruction: ui.TextInput[Any] = ui.TextInput(
            label=render.words("modal.what_changes"),
            style=discord.TextStyle.paragraph,
            placeholder=render.words("modal.placeholder"),
            max_length=2000,
            custom_id="instruction",
        )
        self.add_item(self.instruction)

    async def on_error(  # type: ignore[override]  # a modal's errors have no item
        self, interaction: discord.Interaction, error: Exception, /
    ) -> None:
        await interaction.client.report_error(interaction, error)  # type: ignore[attr-defined]

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """The submission is answered in the language the modal was opened in."""
        set_language(self.language)
        return True


class EditResultModal(_PromptModal):
    """Edit one image of a result with the user's instruction (a new job, charged)."""

    def __init__(self, opened_by: int, job_id: str, index: int, *, private: bool) -> None:
        super().__init__(render.words("modal.edit_image"), f"ib:editresult:{opened_by}")
        self.job_id = job_id
        self.index = index
        self.private = private

    async def on_submit(self, interaction: discord.Interaction, /) -> None:
        core = core_of(interaction)

        async def submit(target: ReplyTarget) -> Submitted:
            return await core.generation.derive(
                context.actor_of(interaction),
                self.job_id,
                prompt=self.instruction.value,
                index=self.index,
                idempotency_key=context.request_key(interaction),
                conversation=context.conversation_of(interaction),
                reply_target=target,
            )

        await respond.run_job(interaction, submit, private=self.private)


class EditImagesModal(_PromptModal):
    """The instruction for "Edit with imagebot": the images of the chosen message."""

    def __init__(self, opened_by: int, attachments: list[discord.Attachment]) -> None:
        super().__init__(render.words("modal.edit_with"), f"ib:editimages:{opened_by}")
        self.attachments = attachments

    async def on_submit(self, interaction: discord.Interaction, /) -> None:
        core = core_of(interaction)

        async def submit(target: ReplyTarget) -> Submitted:
            inputs = await intake.read_images(
                self.attachments, max_bytes=core.settings.max_input_bytes
            )
            return await core.generation.submit(
                GenerateRequest(
                    actor=context.actor_of(interaction),
                    conversation=context.conversation_of(interaction),
                    prompt=self.instruction.value,
                    options=GenerateOptions(),
                    idempotency_key=context.request_key(interaction),
                    reply_target=target,
                    inputs=inputs,
                )
            )

        await respond.run_job(interaction, submit, private=False)
