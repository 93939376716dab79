"""Stripe Checkout links and the billing portal: core's ``CheckoutGateway`` on Stripe.

Async calls through the official ``stripe`` library on its aiohttp client (its httpx
default emits a DeprecationWarning). ``IMAGEBOT_STRIPE_API_URL`` points it elsewhere
(tests, proxies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

import stripe

from core.billing.offers import Offer
from core.billing.purchases import BillingOutcome, CheckoutTicket, PurchaseService
from core.errors import UserFacingError
from core.settings import Settings
from payments.stripe.events import StripeEventProcessor
from payments.stripe.translate import META_CREDITS, META_OFFER, META_REF, META_USER

log = logging.getLogger("imagebot.stripe")

STRIPE_API_VERSION: str = stripe.api_version
"""The API version every request names: the one the installed stripe library was built for."""


class PaymentsUnavailable(UserFacingError):
    """Stripe could not be reached or refused the request."""

    code = "payments_unavailable"
    default_message = "Payments are not available right now. Please try again in a few minutes."


class StripeGateway:
    """Checkout sessions, portal sessions, and the event processor, on one client."""

    def __init__(
        self,
        client: stripe.StripeClient,
        http_client: stripe.HTTPClient,
        purchases: PurchaseService,
        *,
        public_url: str,
        checkout_lifetime: timedelta,
        webhook_secret: str | None,
    ) -> None:
        self.client = client
        self._http = http_client
        self.purchases = purchases
        self.public_url = public_url.rstrip("/")
        self.checkout_lifetime = checkout_lifetime
        self.webhook_secret = webhook_secret
        self.events = StripeEventProcessor(client, purchases)
        self._deliveries: set[asyncio.Task[None]] = set()

    async def checkout_url(self, user_id: int, offer: Offer, *, request_key: str) -> str:
        """A Checkout Session for ``offer``; the same press gives the same session.

        Two layers make a double click harmless: the checkout row (same press, same
        expiry, and the link itself once made) and Stripe's idempotency key, which is
        derived from that row, so even two clicks in flight send identical requests.
        """
        ticket = await self.purchases.begin_checkout(
            user_id, offer, request_key=request_key, lifetime=self.checkout_lifetime
        )
        if ticket.url is not None:
            return ticket.url
        key = f"imagebot-checkout-{ticket.ref}-{int(ticket.expires_at.timestamp())}"
        try:
            session = await self.client.v1.checkout.sessions.create_async(
                params=self.session_params(user_id, offer, ticket),  # type: ignore[arg-type]
                options={"idempotency_key": key},
            )
        except stripe.StripeError as exc:
            _log_error("checkout session", exc)
            if not isinstance(exc, stripe.InvalidRequestError):
                # Stripe stores executed failures under the key: the next press needs a
                # new one (a refused, invalid request is not stored).
                await self.purchases.checkout_failed(ticket.ref)
            raise PaymentsUnavailable() from None
        if not session.url:
            raise PaymentsUnavailable()
        await self.purchases.checkout_made(ticket.ref, session.id, session.url)
        log.info("checkout session %s made for user=%s offer=%s", session.id, user_id, offer.id)
        return session.url

    def session_params(self, user_id: int, offer: Offer, ticket: CheckoutTicket) -> dict[str, Any]:
        """The Checkout Session parameters: our ids in ``client_reference_id`` and in the
        metadata of the session and of the payment or subscription it makes."""
        metadata = {
            META_REF: ticket.ref,
            META_USER: str(user_id),
            META_OFFER: offer.id,
            META_CREDITS: str(offer.credits),
        }
        if offer.stripe_price_id:
            item: dict[str, Any] = {"price": offer.stripe_price_id, "quantity": 1}
        else:
            price_data: dict[str, Any] = {
                "currency": offer.currency,
                "unit_amount": offer.price_minor,
                "product_data": {"name": offer.name},
            }
            if offer.kind == "plan":
                price_data["recurring"] = {"interval": "month"}
            item = {"price_data": price_data, "quantity": 1}
        params: dict[str, Any] = {
            "mode": "subscription" if offer.kind == "plan" else "payment",
            "line_items": [item],
            "client_reference_id": str(user_id),
            "metadata": metadata,
            "success_url": f"{self.public_url}/stripe/success",
            "cancel_url": f"{self.public_url}/stripe/cancel",
            "expires_at": int(ticket.expires_at.timestamp()),
        }
        if offer.kind == "plan":
            params["subscription_data"] = {"metadata": metadata}
        else:
            params["payment_intent_data"] = {"metadata": metadata}
        if ticket.customer_id:
            params["customer"] = ticket.customer_id
        elif offer.kind == "pack":
            # A customer from the first purchase on, so /billing has something to show.
            params["customer_creation"] = "always"
        return params

    async def portal_url(self, user_id: int) -> str | None:
        """A billing-portal session for the user's customer; None without one."""
        customer = await self.purchases.customer_for(user_id)
        if customer is None:
            return None
        try:
            session = await self.client.v1.billing_portal.sessions.create_async(
                params={"customer": customer, "return_url": f"{self.public_url}/stripe/return"}
            )
        except stripe.StripeError as exc:
            _log_error("billing portal session", exc)
            raise PaymentsUnavailable() from None
        return session.url

    def deliver_later(self, outcome: BillingOutcome) -> None:
        """Send an outcome's messages in the background (the webhook answers at once)."""
        if not outcome.notices:
            return
        task = asyncio.create_task(self.purchases.deliver(outcome))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def drain(self) -> None:
        """Wait for messages still being sent."""
        while self._deliveries:
            await asyncio.gather(*list(self._deliveries), return_exceptions=True)

    async def aclose(self) -> None:
        """Finish sending messages, then close the HTTP client."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.drain(), timeout=10)
        await self._http.close_async()


def _log_error(what: str, exc: stripe.StripeError) -> None:
    # Ids and codes only: Stripe's messages can echo request values back.
    log.error(
        "stripe %s failed: %s status=%s code=%s request=%s",
        what,
        type(exc).__name__,
        exc.http_status,
        exc.code,
        exc.request_id,
    )


def build_stripe_gateway(settings: Settings, purchases: PurchaseService) -> StripeGateway:
    """The gateway for ``IMAGEBOT_STRIPE_SECRET_KEY`` (required)."""
    assert settings.stripe_secret_key is not None
    http_client = stripe.AIOHTTPClient()
    base: dict[str, str] = {}
    if settings.stripe_api_url:
        base["api"] = settings.stripe_api_url.rstrip("/")
    client = stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        # Pinned: the object shapes translate.py reads belong to this version (basil+
        # invoices), whatever version the account's Dashboard defaults to.
        stripe_version=STRIPE_API_VERSION,
        base_addresses=base,  # type: ignore[arg-type]
        http_client=http_client,
        max_network_retries=settings.stripe_max_network_retries,
    )
    public = settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
    secret = settings.stripe_webhook_secret
    return StripeGateway(
        client,
        http_client,
        purchases,
        public_url=public,
        checkout_lifetime=timedelta(minutes=settings.stripe_checkout_expiry_minutes),
        webhook_secret=secret.get_secret_value() if secret is not None else None,
    )
