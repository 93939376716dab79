"""Making images: ``/imagine``, ``/edit`` and the message command "Edit with imagebot"."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice, Range

from bot.discord import context, intake, render, respond, views
from bot.discord.cogs.base import BaseCog
from bot.discord.translator import d
from core.generation.models import FIXED_SIZES, FORMATS, MAX_N_PER_JOB, QUALITIES
from core.types import GenerateOptions, GenerateRequest, ReplyTarget, Submitted

_SHAPES = {
    "1024x1024": "dc.choice.square",
    "1536x1024": "dc.choice.landscape",
    "1024x1536": "dc.choice.portrait",
}
SIZE_CHOICES = [
    Choice(name=d(_SHAPES[s], size=s) if s in _SHAPES else s, value=s) for s in FIXED_SIZES
] + [Choice(name=d("choice.auto_size"), value="auto")]
QUALITY_CHOICES = [Choice(name=q, value=q) for q in QUALITIES]
FORMAT_CHOICES = [Choice(name=f, value=f) for f in FORMATS]

_DESCRIBE = {
    "size": d("dc.opt.size"),
    "quality": d("dc.opt.quality"),
    "n": d("dc.opt.n", max=str(MAX_N_PER_JOB)),
    "format": d("dc.opt.format"),
    "transparent": d("dc.opt.transparent"),
    "private": d("dc.opt.private"),
    "model": d("dc.opt.model"),
}


def options_from(
    size: Choice[str] | None,
    quality: Choice[str] | None,
    n: int | None,
    fmt: Choice[str] | None,
    transparent: bool | None,
    model: str | None = None,
) -> GenerateOptions:
    """Typed slash-command options to core's; unset means the user's default."""
    output_format = fmt.value if fmt else None
    if transparent and output_format is None:
        output_format = "png"
    return GenerateOptions(
        size=size.value if size else None,
        quality=quality.value if quality else None,
        output_format=output_format,
        background="transparent" if transparent else None,
        n=n,
        model=model.strip() if model and model.strip() else None,
    )


async def model_choices(core: Any, current: str) -> list[Choice[str]]:
    """The models on offer whose name or label contains what the user typed (Discord's
    autocomplete: the choices follow the running catalog, which a static list cannot)."""
    typed = current.strip().lower()
    choices = []
    for name, label, _ in core.generation.model_prices():
        if typed in name.lower() or typed in label.lower():
            shown = name if label == name else f"{label} ({name})"
            choices.append(Choice(name=shown[:100], value=name[:100]))
    return choices[:25]


class ImagineCog(BaseCog):
    """Generation and editing commands."""

    def __init__(self, core: Any, tree: app_commands.CommandTree[Any]) -> None:
        super().__init__(core, tree)
        self.edit_menu = app_commands.ContextMenu(
            name="Edit with imagebot", callback=self.edit_with_imagebot
        )

    async def cog_load(self) -> None:
        """Context menus cannot be declared in a cog; they are added to the tree here."""
        self.tree.add_command(self.edit_menu)

    async def cog_unload(self) -> None:
        """Undo :meth:`cog_load`."""
        self.tree.remove_command(self.edit_menu.name, type=self.edit_menu.type)

    @app_commands.command(
        name="imagine", description=d("cmd.imagine"), extras={context.DEFERS_FIRST: True}
    )
    @app_commands.describe(
        prompt=d("opt.imagine.prompt"),
        image1=d("opt.imagine.image1"),
        image2=d("opt.another_image"),
        image3=d("opt.another_image"),
        image4=d("opt.another_image"),
        **_DESCRIBE,
    )
    @app_commands.choices(size=SIZE_CHOICES, quality=QUALITY_CHOICES, format=FORMAT_CHOICES)
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: Range[str, 1, 6000],
        size: Choice[str] | None = None,
        quality: Choice[str] | None = None,
        n: Range[int, 1, MAX_N_PER_JOB] | None = None,
        format: Choice[str] | None = None,
        transparent: bool | None = None,
        private: bool = False,
        image1: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        model: Range[str, 1, 100] | None = None,
    ) -> None:
        """``/imagine``: generate; with attachments, edit them."""
        await self._generate(
            interaction,
            prompt,
            options_from(size, quality, n, format, transparent, model),
            [a for a in (image1, image2, image3, image4) if a is not None],
            private=private,
        )

    @app_commands.command(
        name="edit", description=d("cmd.edit"), extras={context.DEFERS_FIRST: True}
    )
    @app_commands.describe(
        prompt=d("opt.edit.prompt"),
        image1=d("opt.edit.image1"),
        image2=d("opt.another_image"),
        image3=d("opt.another_image"),
        image4=d("opt.another_image"),
        **_DESCRIBE,
    )
    @app_commands.choices(size=SIZE_CHOICES, quality=QUALITY_CHOICES, format=FORMAT_CHOICES)
    async def edit(
        self,
        interaction: discord.Interaction,
        prompt: Range[str, 1, 6000],
        image1: discord.Attachment,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        size: Choice[str] | None = None,
        quality: Choice[str] | None = None,
        n: Range[int, 1, MAX_N_PER_JOB] | None = None,
        format: Choice[str] | None = None,
        transparent: bool | None = None,
        private: bool = False,
        model: Range[str, 1, 100] | None = None,
    ) -> None:
        """``/edit``: the same as ``/imagine`` with images, which it requires."""
        await self._generate(
            interaction,
            prompt,
            options_from(size, quality, n, format, transparent, model),
            [a for a in (image1, image2, image3, image4) if a is not None],
            private=private,
        )

    @imagine.autocomplete("model")
    async def _imagine_model(
        self, interaction: discord.Interaction, current: str
    ) -> list[Choice[str]]:
        return await model_choices(self.core, current)

    @edit.autocomplete("model")
    async def _edit_model(
        self, interaction: discord.Interaction, current: str
    ) -> list[Choice[str]]:
        return await model_choices(self.core, current)

    async def edit_with_imagebot(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        """The message command: ask for the instruction, then edit that message's images."""
        images = [a for a in message.attachments if intake.looks_like_image(a)]
        if not images:
            await respond.reply(interaction, render.no_images(), ephemeral=True)
            return
        await interaction.response.send_modal(
            views.EditImagesModal(interaction.id, images[: intake.MAX_IMAGES])
        )

    async def _generate(
        self,
        interaction: discord.Interaction,
        prompt: str,
        options: GenerateOptions,
        attachments: list[discord.Attachment],
        *,
        private: bool,
    ) -> None:
        core = self.core

        async def submit(target: ReplyTarget) -> Submitted:
            inputs = await intake.read_images(attachments, max_bytes=core.settings.max_input_bytes)
            return await core.generation.submit(
                GenerateRequest(
                    actor=context.actor_of(interaction),
                    conversation=context.conversation_of(interaction),
                    prompt=prompt,
                    options=options,
                    idempotency_key=context.request_key(interaction),
                    reply_target=target,
                    inputs=inputs,
                )
            )

        await respond.run_job(interaction, submit, private=private)
