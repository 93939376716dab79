"""``POST /stripe/webhook`` and the pages Stripe Checkout returns to, on imagebot's
HTTP server (P20).

The raw body is verified against ``IMAGEBOT_STRIPE_WEBHOOK_SECRET`` with Stripe's own
check (HMAC-SHA256 over ``"{t}.{body}"``, any ``v1`` matching) before anything is
parsed, and its time stamp must be within 300 s of now in either direction (Stripe's own
check lets any future time stamp through: a request signed "an hour from now" would stay
replayable for that hour). Unsigned, forged, stale or future requests get 400 and change
nothing. A verified event is applied in one transaction; a replay answers 200 and
changes nothing. A signed event that can never be applied (not a Stripe event id, amounts
out of any range) answers 400 and counts as ``malformed`` in the metrics, since Stripe's
retries could not help; a failure a retry can fix (the database, Stripe's API) answers
500 so Stripe delivers it again. Logs carry event ids
and types only, never payloads or secrets.
"""

from __future__ import annotations

import json
import logging
import time

import stripe
from aiohttp import web

from core.app import Core
from core.metrics import Metrics, NoMetrics
from payments.stripe.gateway import StripeGateway
from payments.stripe.translate import MalformedEvent

log = logging.getLogger("imagebot.stripe")

TOLERANCE_SECONDS = 300
"""Stripe's default: older signed time stamps are refused (a replay of a captured request)."""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;
line-height:1.5}}</style></head>
<body><h1>{title}</h1><p>{text}</p><p>You can close this page and go back to the chat.</p>
</body></html>
"""

PAGES = {
    "success": (
        "Thank you!",
        "Your payment was received. The bot will send you a message in the chat as soon as "
        "the credits are on your balance; this usually takes a few seconds.",
    ),
    "cancel": (
        "Checkout cancelled",
        "Nothing was charged. You can start again any time with /buy or /subscribe.",
    ),
    "return": (
        "All set",
        "Your billing settings are saved. /balance in the chat shows your credits and plan.",
    ),
}


class StripeWebhook:
    """The webhook endpoint: verify, apply once, answer."""

    def __init__(self, gateway: StripeGateway, secret: str, metrics: Metrics | None = None) -> None:
        self.gateway = gateway
        self._secret = secret
        self.metrics: Metrics = metrics or NoMetrics()

    async def handle(self, request: web.Request) -> web.Response:
        """Verify the signature over the raw body, then apply the event."""
        body = await request.read()
        try:
            header = request.headers.get("Stripe-Signature")
            stripe.WebhookSignature.verify_header(body, header, self._secret, TOLERANCE_SECONDS)
            if not _timely(header):
                raise ValueError("time stamp from the future")
            event = json.loads(body)
            if not isinstance(event, dict) or event.get("object") != "event":
                raise ValueError("not an event")
        except (stripe.SignatureVerificationError, ValueError):
            # The exception text holds the header and the payload: not logged.
            log.warning("stripe webhook refused: bad signature, stale time stamp or body")
            self.metrics.webhook_event("unknown", "refused")
            return web.json_response({"error": "invalid signature or payload"}, status=400)
        try:
            outcome = await self.gateway.events.process(event)
        except MalformedEvent:
            log.warning(
                "stripe event %s (%s) is signed but malformed; refused for good",
                str(event.get("id"))[:80],
                str(event.get("type"))[:64],
            )
            self.metrics.webhook_event(str(event.get("type"))[:64], "malformed")
            return web.json_response({"error": "malformed event"}, status=400)
        except Exception:
            log.exception(
                "stripe event %s (%s) failed; Stripe will retry",
                str(event.get("id"))[:80],
                str(event.get("type"))[:64],
            )
            self.metrics.webhook_event(str(event.get("type"))[:64], "error")
            return web.json_response({"error": "processing failed"}, status=500)
        self.metrics.webhook_event(
            str(event.get("type"))[:64],
            "replay" if outcome.duplicate else "applied" if outcome.applied else "ignored",
        )
        self.gateway.deliver_later(outcome)
        return web.json_response({"received": True, "duplicate": outcome.duplicate})


def _timely(header: str | None, now: float | None = None) -> bool:
    """True when the header's time stamp is not more than the tolerance ahead of now
    (``verify_header`` already refused those too far behind)."""
    now = time.time() if now is None else now
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                return int(value) <= now + TOLERANCE_SECONDS
            except ValueError:
                return False
    return False


def _page(kind: str) -> web.Response:
    title, text = PAGES[kind]
    return web.Response(
        text=_PAGE.format(title=title, text=text),
        content_type="text/html",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


async def _success(_: web.Request) -> web.Response:
    return _page("success")


async def _cancel(_: web.Request) -> web.Response:
    return _page("cancel")


async def _return(_: web.Request) -> web.Response:
    return _page("return")


def install_stripe_routes(core: Core, app: web.Application) -> None:
    """Mount the webhook and the checkout return pages when Stripe is configured."""
    gateway = core.billing.gateway
    if not isinstance(gateway, StripeGateway):
        return
    app.router.add_get("/stripe/success", _success)
    app.router.add_get("/stripe/cancel", _cancel)
    app.router.add_get("/stripe/return", _return)
    if gateway.webhook_secret is None:
        log.warning(
            "IMAGEBOT_STRIPE_WEBHOOK_SECRET is not set: payments cannot be confirmed and "
            "purchases never add credits"
        )
        return
    webhook = StripeWebhook(gateway, gateway.webhook_secret, core.metrics)
    app.router.add_post("/stripe/webhook", webhook.handle)
