"""Telegram Stars on the Telegram fake: invoices, the buyer's side, refunds, transactions.

A mixin of :class:`tests.fakes.telegram_server.FakeTelegram` (kept in its own module so the
payments part stays self-contained). It validates ``sendInvoice`` and ``createInvoiceLink``
as the Bot API does for Stars (currency ``XTR`` needs an empty or absent provider token and
exactly one price; title 1-32 characters, description 1-255, payload 1-128 bytes;
``subscription_period`` only 2592000 and only on links in XTR), answers
``answerPreCheckoutQuery``, ``refundStarPayment``, ``getStarTransactions`` and
``editUserStarSubscription`` with Telegram's answers and error descriptions, and lets a test
play the buyer: :meth:`StarsFake.pay` sends a ``pre_checkout_query``, waits for the bot's
answer (timing it), and on ``ok`` sends the ``successful_payment`` message with a unique
``telegram_payment_charge_id``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.telegram_server import BotCall, FakeUser

SUBSCRIPTION_PERIOD = 2592000
"""The only subscription period the Bot API accepts (30 days)."""
PRE_CHECKOUT_DEADLINE = 10.0
"""Telegram cancels a payment whose pre-checkout query is not answered within 10 s."""


@dataclass
class StarInvoice:
    """An invoice the bot sent (``sendInvoice``) or made a link for (``createInvoiceLink``)."""

    title: str
    description: str
    payload: str
    amount: int
    currency: str
    subscription_period: int | None = None
    link: str | None = None
    message: dict[str, Any] | None = None


@dataclass
class PreCheckout:
    """One pre-checkout query and how the bot answered it."""

    id: str
    user_id: int
    payload: str
    amount: int
    sent_at: float
    answered_at: float | None = None
    ok: bool | None = None
    error_message: str | None = None

    @property
    def answer_seconds(self) -> float | None:
        """How long the bot took to answer."""
        return None if self.answered_at is None else self.answered_at - self.sent_at


@dataclass
class StarCharge:
    """A payment in Stars as Telegram keeps it."""

    charge_id: str
    user_id: int
    payload: str
    amount: int
    date: int
    subscription_period: int | None = None
    expiration: int | None = None
    refunded: bool = False
    canceled: bool = False
    first: bool = True


@dataclass
class PaymentResult:
    """What :meth:`StarsFake.pay` saw: the pre-checkout and, when paid, the charge."""

    pre_checkout: PreCheckout
    charge: StarCharge | None = None
    message: dict[str, Any] | None = None
    update: dict[str, Any] | None = field(default=None, repr=False)


class StarsError(Exception):
    """Raised by the mixin's handlers; turned into the Bot API's error answer."""


class StarsFake:
    """Stars methods and scripting; mixed into FakeTelegram."""

    # --- state (made on first use, so FakeTelegram's constructor stays as it is) --------------

    @property
    def invoices(self) -> list[StarInvoice]:
        """Every invoice and invoice link the bot made, in order."""
        return self._stars_state()["invoices"]  # type: ignore[no-any-return]

    @property
    def pre_checkouts(self) -> list[PreCheckout]:
        """Every pre-checkout query sent, with the bot's answer and its timing."""
        return self._stars_state()["pre_checkouts"]  # type: ignore[no-any-return]

    @property
    def charges(self) -> dict[str, StarCharge]:
        """Payments by ``telegram_payment_charge_id``."""
        return self._stars_state()["charges"]  # type: ignore[no-any-return]

    @property
    def star_transactions(self) -> list[dict[str, Any]]:
        """``StarTransaction`` objects, oldest first (what ``getStarTransactions`` lists)."""
        return self._stars_state()["transactions"]  # type: ignore[no-any-return]

    def _stars_state(self) -> dict[str, Any]:
        state = self.__dict__.get("_stars")
        if state is None:
            state = {
                "invoices": [],
                "pre_checkouts": [],
                "charges": {},
                "transactions": [],
                "answered": {},
                "ids": itertools.count(1),
            }
            self.__dict__["_stars"] = state
        return state

    # --- the bot's side: methods ---------------------------------------------------------------

    def _invoice_params(self, call: BotCall, *, link: bool) -> StarInvoice:
        from tests.fakes.telegram_server import ApiError

        p = call.params
        title = str(p.get("title") or "")
        description = str(p.get("description") or "")
        payload = str(p.get("payload") or "")
        currency = str(p.get("currency") or "")
        if not 1 <= len(title) <= 32:
            raise ApiError(
                400, "Bad Request: TITLE_INVALID" if title else "Bad Request: title is empty"
            )
        if not 1 <= len(description) <= 255:
            raise ApiError(400, "Bad Request: DESCRIPTION_INVALID")
        if not 1 <= len(payload.encode()) <= 128:
            raise ApiError(
                400, "Bad Request: PAYLOAD_INVALID" if payload else "Bad Request: payload is empty"
            )
        if not currency:
            raise ApiError(400, "Bad Request: currency is empty")
        raw_prices = p.get("prices")
        try:
            prices = json.loads(raw_prices) if isinstance(raw_prices, str) else raw_prices
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse prices JSON object") from None
        if not isinstance(prices, list) or not prices:
            raise ApiError(400, "Bad Request: prices must be a non-empty array")
        for price in prices:
            if (
                not isinstance(price, dict)
                or not price.get("label")
                or not isinstance(price.get("amount"), int)
            ):
                raise ApiError(400, "Bad Request: can't parse prices JSON object")
        period = p.get("subscription_period")
        if period is not None:
            period = int(period)
        if currency == "XTR":
            if p.get("provider_token") not in (None, ""):
                raise ApiError(400, "Bad Request: CURRENCY_INVALID")
            if len(prices) != 1:
                raise ApiError(400, "Bad Request: STARS_INVOICE_INVALID")
            for name in ("max_tip_amount", "suggested_tip_amounts"):
                if p.get(name) not in (None, 0, "0", "[]", []):
                    raise ApiError(400, "Bad Request: STARS_INVOICE_INVALID")
            for name in ("need_shipping_address", "is_flexible"):
                if str(p.get(name, "")).lower() == "true":
                    raise ApiError(400, "Bad Request: STARS_INVOICE_INVALID")
        elif not p.get("provider_token"):
            raise ApiError(400, "Bad Request: PAYMENT_PROVIDER_INVALID")
        amount = sum(int(price["amount"]) for price in prices)
        if amount <= 0:
            raise ApiError(400, "Bad Request: STARS_INVOICE_INVALID")
        if period is not None:
            if not link:
                raise ApiError(400, "Bad Request: unknown parameter subscription_period")
            if period != SUBSCRIPTION_PERIOD:
                raise ApiError(400, "Bad Request: SUBSCRIPTION_PERIOD_INVALID")
            if currency != "XTR":
                raise ApiError(400, "Bad Request: SUBSCRIPTION_EXPORT_MISSING")
            if amount > 10000:
                raise ApiError(400, "Bad Request: STARS_INVOICE_INVALID")
        return StarInvoice(title, description, payload, amount, currency, period)

    async def _m_sendInvoice(self, call: BotCall) -> Any:
        invoice = self._invoice_params(call, link=False)
        message = self._bot_message(call)  # type: ignore[attr-defined]
        message["invoice"] = {
            "title": invoice.title,
            "description": invoice.description,
            "start_parameter": str(call.params.get("start_parameter") or ""),
            "currency": invoice.currency,
            "total_amount": invoice.amount,
        }
        invoice.message = message
        self.invoices.append(invoice)
        return self._store(message)  # type: ignore[attr-defined]

    async def _m_createInvoiceLink(self, call: BotCall) -> Any:
        invoice = self._invoice_params(call, link=True)
        n = next(self._stars_state()["ids"])
        invoice.link = f"https://t.me/$invoice{n:06d}"
        self.invoices.append(invoice)
        return invoice.link

    async def _m_answerPreCheckoutQuery(self, call: BotCall) -> Any:
        from tests.fakes.telegram_server import ApiError

        query_id = str(call.params.get("pre_checkout_query_id") or "")
        query = next((q for q in self.pre_checkouts if q.id == query_id), None)
        if query is None or query.answered_at is not None:
            raise ApiError(400, "Bad Request: QUERY_ID_INVALID")
        ok = str(call.params.get("ok", "")).lower() == "true"
        error = call.params.get("error_message")
        if not ok and not error:
            raise ApiError(400, "Bad Request: error_message is empty")
        now = time.perf_counter()
        if now - query.sent_at > PRE_CHECKOUT_DEADLINE:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired")
        query.answered_at, query.ok, query.error_message = now, ok, error
        self._stars_state()["answered"][query_id] = True
        self._calls_changed.set()  # type: ignore[attr-defined]
        return True

    async def _m_refundStarPayment(self, call: BotCall) -> Any:
        from tests.fakes.telegram_server import ApiError

        charge = self.charges.get(str(call.params.get("telegram_payment_charge_id") or ""))
        if charge is None or charge.user_id != _int(call.params.get("user_id")):
            raise ApiError(400, "Bad Request: CHARGE_NOT_FOUND")
        if charge.refunded:
            raise ApiError(400, "Bad Request: CHARGE_ALREADY_REFUNDED")
        charge.refunded = True
        self._transaction_refund(charge)
        return True

    async def _m_getStarTransactions(self, call: BotCall) -> Any:
        from tests.fakes.telegram_server import ApiError

        offset = _int(call.params.get("offset")) or 0
        limit = _int(call.params.get("limit")) or 100
        if not 1 <= limit <= 100 or offset < 0:
            raise ApiError(400, "Bad Request: LIMIT_INVALID")
        return {"transactions": self.star_transactions[offset : offset + limit]}

    async def _m_editUserStarSubscription(self, call: BotCall) -> Any:
        from tests.fakes.telegram_server import ApiError

        charge = self.charges.get(str(call.params.get("telegram_payment_charge_id") or ""))
        if charge is None or charge.user_id != _int(call.params.get("user_id")):
            raise ApiError(400, "Bad Request: CHARGE_ID_INVALID")
        if charge.subscription_period is None:
            raise ApiError(400, "Bad Request: SUBSCRIPTION_ID_INVALID")
        canceled = str(call.params.get("is_canceled", "")).lower() == "true"
        if canceled == charge.canceled:
            raise ApiError(400, "Bad Request: SUBSCRIPTION_NOT_MODIFIED")
        charge.canceled = canceled
        return True

    # --- the buyer's side ----------------------------------------------------------------------

    def invoice_for(self, payload_or_link: str) -> StarInvoice:
        """An invoice by its link or payload."""
        for invoice in reversed(self.invoices):
            if payload_or_link in (invoice.link, invoice.payload):
                return invoice
        raise AssertionError(f"no invoice {payload_or_link!r}")

    def send_pre_checkout(
        self, user: FakeUser, payload: str, amount: int, currency: str = "XTR"
    ) -> PreCheckout:
        """The user presses Pay: a ``pre_checkout_query`` (anything may be forged here)."""
        n = next(self._stars_state()["ids"])
        query = PreCheckout(f"pcq{n}", user.id, payload, amount, time.perf_counter())
        self.pre_checkouts.append(query)
        self._push(  # type: ignore[attr-defined]
            {
                "pre_checkout_query": {
                    "id": query.id,
                    "from": user.to_api(),
                    "currency": currency,
                    "total_amount": amount,
                    "invoice_payload": payload,
                }
            }
        )
        return query

    async def wait_pre_checkout(self, query: PreCheckout, timeout: float = 11.0) -> PreCheckout:
        """Wait for the bot's answer to ``query`` (Telegram gives it 10 s)."""
        deadline = time.perf_counter() + timeout
        while query.answered_at is None:
            if time.perf_counter() > deadline:
                raise AssertionError(f"pre-checkout {query.id} not answered in {timeout} s")
            await asyncio.sleep(0.005)
        return query

    async def pay(
        self,
        user: FakeUser,
        invoice: StarInvoice | str,
        *,
        deliver: bool = True,
        amount: int | None = None,
    ) -> PaymentResult:
        """The user pays ``invoice`` (an invoice, its link or its payload): the
        pre-checkout, then, when the bot said ok, the payment. ``deliver=False`` charges
        without sending the ``successful_payment`` update (a lost update, for reconcile)."""
        inv = invoice if isinstance(invoice, StarInvoice) else self.invoice_for(invoice)
        query = self.send_pre_checkout(
            user, inv.payload, inv.amount if amount is None else amount, inv.currency
        )
        await self.wait_pre_checkout(query)
        result = PaymentResult(query)
        if not query.ok:
            return result
        n = next(self._stars_state()["ids"])
        now = int(time.time())
        charge = StarCharge(
            charge_id=f"stxCharge{n:08d}abcdef",
            user_id=user.id,
            payload=inv.payload,
            amount=inv.amount,
            date=now,
            subscription_period=inv.subscription_period,
            expiration=now + inv.subscription_period if inv.subscription_period else None,
        )
        self.charges[charge.charge_id] = charge
        self._transaction_payment(charge, user)
        result.charge = charge
        result.update, result.message = self.payment_update(user, charge)
        if deliver:
            self.pending.append(result.update)  # type: ignore[attr-defined]
            self._updates_changed.set()  # type: ignore[attr-defined]
        return result

    async def renew(
        self, user: FakeUser, first: StarCharge, *, deliver: bool = True
    ) -> StarCharge | None:
        """A month passes: Telegram charges the subscription again (None once cancelled)."""
        if first.canceled or first.subscription_period is None:
            return None
        n = next(self._stars_state()["ids"])
        latest = max(
            (
                c
                for c in self.charges.values()
                if c.payload == first.payload and c.user_id == user.id
            ),
            key=lambda c: c.expiration or 0,
        )
        charge = StarCharge(
            charge_id=f"stxCharge{n:08d}renew",
            user_id=user.id,
            payload=first.payload,
            amount=first.amount,
            date=int(time.time()),
            subscription_period=first.subscription_period,
            expiration=(latest.expiration or int(time.time())) + first.subscription_period,
            first=False,
        )
        self.charges[charge.charge_id] = charge
        # Cancelling from the bot acts on the subscription (the first charge's id).
        charge.canceled = first.canceled
        self._transaction_payment(charge, user)
        if deliver:
            update, _ = self.payment_update(user, charge)
            self.pending.append(update)  # type: ignore[attr-defined]
            self._updates_changed.set()  # type: ignore[attr-defined]
        return charge

    def payment_update(
        self, user: FakeUser, charge: StarCharge
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``successful_payment`` message of ``charge`` as a new update (not queued):
        replay it with ``push_update`` or ``post_webhook`` to redeliver."""
        chat = self.private_chat(user)  # type: ignore[attr-defined]
        message = self._user_message(user, chat, None)  # type: ignore[attr-defined]
        paid: dict[str, Any] = {
            "currency": "XTR",
            "total_amount": charge.amount,
            "invoice_payload": charge.payload,
            "telegram_payment_charge_id": charge.charge_id,
            "provider_payment_charge_id": "",
        }
        if charge.subscription_period:
            paid["subscription_expiration_date"] = charge.expiration
            paid["is_recurring"] = True
            paid["is_first_recurring"] = charge.first
        message["successful_payment"] = paid
        self._store(message)  # type: ignore[attr-defined]
        return self.make_update({"message": message}), message  # type: ignore[attr-defined]

    def refunded_update(self, user: FakeUser, charge: StarCharge) -> dict[str, Any]:
        """Telegram tells the bot a payment was refunded (a ``refunded_payment`` message);
        queued, and returned for replays."""
        charge.refunded = True
        if not any(
            t.get("receiver", {}).get("type") == "user" and t["id"] == charge.charge_id
            for t in self.star_transactions
        ):
            self._transaction_refund(charge)
        chat = self.private_chat(user)  # type: ignore[attr-defined]
        message = self._user_message(user, chat, None)  # type: ignore[attr-defined]
        message["refunded_payment"] = {
            "currency": "XTR",
            "total_amount": charge.amount,
            "invoice_payload": charge.payload,
            "telegram_payment_charge_id": charge.charge_id,
        }
        update = self.make_update({"message": message})  # type: ignore[attr-defined]
        self.pending.append(update)  # type: ignore[attr-defined]
        self._updates_changed.set()  # type: ignore[attr-defined]
        return update

    # --- transactions ----------------------------------------------------------------------------

    def _transaction_payment(self, charge: StarCharge, user: FakeUser) -> None:
        source: dict[str, Any] = {
            "type": "user",
            "transaction_type": "invoice_payment",
            "user": user.to_api(),
            "invoice_payload": charge.payload,
        }
        if charge.subscription_period:
            source["subscription_period"] = charge.subscription_period
        self.star_transactions.append(
            {"id": charge.charge_id, "amount": charge.amount, "date": charge.date, "source": source}
        )

    def _transaction_refund(self, charge: StarCharge) -> None:
        self.star_transactions.append(
            {
                "id": charge.charge_id,
                "amount": charge.amount,
                "date": int(time.time()),
                "receiver": {
                    "type": "user",
                    "transaction_type": "invoice_payment",
                    "user": {"id": charge.user_id, "is_bot": False, "first_name": "user"},
                    "invoice_payload": charge.payload,
                },
            }
        )


def _int(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None
