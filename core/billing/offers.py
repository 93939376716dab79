"""Credit packs and monthly plans sold through checkout links (P05).

The catalogue comes from the operator's configuration; links come from a
:class:`CheckoutGateway` (Stripe Checkout, in payments/). Without a gateway, billing is
off and every verb answers with a kind explanation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from core.errors import ConfigurationError, InvalidRequest, UserFacingError
from core.i18n import msg, render
from core.types import Actor, PaymentLinkReply

if TYPE_CHECKING:
    from core.billing.purchases import PurchaseService


class BillingDisabled(UserFacingError):
    """The operator has not set up payments."""

    code = "billing_disabled"
    default_key = "error.billing_disabled"


@dataclass(frozen=True, slots=True)
class Offer:
    """A credit pack (one-time) or a monthly plan (recurring credits)."""

    id: str
    kind: Literal["pack", "plan"]
    name: str
    credits: int
    price_minor: int
    currency: str = "usd"
    stripe_price_id: str | None = None
    stars: int | None = None
    """The price in Telegram Stars; None: not sold in Stars."""
    discord_sku_id: str | None = None
    """The Discord SKU (consumable for packs, subscription for plans); None: not sold there."""

    @property
    def price_text(self) -> str:
        """The price as people read it, e.g. ``$4.99`` or ``4.99 EUR``."""
        major = f"{self.price_minor / 100:.2f}"
        return f"${major}" if self.currency.lower() == "usd" else f"{major} {self.currency.upper()}"


# Stars prices: a buyer pays Apple or Google about 2 cents a Star and the operator is
# paid about 1.3 cents, so these keep the card prices' margin roughly (USD/0.013, rounded).
DEFAULT_OFFERS = (
    Offer("pack_s", "pack", "Starter pack", 50, 499, stars=350),
    Offer("pack_m", "pack", "Creator pack", 150, 1299, stars=900),
    Offer("pack_l", "pack", "Studio pack", 500, 3999, stars=2800),
    Offer("plan_basic", "plan", "Monthly 200", 200, 999, stars=700),
    Offer("plan_pro", "plan", "Monthly 800", 800, 2999, stars=2100),
)

MAX_STARS = 10_000
"""Telegram's ceiling for one Stars invoice and for a subscription's price."""
MAX_OFFER_ID_BYTES = 64
"""Offer ids travel in invoice payloads (at most 128 bytes with the order reference)."""
RAILS = ("stripe", "stars", "discord")
"""The payment rails: Stripe Checkout links, Telegram Stars, Discord premium (SKUs)."""


def parse_offers(text: str) -> tuple[Offer, ...]:
    """The operator's catalogue from JSON (``IMAGEBOT_OFFERS``); empty means the defaults.

    Each item: ``{"id", "kind": "pack"|"plan", "name", "credits", "price_minor",
    "currency"?, "stripe_price_id"?, "stars"?, "discord_sku_id"?}``. An offer without
    ``stars`` is not sold in Telegram Stars; one without ``discord_sku_id`` not through
    Discord's premium checkout.
    """
    if not text.strip():
        return DEFAULT_OFFERS
    try:
        items = json.loads(text)
        offers = tuple(
            Offer(
                id=str(i["id"]),
                kind=i["kind"],
                name=str(i["name"]),
                credits=int(i["credits"]),
                price_minor=int(i["price_minor"]),
                currency=str(i.get("currency", "usd")).lower(),
                stripe_price_id=i.get("stripe_price_id"),
                stars=_stars(i.get("stars")),
                discord_sku_id=_snowflake(i.get("discord_sku_id")),
            )
            for i in items
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            "IMAGEBOT_OFFERS must be a JSON list of "
            '{"id","kind":"pack"|"plan","name","credits","price_minor"}'
        ) from exc
    for offer in offers:
        if offer.kind not in ("pack", "plan") or offer.credits <= 0 or offer.price_minor <= 0:
            raise ConfigurationError(f"IMAGEBOT_OFFERS: offer {offer.id!r} is not valid")
        if not offer.id or len(offer.id.encode()) > MAX_OFFER_ID_BYTES or ":" in offer.id:
            raise ConfigurationError(
                f"IMAGEBOT_OFFERS: offer id {offer.id[:80]!r} must be 1-64 bytes without ':'"
            )
        if offer.stars is not None and not 1 <= offer.stars <= MAX_STARS:
            raise ConfigurationError(
                f"IMAGEBOT_OFFERS: offer {offer.id!r}: stars must be 1-{MAX_STARS}"
            )
    if len({o.id for o in offers}) != len(offers):
        raise ConfigurationError("IMAGEBOT_OFFERS: offer ids must be unique")
    skus = [o.discord_sku_id for o in offers if o.discord_sku_id]
    if len(set(skus)) != len(skus):
        raise ConfigurationError("IMAGEBOT_OFFERS: a discord_sku_id is used by two offers")
    return offers


def _stars(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("stars must be a whole number")
    return value


def _snowflake(value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    if not (text.isascii() and text.isdigit() and 1 <= len(text) <= 20):
        raise ValueError("discord_sku_id must be a snowflake")
    return text


def offers_on_rail(offers: tuple[Offer, ...], rail: str) -> tuple[Offer, ...]:
    """The offers sold on ``rail`` (``stripe``: all; ``stars``: those with a Stars price;
    ``discord``: those with a SKU)."""
    if rail == "stars":
        return tuple(o for o in offers if o.stars is not None)
    if rail == "discord":
        return tuple(o for o in offers if o.discord_sku_id is not None)
    return offers


def rail_report(
    offers: tuple[Offer, ...], *, telegram: str, discord: str, stripe: bool
) -> list[tuple[str, str, str]]:
    """``check-config`` rows: per rail in use, what is on sale and what is missing.

    ``telegram`` and ``discord`` are ``IMAGEBOT_TELEGRAM_PAYMENTS`` and
    ``IMAGEBOT_DISCORD_PAYMENTS``; ``stripe`` says whether a Stripe key is set.
    """
    rows: list[tuple[str, str, str]] = []
    rows.append(("ok", "IMAGEBOT_TELEGRAM_PAYMENTS", telegram))
    rows.append(("ok", "IMAGEBOT_DISCORD_PAYMENTS", discord))
    used = set()
    if telegram in ("stars", "both"):
        used.add("stars")
    if discord in ("premium", "both"):
        used.add("discord")
    if telegram in ("stripe", "both") or discord in ("stripe", "both"):
        used.add("stripe")
    labels = {"stars": "Telegram Stars", "discord": "Discord premium", "stripe": "Stripe"}
    for rail in ("stars", "discord", "stripe"):
        if rail not in used:
            continue
        selling = offers_on_rail(offers, rail)
        missing = [o.id for o in offers if o not in selling]
        if rail == "stripe" and not stripe:
            rows.append(
                (
                    "missing",
                    "IMAGEBOT_STRIPE_SECRET_KEY",
                    "Stripe is chosen as a payment rail but not set up: nothing is sold by card",
                )
            )
            continue
        on_sale = ", ".join(o.id for o in selling) or "nothing"
        status = "ok" if selling else "missing"
        text = f"{labels[rail]}: on sale {on_sale}"
        if missing:
            key = "stars" if rail == "stars" else "discord_sku_id"
            text += f'; without "{key}" (not sold there): {", ".join(missing)}'
            status = "warning" if selling else "missing"
        rows.append((status, "IMAGEBOT_OFFERS", text))
    if telegram == "both":
        rows.append(
            (
                "warning",
                "IMAGEBOT_TELEGRAM_PAYMENTS",
                "both: Telegram's rules sell digital goods in Stars only; card links risk "
                "the bot's removal",
            )
        )
    return rows


class CheckoutGateway(Protocol):
    """Makes payment links (implemented with Stripe in payments/)."""

    async def checkout_url(self, user_id: int, offer: Offer, *, request_key: str) -> str:
        """A hosted checkout page for ``offer``; the same ``request_key`` gives the same page."""
        ...

    async def portal_url(self, user_id: int) -> str | None:
        """A billing-portal page for a user who has a payment customer, else None."""
        ...


class BillingService:
    """The verbs ``billing.offers``, ``billing.checkout_link`` and ``billing.portal_link``."""

    def __init__(
        self,
        offers: tuple[Offer, ...],
        gateway: CheckoutGateway | None,
        *,
        ensure_user: UserEnsurer,
        purchases: PurchaseService | None = None,
    ) -> None:
        self._offers = offers
        self.gateway = gateway
        self._ensure_user = ensure_user
        self.purchases = purchases
        """The rail-neutral purchase core (Stars and Discord premium use it directly)."""

    def on_rail(self, kind: Literal["pack", "plan"], rail: str) -> tuple[Offer, ...]:
        """The packs or plans sold on ``rail`` (``stripe``, ``stars``, ``discord``)."""
        return tuple(o for o in offers_on_rail(self._offers, rail) if o.kind == kind)

    def by_sku(self, sku_id: str) -> Offer | None:
        """The offer sold as a Discord SKU, if any."""
        for offer in self._offers:
            if offer.discord_sku_id == sku_id:
                return offer
        return None

    @property
    def enabled(self) -> bool:
        """True when payment links can be made."""
        return self.gateway is not None

    def offers(self, kind: Literal["pack", "plan"]) -> tuple[Offer, ...]:
        """The packs or the plans on sale."""
        return tuple(o for o in self._offers if o.kind == kind)

    def offer(self, offer_id: str) -> Offer:
        """One offer by id."""
        for offer in self._offers:
            if offer.id == offer_id:
                return offer
        raise InvalidRequest(msg("tg.offer_gone"))

    async def checkout_link(
        self, actor: Actor, offer_id: str, *, request_key: str
    ) -> PaymentLinkReply:
        """A checkout link for ``offer_id``; ``request_key`` (the button press's id) makes a
        double click give the same link rather than two checkouts."""
        if self.gateway is None:
            raise BillingDisabled()
        offer = self.offer(offer_id)
        user_id = await self._ensure_user(actor)
        url = await self.gateway.checkout_url(user_id, offer, request_key=request_key)
        # Rendered here, in the language of the request in progress (the text is plain).
        key = "tg.checkout_plan" if offer.kind == "plan" else "tg.checkout_pack"
        text = msg(
            key,
            name=offer.name,
            credits=msg("credits", count=offer.credits),
            price=offer.price_text,
        )
        return PaymentLinkReply(render(text), url)

    async def portal_link(self, actor: Actor) -> PaymentLinkReply:
        """A link to manage plans, invoices and payment methods."""
        if self.gateway is None:
            raise BillingDisabled()
        user_id = await self._ensure_user(actor)
        url = await self.gateway.portal_url(user_id)
        if url is None:
            raise InvalidRequest(msg("tg.portal_nothing"))
        return PaymentLinkReply(render(msg("tg.portal")), url)


class UserEnsurer(Protocol):
    """Finds or creates the stored user id of an actor."""

    async def __call__(self, actor: Actor) -> int:
        """The stored user id."""
        ...
