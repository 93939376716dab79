"""Credit packs and monthly plans sold through checkout links (P05).

The catalogue comes from the operator's configuration; links come from a
:class:`CheckoutGateway` (Stripe Checkout, in payments/). Without a gateway, billing is
off and every verb answers with a kind explanation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, Protocol

from core.errors import ConfigurationError, InvalidRequest, UserFacingError
from core.types import Actor, PaymentLinkReply


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

    @property
    def price_text(self) -> str:
        """The price as people read it, e.g. ``$4.99`` or ``4.99 EUR``."""
        major = f"{self.price_minor / 100:.2f}"
        return f"${major}" if self.currency.lower() == "usd" else f"{major} {self.currency.upper()}"


DEFAULT_OFFERS = (
    Offer("pack_s", "pack", "Starter pack", 50, 499),
    Offer("pack_m", "pack", "Creator pack", 150, 1299),
    Offer("pack_l", "pack", "Studio pack", 500, 3999),
    Offer("plan_basic", "plan", "Monthly 200", 200, 999),
    Offer("plan_pro", "plan", "Monthly 800", 800, 2999),
)


def parse_offers(text: str) -> tuple[Offer, ...]:
    """The operator's catalogue from JSON (``IMAGEBOT_OFFERS``); empty means the defaults.

    Each item: ``{"id", "kind": "pack"|"plan", "name", "credits", "price_minor",
    "currency"?, "stripe_price_id"?}``.
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
    if len({o.id for o in offers}) != len(offers):
        raise ConfigurationError("IMAGEBOT_OFFERS: offer ids must be unique")
    return offers


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
    ) -> None:
        self._offers = offers
        self.gateway = gateway
        self._ensure_user = ensure_user

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
        raise InvalidRequest("That offer is no longer available; use /buy to see the current ones.")

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
        what = "subscribe" if offer.kind == "plan" else "buy"
        return PaymentLinkReply(
            f"{offer.name}: {offer.credits} credits for {offer.price_text}"
            + (" a month" if offer.kind == "plan" else "")
            + f". Open this private link to {what}; credits arrive here once paid.",
            url,
        )

    async def portal_link(self, actor: Actor) -> PaymentLinkReply:
        """A link to manage plans, invoices and payment methods."""
        if self.gateway is None:
            raise BillingDisabled()
        user_id = await self._ensure_user(actor)
        url = await self.gateway.portal_url(user_id)
        if url is None:
            raise InvalidRequest("There is nothing to manage yet: you have not bought anything.")
        return PaymentLinkReply("Manage your plan, invoices and payment methods here.", url)


class UserEnsurer(Protocol):
    """Finds or creates the stored user id of an actor."""

    async def __call__(self, actor: Actor) -> int:
        """The stored user id."""
        ...
