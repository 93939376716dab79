"""``/admin``: the operators' tools (P17, P19), in a direct message with the bot.

Hidden twice. Discord shows the group in servers only to members with Administrator
(``default_permissions`` with no permission: Discord cannot hide a command in DMs), and
every use is checked against ``IMAGEBOT_ADMINS`` before anything else, options included:
to anyone else it answers exactly as an unknown command does (errors.py makes sure of
that for every error of /admin). Each subcommand is one call to core's AdminService,
which checks the operator again and writes the audit log.
"""

from __future__ import annotations

import re

import discord
from discord import app_commands
from discord.app_commands import Range

from bot.discord import context, render, respond, views
from bot.discord.cogs.base import BaseCog
from bot.discord.translator import d
from core.admin.service import NotAnOperator
from core.errors import InvalidRequest

_MENTION = re.compile(r"<@!?(\d{1,20})>", re.ASCII)
_SNOWFLAKE = re.compile(r"\d{1,20}", re.ASCII)
_QUALIFIED = re.compile(r"(?P<platform>[a-z]{1,20}):(?P<id>[\w-]{1,64})", re.ASCII)

TARGET = d("dc.opt.admin.target")
REASON = d("dc.opt.admin.reason")


def parse_user(text: str) -> tuple[str, str]:
    """An operator's way of naming a user -> (platform, platform user id).

    ``123…`` and ``<@123…>`` are Discord users; ``telegram:123`` names a user of another
    platform (operators manage everyone from either chat)."""
    text = text.strip()
    mention = _MENTION.fullmatch(text)
    if mention:
        return "discord", mention[1]
    if _SNOWFLAKE.fullmatch(text):
        return "discord", text
    qualified = _QUALIFIED.fullmatch(text)
    if qualified:
        return qualified["platform"], qualified["id"]
    raise InvalidRequest(render.target_help())


class AdminCog(BaseCog):
    """The ``/admin`` group (every answer ephemeral)."""

    admin = app_commands.Group(
        name="admin",
        description=d("dc.cmd.admin"),
        default_permissions=discord.Permissions.none(),
        allowed_contexts=app_commands.AppCommandContext(
            guild=True, dm_channel=True, private_channel=False
        ),
    )

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Before options are even read: operators only, and only in their DM with the bot."""
        if not self.core.admin.is_operator(context.actor_of(interaction)):
            raise render.CheckRefused(NotAnOperator())
        if not context.is_dm(interaction):
            raise render.CheckRefused(InvalidRequest(render.admin_dm_only()))
        return True

    @admin.command(name="user", description=d("dc.cmd.admin.user"))
    @app_commands.describe(user=TARGET)
    async def user(self, interaction: discord.Interaction, user: Range[str, 1, 100]) -> None:
        """A user's profile, balance, recent ledger, strikes, ban and job count."""
        if not await respond.defer(interaction, ephemeral=True):
            return
        platform, user_id = parse_user(user)
        summary = await self.core.admin.lookup(context.actor_of(interaction), platform, user_id)
        await respond.reply(interaction, render.admin_user_text(summary, self.core.clock.now()))

    @admin.command(name="grant", description=d("dc.cmd.admin.grant"))
    @app_commands.describe(user=TARGET, amount=d("dc.opt.admin.give"), reason=REASON)
    async def grant(
        self,
        interaction: discord.Interaction,
        user: Range[str, 1, 100],
        amount: Range[int, 1, 1_000_000],
        reason: Range[str, 1, 500],
    ) -> None:
        """Credits in, recorded in the ledger with the reason."""
        await self._grant(interaction, user, amount, reason)

    @admin.command(name="revoke", description=d("dc.cmd.admin.revoke"))
    @app_commands.describe(user=TARGET, amount=d("dc.opt.admin.take"), reason=REASON)
    async def revoke(
        self,
        interaction: discord.Interaction,
        user: Range[str, 1, 100],
        amount: Range[int, 1, 1_000_000],
        reason: Range[str, 1, 500],
    ) -> None:
        """Credits out (the balance may go below zero), recorded with the reason."""
        await self._grant(interaction, user, -amount, reason)

    async def _grant(
        self, interaction: discord.Interaction, user: str, amount: int, reason: str
    ) -> None:
        if not await respond.defer(interaction, ephemeral=True):
            return
        platform, user_id = parse_user(user)
        balance = await self.core.admin.grant(
            context.actor_of(interaction),
            platform,
            user_id,
            amount,
            reason=reason,
            # A redelivered interaction grants once.
            action_id=context.request_key(interaction),
        )
        await respond.reply(
            interaction, render.admin_grant_text(render.who(platform, user_id), amount, balance)
        )

    @admin.command(name="ban", description=d("dc.cmd.admin.ban"))
    @app_commands.describe(
        user=TARGET, reason=d("dc.opt.admin.why_audit"), hours=d("dc.opt.admin.hours")
    )
    async def ban(
        self,
        interaction: discord.Interaction,
        user: Range[str, 1, 100],
        reason: Range[str, 1, 500],
        hours: Range[int, 1, 87_600] | None = None,
    ) -> None:
        """A temporary or permanent ban (privacy commands keep working for them, P25)."""
        if not await respond.defer(interaction, ephemeral=True):
            return
        platform, user_id = parse_user(user)
        standing = await self.core.admin.ban(
            context.actor_of(interaction), platform, user_id, reason=reason, hours=hours
        )
        await respond.reply(
            interaction,
            render.admin_ban_text(render.who(platform, user_id), standing, self.core.clock.now()),
        )

    @admin.command(name="unban", description=d("dc.cmd.admin.unban"))
    @app_commands.describe(user=TARGET, reason=d("dc.opt.admin.why_audit"))
    async def unban(
        self,
        interaction: discord.Interaction,
        user: Range[str, 1, 100],
        reason: Range[str, 1, 500],
    ) -> None:
        """Lift a ban."""
        if not await respond.defer(interaction, ephemeral=True):
            return
        platform, user_id = parse_user(user)
        await self.core.admin.unban(context.actor_of(interaction), platform, user_id, reason=reason)
        await respond.reply(interaction, render.admin_unban_text(render.who(platform, user_id)))

    @admin.command(name="refund", description=d("dc.cmd.admin.refund"))
    @app_commands.describe(job=d("dc.opt.admin.job"), reason=REASON)
    async def refund(
        self,
        interaction: discord.Interaction,
        job: Range[str, 1, 64],
        reason: Range[str, 1, 500],
    ) -> None:
        """Refund a bad result, once per job."""
        if not await respond.defer(interaction, ephemeral=True):
            return
        job_id = job.strip().lower()
        refunded = await self.core.admin.refund_job(
            context.actor_of(interaction), job_id, reason=reason
        )
        await respond.reply(interaction, render.admin_refund_text(job_id, refunded))

    @admin.command(name="stats", description=d("dc.cmd.admin.stats"))
    async def stats(self, interaction: discord.Interaction) -> None:
        """Figures of the whole bot."""
        if not await respond.defer(interaction, ephemeral=True):
            return
        figures = await self.core.admin.stats(context.actor_of(interaction))
        await respond.reply(interaction, render.admin_stats_text(figures))

    @admin.command(name="retention", description=d("dc.cmd.admin.retention"))
    @app_commands.describe(dry_run=d("dc.opt.admin.dry_run"))
    async def retention(self, interaction: discord.Interaction, dry_run: bool = False) -> None:
        """What the scheduler does every hour, now."""
        if not await respond.defer(interaction, ephemeral=True):
            return
        counts = await self.core.admin.run_retention(context.actor_of(interaction), dry_run=dry_run)
        await respond.reply(interaction, render.admin_retention_text(counts, dry_run=dry_run))

    @admin.command(name="reviews", description=d("dc.cmd.admin.reviews"))
    async def reviews(self, interaction: discord.Interaction) -> None:
        """The open review queue with a button per decision."""
        if not await respond.defer(interaction, ephemeral=True):
            return
        items = await self.core.admin.reviews(context.actor_of(interaction))
        await respond.reply(
            interaction, render.admin_reviews_text(items), view=views.reviews_view(items)
        )

    @admin.command(name="appeals", description=d("dc.cmd.admin.appeals"))
    async def appeals(self, interaction: discord.Interaction) -> None:
        """Appeals waiting for an operator."""
        if not await respond.defer(interaction, ephemeral=True):
            return
        items = await self.core.admin.appeals(context.actor_of(interaction))
        await respond.reply(interaction, render.admin_appeals_text(items))

    @admin.command(name="appeal", description=d("dc.cmd.admin.appeal"))
    @app_commands.describe(
        request=d("dc.opt.admin.request"),
        decision=d("dc.opt.admin.decision"),
        reason=d("dc.opt.admin.appeal_reason"),
    )
    @app_commands.choices(
        decision=[
            app_commands.Choice(name=d("dc.admin.choice_grant"), value="grant"),
            app_commands.Choice(name=d("dc.admin.choice_deny"), value="deny"),
        ]
    )
    async def appeal(
        self,
        interaction: discord.Interaction,
        request: Range[int, 1, 2_147_483_647],
        decision: app_commands.Choice[str],
        reason: Range[str, 1, 500],
    ) -> None:
        """Grant or deny one appeal; audited, and the user is told in a DM."""
        if not await respond.defer(interaction, ephemeral=True):
            return
        outcome, told = await self.core.admin.decide_appeal(
            context.actor_of(interaction),
            request,
            grant=decision.value == "grant",
            reason=reason,
        )
        await respond.reply(interaction, render.admin_appeal_decided(outcome, told))
