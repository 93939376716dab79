"""The one place errors are answered: commands (``tree.on_error``), buttons and modals.

The words come from render.describe_error. Where they go depends on how far the answer
got: not yet acknowledged -> an ephemeral answer; a deferred button update -> an ephemeral
follow-up (the result message stays as it was); a deferred response -> edited into it,
except account matters (terms, credits) in a public channel, which go to an ephemeral
follow-up while the public response says only that nothing started.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import discord
from discord import app_commands
from discord.utils import MISSING

from bot.discord import context, render, respond, views
from core.admin.service import NotAnOperator
from core.errors import TermsRequired
from core.privacy.onboarding import OnboardingStatus

log = logging.getLogger("imagebot.discord")

ADMIN_COMMAND = "admin"
"""The operators' command group: for anyone else, every answer about it is "unknown"."""


async def report_error(core: Any, interaction: discord.Interaction, exc: BaseException) -> None:
    """Answer ``interaction`` with the words for ``exc``; log what is not the user's doing."""
    if isinstance(exc, app_commands.CommandInvokeError):
        exc = exc.original
    if is_admin_command(interaction) and not core.admin.is_operator(context.actor_of(interaction)):
        # Whatever went wrong (a forged subcommand, an option out of range), a non-operator
        # learns nothing about /admin: the answer is the unknown command's.
        exc = NotAnOperator()
    shown = render.describe_error(exc)
    if shown.code == "internal":
        log.error(
            "interaction failed interaction=%s type=%s",
            interaction.id,
            interaction.type.name,
            exc_info=exc,
        )
    else:
        log.info("interaction refused interaction=%s code=%s", interaction.id, shown.code)
    text, view = shown.text, MISSING
    if shown.terms and isinstance(exc, TermsRequired):
        state: Literal["new", "policy_changed"] = "policy_changed" if exc.policy_changed else "new"
        text = render.terms_text(OnboardingStatus(state, core.onboarding.policy))
        view = views.terms_view(core.onboarding.policy)
    try:
        await _send(interaction, text, view, private=shown.private)
    except discord.HTTPException as failure:
        log.warning(
            "could not report an error interaction=%s status=%s", interaction.id, failure.status
        )


async def _send(interaction: discord.Interaction, text: str, view: Any, *, private: bool) -> None:
    followup_kwargs: dict[str, Any] = {} if view is MISSING else {"view": view}
    if not interaction.response.is_done():
        await interaction.response.send_message(
            text, ephemeral=True, allowed_mentions=render.NO_MENTIONS, **followup_kwargs
        )
        return
    if interaction.extras.get(respond.UPDATE):
        await interaction.followup.send(
            text, ephemeral=True, allowed_mentions=render.NO_MENTIONS, **followup_kwargs
        )
        return
    shared = not interaction.extras.get(respond.EPHEMERAL) and context.where(interaction) != "dm"
    if private and shared:
        await interaction.edit_original_response(
            content=render.private_details(),
            attachments=[],
            view=None,
            allowed_mentions=render.NO_MENTIONS,
        )
        await interaction.followup.send(
            text, ephemeral=True, allowed_mentions=render.NO_MENTIONS, **followup_kwargs
        )
        return
    await interaction.edit_original_response(
        content=text,
        attachments=[],
        view=None if view is MISSING else view,
        allowed_mentions=render.NO_MENTIONS,
    )


def is_admin_command(interaction: discord.Interaction) -> bool:
    """True for a use of ``/admin`` (any subcommand)."""
    data = interaction.data
    return (
        interaction.type is discord.InteractionType.application_command
        and isinstance(data, dict)
        and data.get("name") == ADMIN_COMMAND
    )
