"""What every cog shares: the core and the command tree it registers in, and the terms gate.

Cogs receive what they need from the client that adds them; they never import the client.
"""

from __future__ import annotations

from typing import Any

from discord import app_commands
from discord.ext import commands

from core.errors import AgeRefused, TermsRequired
from core.types import Actor


class BaseCog(commands.Cog):
    """A cog bound to the core and to the command tree of the client that adds it."""

    def __init__(self, core: Any, tree: app_commands.CommandTree[Any]) -> None:
        self.core: Any = core
        self.tree = tree


async def require_terms(core: Any, actor: Actor) -> None:
    """Raise what submit would raise for someone who has not accepted the terms, so account
    commands store nothing about them either (the error renderer shows the terms)."""
    status = await core.onboarding.status(actor)
    if status.state == "refused":
        raise AgeRefused()
    if not status.may_generate:
        raise TermsRequired(policy_changed=status.state == "policy_changed")
