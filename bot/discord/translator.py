"""Discord's side of the message catalog: command descriptions and choice names in every
shipped language (``description_localizations``), and the language of each interaction.

Command and option names stay English (people type them, and they are the same in every
guide); descriptions, option descriptions and choice names are catalog messages, named
in the cogs with :func:`d` and translated here for each Discord locale the bot ships.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot.discord import context
from core.i18n import LANGUAGES, SOURCE_LANGUAGE, has_message, t

NAME_LOCATIONS = frozenset({Where.command_name, Where.group_name, Where.parameter_name})
"""What stays English: the words people type."""


def d(key: str, **args: object) -> app_commands.locale_str:
    """A command, option or choice text named by its catalog ``key`` (English as the
    default text Discord shows for locales the bot lacks)."""
    return app_commands.locale_str(t(key, SOURCE_LANGUAGE, **args), key=key, args=args)


def shipped_language(locale: discord.Locale) -> str | None:
    """The shipped language for a Discord locale (``es-ES`` → ``es``, ``pt-BR``), or None
    when the bot lacks it (English variants included: the default text is English)."""
    value = locale.value
    base = value.split("-", 1)[0]
    if value in LANGUAGES:
        return value
    if base in LANGUAGES and base != SOURCE_LANGUAGE:
        return base
    return None


class CatalogTranslator(app_commands.Translator):
    """Descriptions and choice names from the message catalog, per Discord locale."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        """The catalog text of ``string`` in ``locale``'s language (None: keep English)."""
        if context.location in NAME_LOCATIONS:
            return None
        key = string.extras.get("key")
        lang = shipped_language(locale)
        if not isinstance(key, str) or lang is None or lang == SOURCE_LANGUAGE:
            return None
        if not has_message(key):
            return None
        args: dict[str, Any] = string.extras.get("args") or {}
        return t(key, lang, **args)[:100]


class LocalisedTree(app_commands.CommandTree[Any]):
    """The command tree: every command runs in its user's language."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Set the language of this interaction (the check itself always passes). A
        command that defers first does not wait for it: the defer settles it
        (``respond.defer``), so no database call comes before Discord's acknowledgement."""
        command = interaction.command
        extras = getattr(command, "extras", None) or {}
        if extras.get(context.DEFERS_FIRST):
            acks = getattr(self.client, "acks", None)
            if acks is not None:
                acks.arrived(interaction)
            context.begin_language(self.client.core, interaction)
        else:
            await context.use_language_of(self.client.core, interaction)
        return True
