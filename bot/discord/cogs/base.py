"""What every cog shares: the bot and its core, and the terms gate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from discord.ext import commands

from core.errors import AgeRefused, TermsRequired
from core.types import Actor

if TYPE_CHECKING:
    from bot.discord.client import ImagebotBot


class BaseCog(commands.Cog):
    """A cog bound to the bot and its core."""

    def __init__(self, bot: ImagebotBot) -> None:
        self.bot = bot
        self.core: Any = bot.core


async def require_terms(core: Any, actor: Actor) -> None:
    """Raise what submit would raise for someone who has not accepted the terms, so account
    commands store nothing about them either (the error renderer shows the terms)."""
    status = await core.onboarding.status(actor)
    if status.state == "refused":
        raise AgeRefused()
    if not status.may_generate:
        raise TermsRequired(policy_changed=status.state == "policy_changed")
