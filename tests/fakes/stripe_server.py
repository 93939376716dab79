"""A loopback fake of Stripe's API and of Stripe's webhook deliveries.

The real ``stripe`` library talks to it over HTTP (``base_addresses={"api": fake.base_url}``)::

    fake = FakeStripe()
    await fake.start()
    ...  # imagebot with IMAGEBOT_STRIPE_API_URL=fake.base_url makes a checkout link
    events = fake.complete_session(session_id)          # the buyer pays on the hosted page
    sender = WebhookSender(f"{imagebot}/stripe/webhook", WEBHOOK_SECRET)
    for event in events:
        status, body = await sender.send(event)         # signed exactly as Stripe signs
    await fake.stop()

What it serves (wire format of API version ``2026-10-28.endive``; requests are
form-encoded with bracket keys, answers are JSON):

- ``POST /v1/checkout/sessions`` (validated like Stripe: mode, line items, prices,
  recurring prices only in subscription mode, ``expires_at`` 30 min to 24 h ahead,
  ``customer`` xor ``customer_creation``, metadata limits), ``GET /v1/checkout/sessions``
  (``status``, ``customer``, ``payment_intent``, ``subscription``, ``created[...]``) and
  ``GET /v1/checkout/sessions/{id}``;
- ``POST /v1/billing_portal/sessions`` (the customer must exist);
- ``GET /v1/events`` (``type``, ``types[n]``, ``created[...]``), ``GET /v1/events/{id}``;
- ``GET /v1/subscriptions/{id}``, ``GET /v1/invoices`` and ``/{id}``,
  ``GET /v1/invoice_payments`` (``invoice``, ``payment[payment_intent]``),
  ``GET /v1/charges/{id}``, ``GET /v1/customers/{id}``, ``GET /v1/payment_intents/{id}``.

Lists are newest first with ``limit`` (1..100) and ``starting_after``. Every POST honours
``Idempotency-Key`` as Stripe does: the same key with the same parameters replays the
first executed answer, 500s included (``Idempotent-Replayed: true``); other parameters get
a 400 ``idempotency_error``; validation errors are not stored. Errors have Stripe's shape
``{"error": {"type", "message", "param", "code"}}``; a wrong API key is a 401.

What buyers and Stripe do is scripted: :meth:`FakeStripe.complete_session` (pay on the
hosted page, optionally with a delayed method), :meth:`FakeStripe.settle_async`,
:meth:`FakeStripe.renew`, :meth:`FakeStripe.cancel`, :meth:`FakeStripe.refund`,
:meth:`FakeStripe.open_dispute`, :meth:`FakeStripe.close_dispute`. Each returns the events
Stripe would send, in Stripe's order, and keeps them for ``GET /v1/events``. Objects carry
realistic personal data (``customer_details``, ``billing_details``,
``payment_method_details.card``) so tests can prove imagebot keeps none of it.
:meth:`FakeStripe.fail_next` scripts API failures. Crashes of the fake itself land in
``errors`` (assert it empty).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import string
import time
import traceback
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import stripe.params as sp
import stripe.params.billing_portal as sp_portal
import stripe.params.checkout as sp_checkout
from aiohttp import web

from tests.fakes.stripe_params import ParamError, check, schema

__all__ = [
    "API_KEY",
    "WEBHOOK_SECRET",
    "Buyer",
    "FakeStripe",
    "WebhookSender",
    "parse_form",
    "sign",
]

API_KEY = "sk_test_imagebotFake000000000000"
WEBHOOK_SECRET = "whsec_imagebotFakeSigningSecret0000"
API_VERSION = "2026-10-28.endive"
MONTH = 30 * 24 * 3600


@dataclass(frozen=True)
class Buyer:
    """The personal data a buyer types into Stripe's hosted page (Stripe keeps it;
    imagebot must not)."""

    name: str = "Jenny Rosen"
    email: str = "jenny.rosen@example.com"
    phone: str = "+15555550123"
    line1: str = "510 Townsend St"
    city: str = "San Francisco"
    postal_code: str = "94103"
    country: str = "US"
    card_brand: str = "visa"
    card_last4: str = "4242"
    card_fingerprint: str = "Xt5EWLLDS7FJjR1c"
    exp_month: int = 12
    exp_year: int = 2034

    def address(self) -> dict[str, Any]:
        return {
            "city": self.city,
            "country": self.country,
            "line1": self.line1,
            "line2": None,
            "postal_code": self.postal_code,
            "state": "CA",
        }


@dataclass
class RecordedRequest:
    """One API request as the fake saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    params: dict[str, Any]
    status: int = 0
    idempotency_key: str | None = None
    replayed: bool = False


@dataclass
class _Failure:
    status: int
    body: dict[str, Any]
    times: int
    path: str | None
    headers: dict[str, str] = field(default_factory=dict)


class StripeApiError(Exception):
    """An error answer in Stripe's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": {"type": type_, "message": message}}
        if param:
            self.body["error"]["param"] = param
        if code:
            self.body["error"]["code"] = code


ENDPOINT_PARAMS: dict[tuple[str, str], type] = {
    ("POST", "checkout/sessions"): sp_checkout.SessionCreateParams,
    ("GET", "checkout/sessions"): sp_checkout.SessionListParams,
    ("GET", "checkout/sessions/*"): sp_checkout.SessionRetrieveParams,
    ("POST", "billing_portal/sessions"): sp_portal.SessionCreateParams,
    ("GET", "events"): sp.EventListParams,
    ("GET", "events/*"): sp.EventRetrieveParams,
    ("GET", "invoices"): sp.InvoiceListParams,
    ("GET", "invoices/*"): sp.InvoiceRetrieveParams,
    ("GET", "invoice_payments"): sp.InvoicePaymentListParams,
    ("GET", "subscriptions/*"): sp.SubscriptionRetrieveParams,
    ("GET", "charges/*"): sp.ChargeRetrieveParams,
    ("GET", "customers/*"): sp.CustomerRetrieveParams,
    ("GET", "payment_intents/*"): sp.PaymentIntentRetrieveParams,
}
"""The ``stripe.params`` class (stripe-python 16.1.0) of each endpoint the fake serves;
strict mode checks every request against it (``tests/fakes/stripe_params.py``)."""


def _check_params(method: str, parts: list[str], params: dict[str, Any]) -> None:
    shape = "/".join(parts)
    if (
        len(parts) in (2, 3)
        and parts[-1]
        and "/".join(parts[:-1])
        in (
            "checkout/sessions",
            "events",
            "invoices",
            "subscriptions",
            "charges",
            "customers",
            "payment_intents",
        )
    ):
        shape = "/".join([*parts[:-1], "*"])
    cls = ENDPOINT_PARAMS.get((method, shape))
    if cls is None:
        return
    try:
        check(schema(cls), params)
    except ParamError as exc:
        raise StripeApiError(400, exc.message, param=exc.param, code=exc.code) from None


def _missing(kind: str, value: str, param: str | None = None) -> StripeApiError:
    return StripeApiError(
        404 if param is None else 400,
        f"No such {kind}: '{value}'",
        param=param,
        code="resource_missing",
    )


# --- form encoding --------------------------------------------------------------------------


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket form encoding -> nested dicts and lists.

    ``line_items[0][price_data][currency]=usd`` -> ``{"line_items": [{"price_data":
    {"currency": "usd"}}]}``; ``types[]=a`` appends. Values stay strings, as on the wire.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", key)
        if match is None:
            raise StripeApiError(400, f"Invalid parameter name: {key}")
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node: dict[str, Any] = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "":
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise StripeApiError(400, f"Invalid parameter: {key}")
                node = child
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def _int_param(params: dict[str, Any], name: str, *, minimum: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"-?\d+", raw):
        raise StripeApiError(400, f"Invalid integer: {raw}", param=name)
    value = int(raw)
    if minimum is not None and value < minimum:
        raise StripeApiError(
            400, f"This value must be greater than or equal to {minimum}.", param=name
        )
    return value


# --- webhook signing ------------------------------------------------------------------------


def sign(payload: str | bytes, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header exactly as Stripe makes it: ``t=<unix>,v1=<hex>`` with
    ``hex = HMAC_SHA256(key=secret, msg=f"{t}.{payload}")``."""
    t = int(time.time()) if timestamp is None else timestamp
    body = payload.decode() if isinstance(payload, bytes) else payload
    digest = hmac.new(secret.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


class WebhookSender:
    """Posts events to a webhook endpoint the way Stripe delivers them."""

    def __init__(self, url: str, secret: str = WEBHOOK_SECRET) -> None:
        self.url = url
        self.secret = secret
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> WebhookSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @staticmethod
    def body(event: dict[str, Any]) -> str:
        """The body as Stripe sends it (pretty-printed JSON)."""
        return json.dumps(event, indent=2)

    async def send(
        self,
        event: dict[str, Any] | str | bytes,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Deliver one event; returns (status, JSON answer or text).

        ``secret`` signs with another secret (a forgery), ``timestamp`` sets ``t``,
        ``signature`` replaces the whole header (``""`` sends none).
        """
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body = event if isinstance(event, str | bytes) else self.body(event)
        raw = body.encode() if isinstance(body, str) else body
        sent = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Stripe/1.0"}
        if signature is None:
            sent["Stripe-Signature"] = sign(raw, secret or self.secret, timestamp)
        elif signature:
            sent["Stripe-Signature"] = signature
        sent.update(headers or {})
        async with self._session.post(self.url, data=raw, headers=sent) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text


# --- the server -----------------------------------------------------------------------------


def _new_id(prefix: str, length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


class FakeStripe:
    """Stripe's API on 127.0.0.1, plus scripts for what buyers and Stripe do."""

    def __init__(self, *, api_key: str = API_KEY, strict: bool = True) -> None:
        self.api_key = api_key
        self.strict = strict
        """Refuse unknown parameters and values outside an enum (see ``ENDPOINT_PARAMS``)."""
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.invoice_payments: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self.portal_sessions: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, dict[str, Any]] = {}
        self.clock_offset = 0
        """Seconds added to the fake's clock (``now()``), to age objects in tests."""
        self._extras: dict[str, dict[str, Any]] = {}
        self._idempotency: dict[str, tuple[str, int, bytes]] = {}
        self._failures: list[_Failure] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API root (paths carry ``/v1``): ``IMAGEBOT_STRIPE_API_URL``."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_route("*", "/v1/{tail:.*}", self._dispatch)
        app.router.add_get("/c/pay/{id}", self._hosted_page)
        app.router.add_get("/p/session/{id}", self._hosted_page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeStripe:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def now(self) -> int:
        return int(time.time()) + self.clock_offset

    # --- scripting ---------------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        *,
        type: str = "api_error",
        message: str = "An unknown error occurred.",
        code: str | None = None,
        times: int = 1,
        path: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next ``times`` API requests (to paths starting with ``path``) fail."""
        body: dict[str, Any] = {"error": {"type": type, "message": message}}
        if code:
            body["error"]["code"] = code
        self._failures.append(_Failure(status, body, times, path, dict(headers or {})))

    def add_price(self, unit_amount: int, *, currency: str = "usd", recurring: bool = False) -> str:
        """A Price object the operator made in the Dashboard; returns its id."""
        price_id = _new_id("price_")
        self.prices[price_id] = self._price(
            price_id, currency, unit_amount, recurring={"interval": "month"} if recurring else None
        )
        return price_id

    def event(
        self,
        type_: str,
        obj: dict[str, Any],
        *,
        previous: dict[str, Any] | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """Emit an event about ``obj`` (a snapshot is taken) and keep it for listing."""
        event: dict[str, Any] = {
            "id": _new_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now() if created is None else created,
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": _new_id("req_", 14), "idempotency_key": None},
            "type": type_,
        }
        if previous is not None:
            event["data"]["previous_attributes"] = previous
        self.events.append(event)
        return event

    def session(self, session_id: str) -> dict[str, Any]:
        return self.sessions[session_id]

    def session_for(self, url: str) -> dict[str, Any]:
        """The session behind a hosted checkout URL."""
        session_id = url.rstrip("/").rsplit("/", 1)[-1]
        return self.sessions[session_id]

    def complete_session(
        self, session_id: str, *, buyer: Buyer | None = None, delayed: bool = False
    ) -> list[dict[str, Any]]:
        """The buyer pays on the hosted page. ``delayed``: a bank debit that settles later
        (``payment_status`` stays ``unpaid``; see :meth:`settle_async`)."""
        buyer = buyer or Buyer()
        session = self.sessions[session_id]
        extra = self._extras[session_id]
        if session["status"] != "open":
            raise AssertionError(f"session {session_id} is {session['status']}")
        customer_id = session["customer"]
        if customer_id is None and (
            session["mode"] == "subscription" or session["customer_creation"] == "always"
        ):
            customer_id = self._customer(buyer)["id"]
        session["customer"] = customer_id
        session["customer_details"] = {
            "address": buyer.address(),
            "email": buyer.email,
            "name": buyer.name,
            "phone": buyer.phone,
            "tax_exempt": "none",
            "tax_ids": [],
        }
        session["status"] = "complete"
        events: list[dict[str, Any]] = []
        if session["mode"] == "payment":
            pi, charge = self._payment(
                session["amount_total"],
                session["currency"],
                customer_id,
                buyer,
                metadata=extra.get("pi_metadata") or {},
                pending=delayed,
            )
            session["payment_intent"] = pi["id"]
            session["payment_status"] = "unpaid" if delayed else "paid"
            events.append(self.event("checkout.session.completed", session))
            if not delayed:
                events.append(self.event("charge.succeeded", charge))
                events.append(self.event("payment_intent.succeeded", pi))
            return events
        subscription = self._subscription(session, customer_id, extra)
        session["subscription"] = subscription["id"]
        session["payment_status"] = "paid"
        invoice, charge = self._invoice(subscription, "subscription_create", buyer)
        session["invoice"] = invoice["id"]
        events.append(self.event("checkout.session.completed", session))
        events.append(self.event("customer.subscription.created", subscription))
        events.append(self.event("charge.succeeded", charge))
        events.append(self.event("invoice.finalized", invoice))
        events.append(self.event("invoice.paid", invoice))
        events.append(self.event("invoice.payment_succeeded", invoice))
        return events

    def settle_async(self, session_id: str, *, succeeded: bool = True) -> dict[str, Any]:
        """A delayed payment method settles (or fails) days later."""
        session = self.sessions[session_id]
        pi = self.payment_intents[session["payment_intent"]]
        charge = self.charges[pi["latest_charge"]]
        if succeeded:
            session["payment_status"] = "paid"
            pi["status"] = "succeeded"
            charge["status"] = "succeeded"
            charge["paid"] = True
            return self.event("checkout.session.async_payment_succeeded", session)
        pi["status"] = "requires_payment_method"
        charge["status"] = "failed"
        return self.event("checkout.session.async_payment_failed", session)

    def expire_session(self, session_id: str) -> dict[str, Any]:
        """The checkout page timed out."""
        session = self.sessions[session_id]
        session["status"] = "expired"
        session["url"] = None
        return self.event("checkout.session.expired", session)

    def renew(self, subscription_id: str, *, buyer: Buyer | None = None) -> list[dict[str, Any]]:
        """A month passes: the subscription renews and its invoice is paid."""
        sub = self.subscriptions[subscription_id]
        item = sub["items"]["data"][0]
        previous = {
            "items": {
                "data": [
                    {
                        "current_period_start": item["current_period_start"],
                        "current_period_end": item["current_period_end"],
                    }
                ]
            },
            "latest_invoice": sub["latest_invoice"],
        }
        item["current_period_start"] = item["current_period_end"]
        item["current_period_end"] = item["current_period_end"] + MONTH
        invoice, charge = self._invoice(sub, "subscription_cycle", buyer or Buyer())
        return [
            self.event("invoice.created", invoice),
            self.event("charge.succeeded", charge),
            self.event("invoice.paid", invoice),
            self.event("customer.subscription.updated", sub, previous=previous),
        ]

    def cancel(self, subscription_id: str, *, at_period_end: bool = False) -> dict[str, Any]:
        """The customer cancels in the portal: now, or at the end of the period."""
        sub = self.subscriptions[subscription_id]
        if at_period_end:
            sub["cancel_at_period_end"] = True
            sub["cancel_at"] = sub["items"]["data"][0]["current_period_end"]
            return self.event(
                "customer.subscription.updated", sub, previous={"cancel_at_period_end": False}
            )
        sub["status"] = "canceled"
        sub["canceled_at"] = self.now()
        sub["ended_at"] = self.now()
        return self.event("customer.subscription.deleted", sub)

    def refund(self, payment_intent_id: str, amount: int | None = None) -> dict[str, Any]:
        """The operator refunds (part of) a payment in the Dashboard: ``charge.refunded``."""
        pi = self.payment_intents[payment_intent_id]
        charge = self.charges[pi["latest_charge"]]
        left = charge["amount"] - charge["amount_refunded"]
        amount = left if amount is None else amount
        if not 0 < amount <= left:
            raise AssertionError(f"cannot refund {amount} of {left}")
        refund = {
            "id": _new_id("re_"),
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "currency": charge["currency"],
            "payment_intent": payment_intent_id,
            "reason": "requested_by_customer",
            "status": "succeeded",
            "created": self.now(),
            "metadata": {},
        }
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        charge["refunds"]["data"].insert(0, refund)
        charge["refunds"]["total_count"] += 1
        return self.event(
            "charge.refunded",
            charge,
            previous={"amount_refunded": charge["amount_refunded"] - amount},
        )

    def open_dispute(
        self, payment_intent_id: str, *, amount: int | None = None, reason: str = "fraudulent"
    ) -> dict[str, Any]:
        """The card holder disputes the payment with their bank."""
        pi = self.payment_intents[payment_intent_id]
        charge = self.charges[pi["latest_charge"]]
        charge["disputed"] = True
        details = charge["billing_details"]
        dispute = {
            "id": _new_id("dp_"),
            "object": "dispute",
            "amount": charge["amount"] if amount is None else amount,
            "balance_transactions": [],
            "charge": charge["id"],
            "created": self.now(),
            "currency": charge["currency"],
            "evidence": {
                "billing_address": details["address"]["line1"],
                "customer_email_address": details["email"],
                "customer_name": details["name"],
                "customer_purchase_ip": "203.0.113.7",
            },
            "evidence_details": {"due_by": self.now() + 7 * 86400, "has_evidence": False},
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "payment_intent": payment_intent_id,
            "payment_method_details": {
                "card": {"brand": charge["payment_method_details"]["card"]["brand"]},
                "type": "card",
            },
            "reason": reason,
            "status": "needs_response",
        }
        self.disputes[dispute["id"]] = dispute
        return self.event("charge.dispute.created", dispute)

    def close_dispute(self, dispute_id: str, *, won: bool) -> dict[str, Any]:
        """The bank decides."""
        dispute = self.disputes[dispute_id]
        dispute["status"] = "won" if won else "lost"
        return self.event("charge.dispute.closed", dispute, previous={"status": "under_review"})

    # --- object builders ---------------------------------------------------------------------

    def _price(
        self,
        price_id: str,
        currency: str,
        unit_amount: int,
        *,
        recurring: dict[str, Any] | None,
        name: str = "Credits",
    ) -> dict[str, Any]:
        return {
            "id": price_id,
            "object": "price",
            "active": True,
            "currency": currency,
            "product": _new_id("prod_", 14),
            "recurring": (
                {"interval": recurring.get("interval", "month"), "interval_count": 1}
                if recurring
                else None
            ),
            "type": "recurring" if recurring else "one_time",
            "unit_amount": unit_amount,
            "nickname": name,
        }

    def _customer(self, buyer: Buyer) -> dict[str, Any]:
        customer = {
            "id": _new_id("cus_", 14),
            "object": "customer",
            "address": buyer.address(),
            "created": self.now(),
            "email": buyer.email,
            "name": buyer.name,
            "phone": buyer.phone,
            "metadata": {},
        }
        self.customers[customer["id"]] = customer
        return customer

    def _payment(
        self,
        amount: int,
        currency: str,
        customer_id: str | None,
        buyer: Buyer,
        *,
        metadata: dict[str, Any],
        pending: bool = False,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        pi_id = _new_id("pi_")
        charge = {
            "id": _new_id("ch_"),
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": 0,
            "balance_transaction": _new_id("txn_"),
            "billing_details": {
                "address": buyer.address(),
                "email": buyer.email,
                "name": buyer.name,
                "phone": buyer.phone,
            },
            "captured": True,
            "created": self.now(),
            "currency": currency,
            "customer": customer_id,
            "description": None,
            "disputed": False,
            "livemode": False,
            "metadata": {},
            "outcome": {"network_status": "approved_by_network", "type": "authorized"},
            "paid": not pending,
            "payment_intent": pi_id,
            "payment_method": _new_id("pm_"),
            "payment_method_details": {
                "card": {
                    "brand": buyer.card_brand,
                    "checks": {
                        "address_line1_check": "pass",
                        "address_postal_code_check": "pass",
                        "cvc_check": "pass",
                    },
                    "country": buyer.country,
                    "exp_month": buyer.exp_month,
                    "exp_year": buyer.exp_year,
                    "fingerprint": buyer.card_fingerprint,
                    "funding": "credit",
                    "last4": buyer.card_last4,
                    "network": buyer.card_brand,
                },
                "type": "card",
            },
            "receipt_email": buyer.email,
            "receipt_url": f"{self.base_url}/receipts/{_new_id('rcpt_')}",
            "refunded": False,
            "refunds": {"object": "list", "data": [], "has_more": False, "total_count": 0},
            "status": "pending" if pending else "succeeded",
        }
        pi = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0 if pending else amount,
            "currency": currency,
            "customer": customer_id,
            "latest_charge": charge["id"],
            "metadata": dict(metadata),
            "status": "processing" if pending else "succeeded",
            "created": self.now(),
        }
        self.payment_intents[pi_id] = pi
        self.charges[charge["id"]] = charge
        return pi, charge

    def _subscription(
        self, session: dict[str, Any], customer_id: str, extra: dict[str, Any]
    ) -> dict[str, Any]:
        now = self.now()
        price = extra["recurring_price"]
        sub = {
            "id": _new_id("sub_"),
            "object": "subscription",
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "created": now,
            "currency": session["currency"],
            "customer": customer_id,
            "ended_at": None,
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": _new_id("si_", 14),
                        "object": "subscription_item",
                        "current_period_start": now,
                        "current_period_end": now + MONTH,
                        "price": price,
                        "quantity": 1,
                    }
                ],
            },
            "latest_invoice": None,
            "livemode": False,
            "metadata": dict(extra.get("sub_metadata") or {}),
            "start_date": now,
            "status": "active",
        }
        self.subscriptions[sub["id"]] = sub
        return sub

    def _invoice(
        self, sub: dict[str, Any], reason: str, buyer: Buyer
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        item = sub["items"]["data"][0]
        amount = item["price"]["unit_amount"] * item["quantity"]
        pi, charge = self._payment(amount, sub["currency"], sub["customer"], buyer, metadata={})
        invoice = {
            "id": _new_id("in_"),
            "object": "invoice",
            "amount_due": amount,
            "amount_paid": amount,
            "amount_remaining": 0,
            "billing_reason": reason,
            "collection_method": "charge_automatically",
            "created": self.now(),
            "currency": sub["currency"],
            "customer": sub["customer"],
            "customer_address": buyer.address(),
            "customer_email": buyer.email,
            "customer_name": buyer.name,
            "customer_phone": buyer.phone,
            "hosted_invoice_url": f"{self.base_url}/i/{_new_id('inv_')}",
            "lines": {
                "object": "list",
                "data": [
                    {
                        "id": _new_id("il_"),
                        "object": "line_item",
                        "amount": amount,
                        "currency": sub["currency"],
                        "period": {
                            "start": item["current_period_start"],
                            "end": item["current_period_end"],
                        },
                        "quantity": item["quantity"],
                    }
                ],
                "has_more": False,
            },
            "livemode": False,
            "metadata": {},
            "number": f"F00D-{len(self.invoices) + 1:04d}",
            "parent": {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "metadata": copy.deepcopy(sub["metadata"]),
                    "subscription": sub["id"],
                },
            },
            "period_end": item["current_period_start"],
            "period_start": item["current_period_start"] - MONTH,
            "status": "paid",
            "status_transitions": {"paid_at": self.now()},
            "total": amount,
        }
        payment = {
            "id": _new_id("inpay_"),
            "object": "invoice_payment",
            "amount_paid": amount,
            "amount_requested": amount,
            "created": self.now(),
            "currency": sub["currency"],
            "invoice": invoice["id"],
            "is_default": True,
            "livemode": False,
            "payment": {"type": "payment_intent", "payment_intent": pi["id"]},
            "status": "paid",
        }
        self.invoices[invoice["id"]] = invoice
        self.invoice_payments[payment["id"]] = payment
        sub["latest_invoice"] = invoice["id"]
        return invoice, charge

    # --- HTTP --------------------------------------------------------------------------------

    async def _hosted_page(self, request: web.Request) -> web.Response:
        return web.Response(
            text="<html><body>Fake Stripe hosted page</body></html>", content_type="text/html"
        )

    async def _dispatch(self, request: web.Request) -> web.Response:
        body = await request.read()
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={k: v for k, v in request.headers.items()},
            body=body,
            params={},
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        self.requests.append(record)
        response = self._respond(request, body, record)
        record.status = response.status
        return response

    def _respond(self, request: web.Request, body: bytes, record: RecordedRequest) -> web.Response:
        # Synchronous from here on: concurrent requests with one idempotency key are
        # answered one after the other, as Stripe serialises them.
        request_id = _new_id("req_", 14)
        try:
            auth = request.headers.get("Authorization", "")
            if auth != f"Bearer {self.api_key}":
                shown = auth.removeprefix("Bearer ")[-4:]
                raise StripeApiError(401, f"Invalid API Key provided: sk_test_****{shown}")
            if request.method == "POST":
                if request.content_type not in ("application/x-www-form-urlencoded", ""):
                    raise StripeApiError(400, "Invalid request: send form-encoded parameters")
                pairs = parse_qsl(body.decode(), keep_blank_values=True)
            else:
                pairs = list(request.query.items())
            params = parse_form(pairs)
            record.params = params
            key = record.idempotency_key if request.method == "POST" else None
            fingerprint = request.path + "?" + "&".join(sorted(f"{k}={v}" for k, v in pairs))
            if key:
                seen = self._idempotency.get(key)
                if seen is not None:
                    if seen[0] != fingerprint:
                        raise StripeApiError(
                            400,
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with. Try using a key other than "
                            f"'{key}' if you meant to execute a different request.",
                            type_="idempotency_error",
                        )
                    record.replayed = True
                    return self._raw(seen[1], seen[2], request_id, {"Idempotent-Replayed": "true"})
            headers: dict[str, str] = {}
            failure = next(
                (
                    f
                    for f in self._failures
                    if f.times > 0 and (f.path is None or request.path.startswith(f.path))
                ),
                None,
            )
            if failure is not None:
                failure.times -= 1
                status, payload, headers = failure.status, failure.body, dict(failure.headers)
            else:
                # Validation errors raise before anything executes: never stored under the
                # key, so a corrected retry may reuse it (as with Stripe).
                status, payload = self._route(request.method, request.path, params)
            raw = json.dumps(payload, indent=2).encode()
            if key and (status == 200 or status >= 500):
                # Stripe keeps the first result of an executed request, 500s included.
                self._idempotency[key] = (fingerprint, status, raw)
                headers["Idempotency-Key"] = key
            return self._raw(status, raw, request_id, headers)
        except StripeApiError as exc:
            return self._json(exc.status, exc.body, request_id)
        except Exception as exc:  # the fake itself broke: make it loud
            self.errors.append(
                f"{request.method} {request.path}: {exc!r}\n{traceback.format_exc()}"
            )
            return self._json(
                500,
                {"error": {"type": "api_error", "message": "fake crashed"}},
                request_id,
                {"Stripe-Should-Retry": "false"},
            )

    def _json(
        self, status: int, payload: Any, request_id: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return self._raw(status, json.dumps(payload, indent=2).encode(), request_id, headers)

    def _raw(
        self, status: int, raw: bytes, request_id: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        all_headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
        all_headers.update(headers or {})
        return web.Response(
            status=status, body=raw, content_type="application/json", headers=all_headers
        )

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, Any]:
        parts = path.strip("/").split("/")[1:]  # without "v1"
        if self.strict:
            _check_params(method, parts, params)
        objects: dict[str, tuple[dict[str, dict[str, Any]], str]] = {
            "customers": (self.customers, "customer"),
            "subscriptions": (self.subscriptions, "subscription"),
            "invoices": (self.invoices, "invoice"),
            "charges": (self.charges, "charge"),
            "payment_intents": (self.payment_intents, "payment_intent"),
            "events": ({e["id"]: e for e in self.events}, "event"),
        }
        if parts[:2] == ["checkout", "sessions"]:
            if method == "POST" and len(parts) == 2:
                return 200, self._create_session(params)
            if method == "GET" and len(parts) == 2:
                return 200, self._list(
                    "/v1/checkout/sessions",
                    list(self.sessions.values()),
                    params,
                    filters=("status", "customer", "payment_intent", "subscription"),
                )
            if method == "GET" and len(parts) == 3:
                if parts[2] not in self.sessions:
                    raise _missing("checkout.session", parts[2])
                return 200, self.sessions[parts[2]]
        if parts[:2] == ["billing_portal", "sessions"] and method == "POST" and len(parts) == 2:
            return 200, self._create_portal(params)
        if parts == ["events"] and method == "GET":
            events = self.events
            types = params.get("types")
            if isinstance(types, list):
                if len(types) > 20:
                    raise StripeApiError(400, "You may pass at most 20 types.", param="types")
                events = [e for e in events if e["type"] in types]
            return 200, self._list("/v1/events", events, params, filters=("type",))
        if parts == ["invoices"] and method == "GET":
            return 200, self._list(
                "/v1/invoices",
                list(self.invoices.values()),
                params,
                filters=("status", "customer"),
            )
        if parts == ["invoice_payments"] and method == "GET":
            items = list(self.invoice_payments.values())
            if "invoice" in params:
                items = [i for i in items if i["invoice"] == params["invoice"]]
            payment = params.get("payment")
            if isinstance(payment, dict) and "payment_intent" in payment:
                items = [
                    i for i in items if i["payment"]["payment_intent"] == payment["payment_intent"]
                ]
            return 200, self._list("/v1/invoice_payments", items, params, filters=("status",))
        if method == "GET" and len(parts) == 2 and parts[0] in objects:
            table, kind = objects[parts[0]]
            if parts[1] not in table:
                raise _missing(kind, parts[1])
            return 200, table[parts[1]]
        raise StripeApiError(
            404, f"Unrecognized request URL ({method}: {path}).", type_="invalid_request_error"
        )

    def _list(
        self,
        url: str,
        items: list[dict[str, Any]],
        params: dict[str, Any],
        *,
        filters: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        for name in filters:
            if name in params:
                items = [i for i in items if str(i.get(name)) == params[name]]
        created = params.get("created")
        if isinstance(created, dict):
            for op, raw in created.items():
                bound = int(raw)
                check = {
                    "gt": lambda v, b=bound: v > b,
                    "gte": lambda v, b=bound: v >= b,
                    "lt": lambda v, b=bound: v < b,
                    "lte": lambda v, b=bound: v <= b,
                }.get(op)
                if check is None:
                    raise StripeApiError(400, f"Invalid created filter: {op}", param="created")
                items = [i for i in items if check(i["created"])]
        elif isinstance(created, str):
            items = [i for i in items if i["created"] == int(created)]
        # Newest first; the insertion order breaks ties, as Stripe's ids do.
        ordered = [i for _, i in sorted(enumerate(items), key=lambda p: (-p[1]["created"], -p[0]))]
        limit = _int_param(params, "limit", minimum=1) or 10
        if limit > 100:
            raise StripeApiError(
                400, "This value must be less than or equal to 100.", param="limit"
            )
        after = params.get("starting_after")
        if after:
            ids = [i["id"] for i in ordered]
            if after not in ids:
                raise _missing("object", after, "starting_after")
            ordered = ordered[ids.index(after) + 1 :]
        page = ordered[:limit]
        return {"object": "list", "data": page, "has_more": len(ordered) > limit, "url": url}

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        mode = params.get("mode")
        if mode not in ("payment", "subscription", "setup"):
            raise StripeApiError(400, "Missing required param: mode.", param="mode")
        if mode == "setup":
            raise StripeApiError(400, "setup mode is not supported by this fake", param="mode")
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            raise StripeApiError(
                400,
                "line_items is required in payment and subscription mode.",
                param="line_items",
            )
        if not params.get("success_url"):
            raise StripeApiError(400, "Missing required param: success_url.", param="success_url")
        now = self.now()
        expires_at = _int_param(params, "expires_at")
        if expires_at is None:
            expires_at = now + 24 * 3600
        elif expires_at < now + 30 * 60:  # measured on Stripe's clock, at creation
            raise StripeApiError(
                400,
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session "
                "creation.",
                param="expires_at",
            )
        elif expires_at > now + 24 * 3600:
            raise StripeApiError(
                400,
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session "
                "creation.",
                param="expires_at",
            )
        customer = params.get("customer")
        creation = params.get("customer_creation")
        if customer and creation:
            raise StripeApiError(
                400,
                "You may only specify one of these parameters: customer, customer_creation.",
                param="customer_creation",
            )
        if creation and mode != "payment":
            raise StripeApiError(
                400,
                "`customer_creation` can only be used in `payment` mode.",
                param="customer_creation",
            )
        if creation not in (None, "always", "if_required"):
            raise StripeApiError(
                400, f"Invalid customer_creation: {creation}", param="customer_creation"
            )
        if customer and customer not in self.customers:
            raise _missing("customer", customer, "customer")
        if "payment_intent_data" in params and mode != "payment":
            raise StripeApiError(
                400,
                "You can only specify `payment_intent_data` in `payment` mode.",
                param="payment_intent_data",
            )
        if "subscription_data" in params and mode != "subscription":
            raise StripeApiError(
                400,
                "You can only specify `subscription_data` in `subscription` mode.",
                param="subscription_data",
            )
        for name, meta in (
            ("metadata", params.get("metadata")),
            (
                "payment_intent_data[metadata]",
                (params.get("payment_intent_data") or {}).get("metadata"),
            ),
            (
                "subscription_data[metadata]",
                (params.get("subscription_data") or {}).get("metadata"),
            ),
        ):
            if meta is None:
                continue
            if not isinstance(meta, dict) or len(meta) > 50:
                raise StripeApiError(400, "Invalid metadata.", param=name)
            for k, v in meta.items():
                if len(k) > 40 or len(str(v)) > 500:
                    raise StripeApiError(
                        400,
                        "Metadata keys are at most 40 characters and values at most 500.",
                        param=name,
                    )
        reference = params.get("client_reference_id")
        if reference is not None and len(reference) > 200:
            raise StripeApiError(
                400, "client_reference_id is too long.", param="client_reference_id"
            )
        total = 0
        currency = None
        recurring_price = None
        for index, item in enumerate(items):
            param = f"line_items[{index}]"
            if not isinstance(item, dict):
                raise StripeApiError(400, "Invalid line item.", param=param)
            quantity = _int_param(item, "quantity", minimum=1) or 1
            if "price" in item:
                price = self.prices.get(item["price"])
                if price is None:
                    raise _missing("price", item["price"], f"{param}[price]")
            elif isinstance(item.get("price_data"), dict):
                data = item["price_data"]
                if not data.get("currency"):
                    raise StripeApiError(
                        400,
                        "Missing required param: currency.",
                        param=f"{param}[price_data][currency]",
                    )
                amount = _int_param(data, "unit_amount", minimum=0)
                if amount is None:
                    raise StripeApiError(
                        400,
                        "Missing required param: unit_amount.",
                        param=f"{param}[price_data][unit_amount]",
                    )
                product = data.get("product_data")
                if not data.get("product") and not (
                    isinstance(product, dict) and product.get("name")
                ):
                    raise StripeApiError(
                        400,
                        "Missing required param: product_data[name].",
                        param=f"{param}[price_data][product_data]",
                    )
                recurring = data.get("recurring")
                price = self._price(
                    _new_id("price_"),
                    data["currency"],
                    amount,
                    recurring=recurring if isinstance(recurring, dict) else None,
                    name=(product or {}).get("name", "Credits"),
                )
            else:
                raise StripeApiError(
                    400, "Each line item needs `price` or `price_data`.", param=param
                )
            if price["recurring"] and mode == "payment":
                raise StripeApiError(
                    400,
                    "You must be in `subscription` mode to use a recurring price.",
                    param=f"{param}",
                )
            if price["recurring"]:
                recurring_price = price
            if currency is not None and price["currency"] != currency:
                raise StripeApiError(400, "All line items must use the same currency.", param=param)
            currency = price["currency"]
            total += price["unit_amount"] * quantity
        if mode == "subscription" and recurring_price is None:
            raise StripeApiError(
                400,
                "You must specify at least one recurring price in `subscription` mode.",
                param="line_items",
            )
        session_id = _new_id("cs_test_", 58)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": reference,
            "created": now,
            "currency": currency,
            "customer": customer,
            "customer_creation": creation,
            "customer_details": None,
            "customer_email": params.get("customer_email"),
            "expires_at": expires_at,
            "invoice": None,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "mode": mode,
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "subscription": None,
            "success_url": params.get("success_url"),
            "ui_mode": "hosted_page",
            "url": f"{self.base_url}/c/pay/{session_id}",
        }
        self.sessions[session_id] = session
        self._extras[session_id] = {
            "pi_metadata": (params.get("payment_intent_data") or {}).get("metadata"),
            "sub_metadata": (params.get("subscription_data") or {}).get("metadata"),
            "recurring_price": recurring_price,
        }
        return session

    def _create_portal(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = params.get("customer")
        if not customer:
            raise StripeApiError(400, "Missing required param: customer.", param="customer")
        if customer not in self.customers:
            raise _missing("customer", customer, "customer")
        portal = {
            "id": _new_id("bps_"),
            "object": "billing_portal.session",
            "created": self.now(),
            "customer": customer,
            "livemode": False,
            "return_url": params.get("return_url"),
            "url": f"{self.base_url}/p/session/{_new_id('test_', 32)}",
        }
        self.portal_sessions[portal["id"]] = portal
        return portal
