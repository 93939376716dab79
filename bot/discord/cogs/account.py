"""``/balance``, ``/settings`` and ``/help``."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.app_commands import Choice, Range

from bot.discord import context, render, respond
from bot.discord.cogs.base import BaseCog, require_terms
from bot.discord.cogs.imagine import (
    FORMAT_CHOICES,
    QUALITY_CHOICES,
    SIZE_CHOICES,
    model_choices,
)
from bot.discord.translator import d
from core.generation.models import MAX_N_PER_JOB
from core.i18n import LANGUAGE_NAMES, LANGUAGES, current_language
from core.types import GenerateOptions

_DEFAULT = Choice(name="default", value="default")
N_CHOICES = [Choice(name=str(n), value=str(n)) for n in range(1, MAX_N_PER_JOB + 1)]
BACKGROUND_CHOICES = [Choice(name=b, value=b) for b in ("auto", "opaque", "transparent")]
LANGUAGE_CHOICES = [
    *(Choice(name=LANGUAGE_NAMES[lang], value=lang) for lang in LANGUAGES),
    Choice(name=d("settings.language_auto"), value="default"),
]


class AccountCog(BaseCog):
    """The user's credits, defaults and the help text."""

    @app_commands.command(name="balance", description=d("cmd.balance"))
    async def balance(self, interaction: discord.Interaction) -> None:
        """Available and held credits with the newest ledger lines."""
        if not await respond.defer(interaction, ephemeral=True):
            return
        actor = context.actor_of(interaction)
        await require_terms(self.core, actor)
        user = await self.core.users.register(actor)
        view = await self.core.credits.balance(user.id)
        await respond.reply(interaction, render.balance_text(view))

    @app_commands.command(name="settings", description=d("cmd.settings"))
    @app_commands.describe(
        size=d("opt.settings.size"),
        quality=d("opt.settings.quality"),
        format=d("opt.settings.format"),
        n=d("opt.settings.n"),
        background=d("opt.settings.background"),
        language=d("opt.settings.language"),
        model=d("opt.settings.model"),
    )
    @app_commands.choices(
        size=[*SIZE_CHOICES, _DEFAULT],
        quality=[*QUALITY_CHOICES, _DEFAULT],
        format=[*FORMAT_CHOICES, _DEFAULT],
        n=[*N_CHOICES, _DEFAULT],
        background=[*BACKGROUND_CHOICES, _DEFAULT],
        language=LANGUAGE_CHOICES,
    )
    async def settings(
        self,
        interaction: discord.Interaction,
        size: Choice[str] | None = None,
        quality: Choice[str] | None = None,
        format: Choice[str] | None = None,
        n: Choice[str] | None = None,
        background: Choice[str] | None = None,
        model: Range[str, 1, 100] | None = None,
        language: Choice[str] | None = None,
    ) -> None:
        """Without options, the current defaults; with some, change those (``default``
        resets one)."""
        if not await respond.defer(interaction, ephemeral=True):
            return
        actor = context.actor_of(interaction)
        await require_terms(self.core, actor)
        if language is not None:
            # Remembered at once; this very answer is already in the new language.
            await self.core.users.set_language(actor, language.value)
            await context.use_language_of(self.core, interaction)
        changes: dict[str, object] = {
            name: choice.value
            for name, choice in (
                ("size", size),
                ("quality", quality),
                ("output_format", format),
                ("n", n),
                ("background", background),
            )
            if choice is not None
        }
        if model is not None:
            changes["model"] = model.strip()
        if "n" in changes and changes["n"] != "default":
            changes["n"] = int(str(changes["n"]))
        if changes:
            current = await self.core.users.update_settings(actor, **changes)
        else:
            current = await self.core.users.settings(actor)
        price = self.core.generation.quote(
            GenerateOptions(
                size=current.size,
                quality=current.quality,
                output_format=current.output_format,
                background=current.background,
                n=current.n,
            ),
            current.model,
        )
        chosen = self.core.generation.choose_model(None, current.model)
        name = LANGUAGE_NAMES[current_language()]
        await respond.reply(interaction, render.settings_text(current, price, name, chosen))

    @settings.autocomplete("model")
    async def _settings_model(
        self, interaction: discord.Interaction, current: str
    ) -> list[Choice[str]]:
        return [*(await model_choices(self.core, current)), _DEFAULT][:25]

    @app_commands.command(name="help", description=d("cmd.help"))
    async def help(self, interaction: discord.Interaction) -> None:
        """The command list (answered at once: nothing to look up)."""
        await respond.reply(
            interaction, render.help_text(self.core.generation.model_prices()), ephemeral=True
        )
