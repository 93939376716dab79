"""Discord premium: offers sold as Discord SKUs, granted from entitlements.

A thin translator into ``core.billing.PurchaseService`` (``IMAGEBOT_DISCORD_PAYMENTS`` =
``premium`` or ``both``). A consumable SKU (a credit pack) grants its credits when
``ENTITLEMENT_CREATE`` arrives, keyed on the entitlement id, and is then consumed once
(``POST …/entitlements/{id}/consume``); a subscription SKU (a plan) grants each period,
keyed on the entitlement and the period's end, and ends when ``ends_at`` passes or the
entitlement is deleted. Events lost on the way are caught up from the entitlements an
interaction carries, by listing the user's entitlements after an interaction (at most
once per user every few minutes), and by ``imagebot discord reconcile``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import discord
from discord.ext import commands

from core.app import Core
from core.billing import Offer, PurchaseService, RailPaid, RailPlanChanged, RailRefunded
from core.errors import ConfigurationError
from core.types import Actor

log = logging.getLogger("imagebot.discord.premium")

RAIL: Literal["discord"] = "discord"
CURRENCY = "sku"
"""Discord keeps the money and tells us only the SKU: amounts are not known here."""
CATCH_UP_EVERY = 300.0
"""Seconds between two listings of one user's entitlements after their interactions."""


def sells_premium(core: Core) -> bool:
    """True when Discord users may pay through Discord's own checkout."""
    return core.settings.discord_payments in ("premium", "both")


def sells_cards(core: Core) -> bool:
    """True when Discord users may pay through Stripe links (and Stripe is set up)."""
    return core.settings.discord_payments in ("stripe", "both") and core.billing.enabled


def premium_offers(core: Core, kind: Literal["pack", "plan"]) -> tuple[Offer, ...]:
    """The offers of ``kind`` with a SKU, when premium is on."""
    return core.billing.on_rail(kind, "discord") if sells_premium(core) else ()


@dataclass(frozen=True, slots=True)
class EntitlementView:
    """The fields of an entitlement imagebot reads (from discord.py's object or raw JSON)."""

    id: str
    sku_id: str
    user_id: str | None
    deleted: bool
    consumed: bool
    ends_at: datetime | None

    @classmethod
    def of(cls, e: discord.Entitlement) -> EntitlementView:
        """From discord.py's Entitlement."""
        return cls(
            str(e.id),
            str(e.sku_id),
            str(e.user_id) if e.user_id else None,
            bool(e.deleted),
            bool(getattr(e, "consumed", False)),
            e.ends_at,
        )


def _purchases(core: Core) -> PurchaseService:
    purchases = core.billing.purchases
    assert purchases is not None
    return purchases


async def apply_entitlement(
    core: Core,
    client: discord.Client,
    e: EntitlementView,
    *,
    deleted: bool = False,
) -> bool:
    """Apply one entitlement as it is now; True when something changed.

    Consumables: grant once, then consume once (a consume Discord refuses because it was
    done already changes nothing). Subscriptions: grant the period ending at ``ends_at``
    once; a past ``ends_at`` or a deletion ends the plan.
    """
    offer = core.billing.by_sku(e.sku_id)
    if offer is None or e.user_id is None:
        return False  # another SKU of the application, or a server subscription
    purchases = _purchases(core)
    user = await core.users.register(Actor("discord", e.user_id))
    now = core.clock.now()
    changed = False
    if offer.kind == "pack":
        if deleted or e.deleted:
            outcome = await purchases.apply(
                RailRefunded(rail=RAIL, payment_id=e.id, amount=0, currency=CURRENCY)
            )
        else:
            outcome = await purchases.apply(
                RailPaid(
                    rail=RAIL,
                    payment_id=e.id,
                    user_id=user.id,
                    offer_id=offer.id,
                    amount=0,
                    currency=CURRENCY,
                )
            )
        changed = outcome.applied
        await purchases.deliver(outcome)
        if not (deleted or e.deleted) and not e.consumed:
            await _consume(client, e.id)
        return changed
    ends = e.ends_at
    if deleted or e.deleted or (ends is not None and ends <= now):
        outcome = await purchases.apply(
            RailPlanChanged(
                rail=RAIL,
                plan_id=e.id,
                status="canceled",
                cancel_at_period_end=False,
                period_end=ends,
                at=now,
            )
        )
        await purchases.deliver(outcome)
        return outcome.applied
    period = int(ends.timestamp()) if ends is not None else 0
    outcome = await purchases.apply(
        RailPaid(
            rail=RAIL,
            payment_id=f"{e.id}:{period}",
            user_id=user.id,
            offer_id=offer.id,
            amount=0,
            currency=CURRENCY,
            plan_id=e.id,
            period_end=ends,
            first_period=await purchases.rail_plan_is_new(RAIL, e.id),
        )
    )
    await purchases.deliver(outcome)
    return outcome.applied


async def _consume(client: discord.Client, entitlement_id: str) -> None:
    app_id = client.application_id
    if app_id is None:
        return
    try:
        await client.http.consume_entitlement(app_id, int(entitlement_id))
    except discord.HTTPException as exc:
        # Consumed before (a redelivered event, another replica): Discord refuses a
        # second consume, which is exactly what we want.
        log.info("entitlement %s not consumed again: status=%s", entitlement_id, exc.status)


async def catch_up_user(core: Core, client: discord.Client, user_id: str) -> int:
    """List one user's entitlements and apply what was missed; returns how many changed."""
    skus = [discord.Object(id=int(o.discord_sku_id)) for o in _sold(core) if o.discord_sku_id]
    if not skus:
        return 0
    changed = 0
    async for e in client.entitlements(
        user=discord.Object(id=int(user_id)), skus=skus, exclude_ended=False, limit=100
    ):
        changed += int(await apply_entitlement(core, client, EntitlementView.of(e)))
    return changed


def _sold(core: Core) -> list[Offer]:
    return [*core.billing.on_rail("pack", "discord"), *core.billing.on_rail("plan", "discord")]


class PremiumCog(commands.Cog):
    """Entitlement events, and catching up after a user's interactions."""

    def __init__(self, core: Core, client: discord.Client) -> None:
        self.core = core
        self.client = client
        self._last_catch_up: dict[str, float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _safely(self, what: str, e: EntitlementView, *, deleted: bool = False) -> None:
        try:
            await apply_entitlement(self.core, self.client, e, deleted=deleted)
        except Exception:
            log.exception("entitlement %s (%s) failed; reconcile picks it up", e.id, what)

    @commands.Cog.listener()
    async def on_entitlement_create(self, entitlement: discord.Entitlement) -> None:
        """A purchase, or a subscription starting."""
        await self._safely("create", EntitlementView.of(entitlement))

    @commands.Cog.listener()
    async def on_entitlement_update(self, entitlement: discord.Entitlement) -> None:
        """A subscription renewed (``ends_at`` moved) or ended."""
        await self._safely("update", EntitlementView.of(entitlement))

    @commands.Cog.listener()
    async def on_entitlement_delete(self, entitlement: discord.Entitlement) -> None:
        """Discord refunded or removed it."""
        await self._safely("delete", EntitlementView.of(entitlement), deleted=True)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Catch up in the background: what the interaction carries, and (now and then)
        the user's full list."""
        if not sells_premium(self.core):
            return
        user_id = str(interaction.user.id)
        carried = [EntitlementView.of(e) for e in interaction.entitlements]
        last = self._last_catch_up.get(user_id, 0.0)
        listing = time.monotonic() - last > CATCH_UP_EVERY
        if not carried and not listing:
            return
        if listing:
            self._last_catch_up[user_id] = time.monotonic()
        task = asyncio.create_task(self._catch_up(user_id, carried, listing))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _catch_up(self, user_id: str, carried: list[EntitlementView], listing: bool) -> None:
        for e in carried:
            if e.user_id == user_id:
                await self._safely("carried", e)
        if listing:
            try:
                await catch_up_user(self.core, self.client, user_id)
            except Exception:
                log.exception("listing the entitlements of a user failed")

    async def cog_unload(self) -> None:
        """Let catch-ups in flight finish."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


@dataclass
class PremiumReport:
    """What ``imagebot discord reconcile`` looked at and applied."""

    seen: int = 0
    applied: int = 0

    def text(self) -> str:
        """One line for the operator."""
        return f"discord entitlements: {self.seen} seen, {self.applied} applied"


async def reconcile_entitlements(core: Core, *, days: int) -> PremiumReport:
    """List the application's entitlements for the offers' SKUs (the last ``days``) and
    apply what lost events missed, through the same idempotent path."""
    from bot.discord.app import RunningAdapter, _point_at
    from bot.discord.client import ImagebotBot

    if core.settings.discord_token is None:
        raise ConfigurationError("IMAGEBOT_DISCORD_TOKEN is not set")
    report = PremiumReport()
    skus = [discord.Object(id=int(o.discord_sku_id)) for o in _sold(core) if o.discord_sku_id]
    if not skus:
        return report
    since = datetime.now(UTC) - timedelta(days=days)
    bot = ImagebotBot(core, serve_commands=False)
    running = RunningAdapter(bot, _point_at(core.settings.discord_api_url))
    try:
        await bot.login(core.settings.discord_token.get_secret_value())
        async for e in bot.entitlements(
            skus=skus,
            after=discord.Object(id=discord.utils.time_snowflake(since)),
            exclude_ended=False,
            exclude_deleted=False,
            limit=None,
        ):
            report.seen += 1
            view = EntitlementView.of(e)
            report.applied += int(await apply_entitlement(core, bot, view, deleted=view.deleted))
    finally:
        await running()
    return report
