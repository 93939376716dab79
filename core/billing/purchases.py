"""Payments that move credits: packs, plan periods, refunds and disputes (P05, P06).

Rail-neutral: each payment rail is a thin translator into the changes below, applied
with :meth:`PurchaseService.apply`. Stripe (``payments/stripe``) reports checkouts,
invoices, subscription states, refunds and disputes; Telegram Stars and Discord premium
(in their adapters) report :class:`RailPaid`, :class:`RailRefunded` and
:class:`RailPlanChanged`. Each change is one transaction, and every credit it moves is
keyed by the rail's own ids, in a key space per rail (Stripe's object ids as they are;
``telegram:<charge id>``, ``discord:<entitlement id>``), so redeliveries, replicas and the
reconcile jobs never apply anything twice. Changes may arrive in any order: a refund or
dispute whose payment is not known yet is kept and settled when the payment arrives. Rows
hold ids, amounts, currency, credits and plan state only (P04).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from core.billing.ledger import CreditLedger
from core.billing.offers import Offer
from core.billing.ports import (
    ENDED_PLAN_STATES,
    FINAL_DISPUTE_STATES,
    CheckoutRecord,
    NewPurchase,
    PurchaseRecord,
    ReversalRecord,
    SubscriptionRecord,
)
from core.i18n import Msg, msg, negotiate, render
from core.metrics import Metrics, NoMetrics
from core.notifier import NotifierHub
from core.ports import Clock
from core.repositories import UnitOfWork, UnitOfWorkFactory
from core.types import Announcement, ReplyTarget

log = logging.getLogger("imagebot.billing")

MIN_CHECKOUT_LIFETIME = timedelta(minutes=31)
"""Stripe wants a checkout to live at least 30 minutes from when it receives the request;
the extra minute covers the time on the wire and clocks a little apart."""
MAX_CHECKOUT_LIFETIME = timedelta(hours=24) - timedelta(minutes=2)
"""...and at most 24 hours, with the same margin the other way."""
REUSE_MARGIN = timedelta(minutes=5)
"""A link this close to its expiry is not handed out again."""


# --- changes reported by the payment processor ------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckoutPaid:
    """A checkout finished: paid, still pending (a delayed method), or failed.

    ``checkout_ref`` and ``claimed_user_id`` come from the metadata imagebot put on the
    checkout; the stored checkout row decides who the buyer is.
    """

    session_id: str
    mode: Literal["payment", "subscription"]
    checkout_ref: str | None
    claimed_user_id: int | None
    paid: bool
    failed: bool
    amount_minor: int
    currency: str
    customer_id: str | None
    payment_intent_id: str | None
    subscription_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class InvoicePaid:
    """A plan's invoice was paid: the credits of one period."""

    invoice_id: str
    subscription_id: str
    checkout_ref: str | None
    claimed_user_id: int | None
    customer_id: str | None
    amount_minor: int
    currency: str
    billing_reason: str
    period_end: datetime | None
    payment_intent_ids: tuple[str, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class SubscriptionChanged:
    """A plan's state as the processor reports it at ``at``."""

    subscription_id: str
    checkout_ref: str | None
    claimed_user_id: int | None
    customer_id: str | None
    status: str
    cancel_at_period_end: bool
    current_period_end: datetime | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ChargeRefunded:
    """A payment was refunded, in full or in part (``amount_refunded`` is cumulative)."""

    charge_id: str
    payment_intent_id: str
    amount_minor: int
    amount_refunded: int
    currency: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DisputeChanged:
    """A dispute (chargeback) against a payment was opened, changed or closed."""

    dispute_id: str
    payment_intent_id: str
    amount_minor: int
    currency: str
    status: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RailPaid:
    """A payment on a chat platform's own rail: a Telegram Stars payment (a pack, or one
    period of a Stars subscription) or a Discord entitlement (a consumable, or one period
    of a subscription SKU).

    ``payment_id`` is the rail's own unique id of this payment (``telegram_payment_charge_id``;
    the entitlement id, with the period for subscriptions): it keys the credits, so a
    redelivered update grants nothing. ``plan_id`` names the rail's subscription for plans.
    """

    rail: Literal["telegram", "discord"]
    payment_id: str
    user_id: int
    offer_id: str
    amount: int
    currency: str
    plan_id: str | None = None
    period_end: datetime | None = None
    first_period: bool = True
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RailRefunded:
    """A rail payment was refunded (Stars ``refundStarPayment`` / ``refunded_payment``) or
    withdrawn (a Discord entitlement deleted): its credits are taken back, once."""

    rail: Literal["telegram", "discord"]
    payment_id: str
    amount: int
    currency: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RailPlanChanged:
    """A rail subscription was cancelled (it runs to ``period_end``) or has ended."""

    rail: Literal["telegram", "discord"]
    plan_id: str
    status: str
    cancel_at_period_end: bool
    period_end: datetime | None
    at: datetime


BillingChange = (
    CheckoutPaid
    | InvoicePaid
    | SubscriptionChanged
    | ChargeRefunded
    | DisputeChanged
    | RailPaid
    | RailRefunded
    | RailPlanChanged
)

ORDER_LIFETIME = timedelta(hours=24)
"""How long a Stars invoice can be paid after it was sent; later pre-checkouts are refused."""

OrderRefusal = Literal["unknown", "expired", "other_user", "price_changed", "banned"]
"""Why a rail's pre-checkout is refused (each has a sentence in the adapter's renderer)."""


def rail_id(rail: str, rail_object_id: str) -> str:
    """The stored id of a rail's object: its own key space beside Stripe's ids."""
    return f"{rail}:{rail_object_id}"


@dataclass(frozen=True, slots=True)
class CheckoutTicket:
    """What a checkout link needs: our reference, the expiry, a customer to reuse, and
    the link made earlier for the same press when it is still good."""

    ref: str
    expires_at: datetime
    customer_id: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class BillingOutcome:
    """What :meth:`PurchaseService.apply` did; ``notices`` are sent with :meth:`deliver`."""

    duplicate: bool = False
    applied: bool = False
    notices: tuple[tuple[ReplyTarget, Announcement], ...] = ()


@dataclass
class _Notes:
    """Messages for users, collected inside a transaction and sent after the commit."""

    items: list[tuple[int, Msg]] = field(default_factory=list)
    sold: int = 0

    def add(self, user_id: int, text: Msg) -> None:
        self.items.append((user_id, text))


class PurchaseService:
    """The billing use cases the webhook and the reconcile job call."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        ledger: CreditLedger,
        notifier: NotifierHub,
        clock: Clock,
        offers: tuple[Offer, ...],
        metrics: Metrics | None = None,
    ) -> None:
        self._uow = uow
        self.ledger = ledger
        self.notifier = notifier
        self.clock = clock
        self._offers = {o.id: o for o in offers}
        self.metrics: Metrics = metrics or NoMetrics()

    # --- checkout links -----------------------------------------------------------------------

    async def begin_checkout(
        self, user_id: int, offer: Offer, *, request_key: str, lifetime: timedelta
    ) -> CheckoutTicket:
        """Find or make the checkout row of one button press.

        The same press (``request_key``) gives the same row and expiry, so the processor
        sees identical parameters under the same idempotency key and makes one session.
        """
        ref = hashlib.sha256(f"{user_id}:{offer.id}:{request_key}".encode()).hexdigest()
        now = self.clock.now()
        lifetime = min(max(lifetime, MIN_CHECKOUT_LIFETIME), MAX_CHECKOUT_LIFETIME)
        # Rounded up to the second, so truncation never takes it under the minimum.
        fresh_expiry = now + lifetime
        if fresh_expiry.microsecond:
            fresh_expiry = fresh_expiry.replace(microsecond=0) + timedelta(seconds=1)
        async with self._uow() as uow:
            row = await uow.billing.claim_checkout(
                ref=ref,
                user_id=user_id,
                offer_id=offer.id,
                kind=offer.kind,
                credits=offer.credits,
                offer_name=offer.name,
                expires_at=fresh_expiry,
                now=now,
            )
            url = row.url if row.url and row.expires_at - now > REUSE_MARGIN else None
            expires_at = row.expires_at
            if url is None and row.expires_at - now < MIN_CHECKOUT_LIFETIME:
                await uow.billing.renew_checkout(ref, fresh_expiry)
                expires_at = fresh_expiry
            customer = await uow.billing.customer_for(user_id)
            await uow.commit()
        return CheckoutTicket(ref, expires_at, customer, url)

    async def checkout_made(self, ref: str, session_id: str, url: str) -> None:
        """Remember the session made for a checkout row."""
        async with self._uow() as uow:
            await uow.billing.checkout_made(ref, session_id, url)
            await uow.commit()

    async def checkout_failed(self, ref: str) -> None:
        """The processor failed to make the session: move the expiry by a second, so the
        next press sends a new idempotency key (Stripe replays a stored 500 for a day)."""
        async with self._uow() as uow:
            row = await uow.billing.checkout(ref)
            if row is not None and row.session_id is None:
                await uow.billing.renew_checkout(ref, row.expires_at + timedelta(seconds=1))
            await uow.commit()

    async def customer_for(self, user_id: int) -> str | None:
        """The payment customer of a user, for the billing portal."""
        async with self._uow() as uow:
            return await uow.billing.customer_for(user_id)

    async def seen(self, event_id: str) -> bool:
        """True when this event was processed already."""
        async with self._uow() as uow:
            return await uow.billing.has_event(event_id)

    async def prune_events(self, older_than: timedelta) -> int:
        """Forget processed event ids older than ``older_than`` (Stripe resends for 3 days
        and lists events for 30, so keep them longer than that)."""
        async with self._uow() as uow:
            n = await uow.billing.prune_events(self.clock.now() - older_than)
            await uow.commit()
        return n

    # --- orders that a rail carries back (Telegram Stars invoice payloads) -----------------------

    async def open_order(self, user_id: int, offer: Offer, *, rail: str, request_key: str) -> str:
        """An opaque order reference for an invoice of ``offer`` to ``user_id``.

        The same press (``request_key``) gives the same reference. The reference names the
        buyer only in our own table, never in what the platform carries.
        """
        ref = hashlib.sha256(f"{rail}:{user_id}:{offer.id}:{request_key}".encode()).hexdigest()
        ref = ref[:32]
        now = self.clock.now()
        async with self._uow() as uow:
            row = await uow.billing.claim_checkout(
                ref=ref,
                user_id=user_id,
                offer_id=offer.id,
                kind=offer.kind,
                credits=offer.credits,
                offer_name=offer.name,
                expires_at=(now + ORDER_LIFETIME).replace(microsecond=0),
                now=now,
            )
            if row.expires_at <= now:
                await uow.billing.renew_checkout(ref, (now + ORDER_LIFETIME).replace(microsecond=0))
            await uow.commit()
        return ref

    async def check_order(
        self,
        ref: str,
        offer_id: str,
        *,
        platform: str,
        platform_user_id: str,
        amount: int,
        currency: str,
    ) -> tuple[OrderRefusal | None, Offer | None]:
        """Whether a pre-checkout may go ahead: (None, offer) when yes, else the reason.

        Nothing is granted here (the payment itself arrives later). One read-only
        transaction, so it answers well within a platform's deadline.
        """
        now = self.clock.now()
        async with self._uow() as uow:
            row = await uow.billing.checkout(ref) if 0 < len(ref) <= 64 else None
            if row is None or row.offer_id != offer_id:
                return "unknown", None
            user = await uow.users.find(platform, platform_user_id)
            if user is None or user.id != row.user_id:
                return "other_user", None
            if row.expires_at <= now:
                return "expired", None
            offer = self._offers.get(offer_id)
            price = offer.stars if offer is not None and currency.upper() == "XTR" else None
            if offer is None or price is None or price != amount:
                return "price_changed", None
            if (await uow.safety.standing(user.id)).banned_at(now):
                return "banned", None
        return None, offer

    async def order(self, ref: str) -> CheckoutRecord | None:
        """An order by its reference."""
        async with self._uow() as uow:
            return await uow.billing.checkout(ref)

    async def order_is_new(self, ref: str) -> bool:
        """True while no payment has been tied to an order (a plan's first period)."""
        async with self._uow() as uow:
            row = await uow.billing.checkout(ref) if 0 < len(ref) <= 64 else None
        return row is not None and not row.session_id

    async def rail_plan_is_new(self, rail: str, plan_id: str) -> bool:
        """True while a rail's subscription is not known here yet (its first period)."""
        async with self._uow() as uow:
            return await uow.billing.subscription(rail_id(rail, plan_id)) is None

    async def rail_plans(self, user_id: int) -> SubscriptionRecord | None:
        """The user's current plan (of any rail)."""
        async with self._uow() as uow:
            return await uow.billing.current_plan(user_id)

    async def purchase_by_rail(self, rail: str, payment_id: str) -> PurchaseRecord | None:
        """A rail payment's purchase row (for refunds by the operator)."""
        async with self._uow() as uow:
            return await uow.billing.purchase(rail_id(rail, payment_id))

    async def platform_user(self, user_id: int | None) -> tuple[str, str] | None:
        """(platform, platform user id) of a stored user; None once erased."""
        if user_id is None:
            return None
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
        return (user.platform, user.platform_user_id) if user else None

    # --- changes --------------------------------------------------------------------------------

    async def apply(
        self, change: BillingChange | None, *, event_id: str | None = None, event_type: str = ""
    ) -> BillingOutcome:
        """Apply one change in one transaction; with ``event_id``, once per event id.

        ``change=None`` records the event id only (an event imagebot does not act on).
        Nothing is half-applied: any error rolls the whole change back, event id included,
        so the processor's retry runs it again.
        """
        notes = _Notes()
        async with self._uow() as uow:
            now = self.clock.now()
            if event_id is not None and not await uow.billing.record_event(
                event_id, event_type[:64], now
            ):
                return BillingOutcome(duplicate=True)
            applied = False
            if isinstance(change, CheckoutPaid):
                applied = await self._checkout(uow, change, notes)
            elif isinstance(change, InvoicePaid):
                applied = await self._invoice(uow, change, notes)
            elif isinstance(change, SubscriptionChanged):
                applied = await self._subscription(uow, change, notes)
            elif isinstance(change, ChargeRefunded):
                applied = await self._refund(uow, change, notes)
            elif isinstance(change, DisputeChanged):
                applied = await self._dispute(uow, change, notes)
            elif isinstance(change, RailPaid):
                applied = await self._rail_paid(uow, change, notes)
            elif isinstance(change, RailRefunded):
                applied = await self._rail_refunded(uow, change, notes)
            elif isinstance(change, RailPlanChanged):
                applied = await self._rail_plan(uow, change, notes)
            notices = []
            for user_id, text in notes.items:
                user = await uow.users.get(user_id)
                if user is not None:
                    # In the buyer's language: their /settings choice, else their platform's.
                    chosen = (await uow.users.settings(user.id)).language
                    lang = negotiate(chosen or user.locale)
                    target = ReplyTarget(
                        user.platform, user.platform_user_id, extra={"dm": "1", "lang": lang}
                    )
                    notices.append((target, Announcement(render(text, lang))))
            await uow.commit()
        self.metrics.credits("sold", notes.sold)
        return BillingOutcome(False, applied, tuple(notices))

    async def deliver(self, outcome: BillingOutcome) -> None:
        """Send an outcome's messages (after its commit; a platform that is down loses
        the message, never the credits)."""
        for target, announcement in outcome.notices:
            await self.notifier.notify(target, announcement, final=True)

    # --- one transaction each -------------------------------------------------------------------

    async def _checkout(self, uow: UnitOfWork, c: CheckoutPaid, notes: _Notes) -> bool:
        if c.payment_intent_id:
            await uow.billing.lock(f"payment:{c.payment_intent_id}")
        checkout = await self._our_checkout(uow, c.checkout_ref, c.session_id, c.claimed_user_id)
        if checkout is None:
            log.warning(
                "checkout %s: no checkout of ours (or its user was erased); ignored", c.session_id
            )
            return False
        now = self.clock.now()
        user_id = checkout.user_id
        if c.customer_id:
            await uow.billing.save_customer(user_id, c.customer_id, now)
        if c.mode == "subscription":
            # The plan's credits come with each paid invoice; here only the plan is noted.
            noted = False
            if c.subscription_id:
                noted = await uow.billing.insert_subscription(
                    SubscriptionRecord(
                        subscription_id=c.subscription_id,
                        user_id=user_id,
                        offer_id=checkout.offer_id,
                        plan_name=checkout.offer_name,
                        credits=checkout.credits,
                        status="active" if c.paid else "incomplete",
                        cancel_at_period_end=False,
                        current_period_end=None,
                        state_at=c.at,
                    ),
                    now,
                )
            if c.failed:
                notes.add(user_id, _text_failed(checkout.offer_name))
            return noted or c.failed
        status = "failed" if c.failed else "paid" if c.paid else "pending"
        inserted = await uow.billing.insert_purchase(
            NewPurchase(
                user_id=user_id,
                kind="pack",
                offer_id=checkout.offer_id,
                stripe_object_id=c.session_id,
                payment_intent_id=c.payment_intent_id,
                subscription_id=None,
                amount_minor=c.amount_minor,
                currency=c.currency,
                credits=checkout.credits,
                status=status,
            ),
            now,
        )
        purchase = await uow.billing.purchase(c.session_id)
        assert purchase is not None
        changed = inserted
        if not inserted and purchase.status == "pending" and status != "pending":
            await uow.billing.set_purchase_status(purchase.id, status, now)
            purchase = replace(purchase, status=status)
            changed = True
        if changed:
            if status == "paid":
                if await self.ledger.grant(
                    uow,
                    user_id,
                    purchase.credits,
                    key=f"stripe:checkout:{c.session_id}",
                    kind="purchase",
                    note=checkout.offer_name,
                ):
                    notes.sold += purchase.credits
                    balance = await _balance(uow, user_id)
                    notes.add(
                        user_id,
                        msg(
                            "tg.pay.received",
                            credits=msg("credits", count=purchase.credits),
                            name=checkout.offer_name,
                            balance=balance,
                        ),
                    )
                    log.info(
                        "purchase paid session=%s user=%s credits=%s",
                        c.session_id,
                        user_id,
                        purchase.credits,
                    )
            elif status == "pending":
                notes.add(user_id, msg("tg.pay.processing", name=checkout.offer_name))
            else:
                notes.add(user_id, _text_failed(checkout.offer_name))
        if purchase.status == "paid" and purchase.payment_intent_id:
            await self._settle(uow, purchase.payment_intent_id, notes)
        return changed

    async def _invoice(self, uow: UnitOfWork, inv: InvoicePaid, notes: _Notes) -> bool:
        for payment in sorted(inv.payment_intent_ids):
            await uow.billing.lock(f"payment:{payment}")
        now = self.clock.now()
        sub = await uow.billing.subscription(inv.subscription_id)
        if sub is None:
            checkout = await self._our_checkout(uow, inv.checkout_ref, None, inv.claimed_user_id)
            if checkout is None:
                log.warning(
                    "invoice %s: plan %s is not ours (or its user was erased); ignored",
                    inv.invoice_id,
                    inv.subscription_id,
                )
                return False
            await uow.billing.insert_subscription(
                SubscriptionRecord(
                    subscription_id=inv.subscription_id,
                    user_id=checkout.user_id,
                    offer_id=checkout.offer_id,
                    plan_name=checkout.offer_name,
                    credits=checkout.credits,
                    status="active",
                    cancel_at_period_end=False,
                    current_period_end=inv.period_end,
                    state_at=inv.at,
                ),
                now,
            )
            sub = await uow.billing.subscription(inv.subscription_id)
            assert sub is not None
        if inv.customer_id:
            await uow.billing.save_customer(sub.user_id, inv.customer_id, now)
        if inv.period_end is not None:
            await uow.billing.extend_subscription_period(inv.subscription_id, inv.period_end, now)
        inserted = await uow.billing.insert_purchase(
            NewPurchase(
                user_id=sub.user_id,
                kind="plan",
                offer_id=sub.offer_id,
                stripe_object_id=inv.invoice_id,
                payment_intent_id=min(inv.payment_intent_ids) if inv.payment_intent_ids else None,
                subscription_id=inv.subscription_id,
                amount_minor=inv.amount_minor,
                currency=inv.currency,
                credits=sub.credits,
                status="paid",
            ),
            now,
        )
        if inserted and await self.ledger.grant(
            uow,
            sub.user_id,
            sub.credits,
            key=f"stripe:invoice:{inv.invoice_id}",
            kind="purchase",
            note=sub.plan_name,
        ):
            notes.sold += sub.credits
            balance = await _balance(uow, sub.user_id)
            if inv.billing_reason == "subscription_cycle":
                head = "tg.pay.plan_renewed"
            elif inv.billing_reason == "subscription_create":
                head = "tg.pay.plan_active"
            else:
                head = "tg.pay.plan_payment"
            notes.add(
                sub.user_id,
                _period_note(head, sub.plan_name, inv.period_end, sub.credits, balance),
            )
            log.info(
                "plan period paid invoice=%s user=%s credits=%s",
                inv.invoice_id,
                sub.user_id,
                sub.credits,
            )
        for payment in sorted(inv.payment_intent_ids):
            await self._settle(uow, payment, notes)
        return inserted

    async def _subscription(self, uow: UnitOfWork, s: SubscriptionChanged, notes: _Notes) -> bool:
        now = self.clock.now()
        sub = await uow.billing.subscription(s.subscription_id)
        if sub is None:
            checkout = await self._our_checkout(uow, s.checkout_ref, None, s.claimed_user_id)
            if checkout is None:
                log.warning(
                    "plan %s is not ours (or its user was erased); ignored", s.subscription_id
                )
                return False
            record = SubscriptionRecord(
                subscription_id=s.subscription_id,
                user_id=checkout.user_id,
                offer_id=checkout.offer_id,
                plan_name=checkout.offer_name,
                credits=checkout.credits,
                status=s.status,
                cancel_at_period_end=s.cancel_at_period_end,
                current_period_end=s.current_period_end,
                state_at=s.at,
            )
            if await uow.billing.insert_subscription(record, now):
                if s.customer_id:
                    await uow.billing.save_customer(checkout.user_id, s.customer_id, now)
                if record.ended:
                    notes.add(record.user_id, _text_plan_ended(record.plan_name))
                return True
            sub = await uow.billing.subscription(s.subscription_id)
            assert sub is not None
        applied = await uow.billing.update_subscription_state(
            s.subscription_id,
            status=s.status,
            cancel_at_period_end=s.cancel_at_period_end,
            current_period_end=s.current_period_end,
            state_at=s.at,
            now=now,
        )
        if not applied:
            return False
        ended = s.status in ENDED_PLAN_STATES
        if ended and not sub.ended:
            notes.add(sub.user_id, _text_plan_ended(sub.plan_name))
        elif not ended and s.cancel_at_period_end and not sub.cancel_at_period_end:
            notes.add(sub.user_id, _cancelled_note(sub.plan_name, s.current_period_end))
        elif s.status == "past_due" and sub.status != "past_due":
            notes.add(sub.user_id, msg("tg.pay.past_due", name=sub.plan_name))
        return True

    async def _refund(self, uow: UnitOfWork, r: ChargeRefunded, notes: _Notes) -> bool:
        await uow.billing.lock(f"payment:{r.payment_intent_id}")
        now = self.clock.now()
        existing = await uow.billing.reversal("refund", r.charge_id)
        if existing is None:
            await uow.billing.insert_reversal(
                kind="refund",
                stripe_object_id=r.charge_id,
                payment_intent_id=r.payment_intent_id,
                amount_minor=r.amount_refunded,
                payment_amount_minor=r.amount_minor,
                currency=r.currency,
                status="refunded",
                now=now,
            )
        elif r.amount_refunded > existing.amount_minor:
            await uow.billing.update_reversal(
                existing.id, amount_minor=r.amount_refunded, status="refunded", now=now
            )
        else:
            return False  # an older or repeated report of this charge's refunds
        await self._settle(uow, r.payment_intent_id, notes)
        return True

    async def _dispute(self, uow: UnitOfWork, d: DisputeChanged, notes: _Notes) -> bool:
        await uow.billing.lock(f"payment:{d.payment_intent_id}")
        now = self.clock.now()
        existing = await uow.billing.reversal("dispute", d.dispute_id)
        if existing is None:
            await uow.billing.insert_reversal(
                kind="dispute",
                stripe_object_id=d.dispute_id,
                payment_intent_id=d.payment_intent_id,
                amount_minor=d.amount_minor,
                payment_amount_minor=0,
                currency=d.currency,
                status=d.status,
                now=now,
            )
        elif existing.status in FINAL_DISPUTE_STATES or existing.status == d.status:
            return False  # a closed dispute stays closed; an older report changes nothing
        else:
            await uow.billing.update_reversal(
                existing.id, amount_minor=d.amount_minor, status=d.status, now=now
            )
        await self._settle(uow, d.payment_intent_id, notes)
        return True

    async def _rail_paid(self, uow: UnitOfWork, p: RailPaid, notes: _Notes) -> bool:
        """A pack, or one plan period, paid on a chat platform's rail: granted once per
        ``payment_id`` (the purchase row's unique id and the ledger key both carry it)."""
        stored = rail_id(p.rail, p.payment_id)
        await uow.billing.lock(f"payment:{stored}")
        now = self.clock.now()
        at = p.at or now
        offer = self._offers.get(p.offer_id)
        if offer is None:
            log.warning("%s payment for an unknown offer; kept unapplied", p.rail)
            return False
        if await uow.users.get(p.user_id) is None:
            return False
        plan_key = rail_id(p.rail, p.plan_id) if p.plan_id else None
        if offer.kind == "plan" and plan_key is not None:
            sub = await uow.billing.subscription(plan_key)
            if sub is None:
                await uow.billing.insert_subscription(
                    SubscriptionRecord(
                        subscription_id=plan_key,
                        user_id=p.user_id,
                        offer_id=offer.id,
                        plan_name=offer.name,
                        credits=offer.credits,
                        status="active",
                        cancel_at_period_end=False,
                        current_period_end=p.period_end,
                        state_at=at,
                    ),
                    now,
                )
            elif p.period_end is not None:
                await uow.billing.extend_subscription_period(plan_key, p.period_end, now)
        inserted = await uow.billing.insert_purchase(
            NewPurchase(
                user_id=p.user_id,
                kind=offer.kind,
                offer_id=offer.id,
                stripe_object_id=stored,
                payment_intent_id=stored,
                subscription_id=plan_key,
                amount_minor=p.amount,
                currency=p.currency.lower()[:3],
                credits=offer.credits,
                status="paid",
            ),
            now,
        )
        if not inserted:
            return False
        if await self.ledger.grant(
            uow,
            p.user_id,
            offer.credits,
            key=f"{stored}:purchase",
            kind="purchase",
            note=offer.name,
        ):
            notes.sold += offer.credits
            balance = await _balance(uow, p.user_id)
            if offer.kind == "plan" and p.first_period:
                head = "tg.pay.plan_active"
            elif offer.kind == "plan":
                head = "tg.pay.plan_renewed"
            else:
                head = "tg.pay.rail_received"
            notes.add(
                p.user_id, _period_note(head, offer.name, p.period_end, offer.credits, balance)
            )
            log.info("%s payment granted user=%s credits=%s", p.rail, p.user_id, offer.credits)
        # A refund that arrived before the payment is settled now.
        await self._settle(uow, stored, notes)
        return True

    async def _rail_refunded(self, uow: UnitOfWork, r: RailRefunded, notes: _Notes) -> bool:
        stored = rail_id(r.rail, r.payment_id)
        await uow.billing.lock(f"payment:{stored}")
        now = self.clock.now()
        if await uow.billing.reversal("refund", stored) is not None:
            return False  # refunded once already: a repeated report changes nothing
        await uow.billing.insert_reversal(
            kind="refund",
            stripe_object_id=stored,
            payment_intent_id=stored,
            # No amount (a Discord entitlement withdrawn) means the whole payment.
            amount_minor=r.amount if r.amount > 0 else 1,
            payment_amount_minor=r.amount if r.amount > 0 else 0,
            currency=r.currency.lower()[:3],
            status="refunded",
            now=now,
        )
        await self._settle(uow, stored, notes)
        return True

    async def _rail_plan(self, uow: UnitOfWork, c: RailPlanChanged, notes: _Notes) -> bool:
        plan_key = rail_id(c.rail, c.plan_id)
        sub = await uow.billing.subscription(plan_key)
        if sub is None:
            return False
        applied = await uow.billing.update_subscription_state(
            plan_key,
            status=c.status,
            cancel_at_period_end=c.cancel_at_period_end,
            current_period_end=c.period_end or sub.current_period_end,
            state_at=c.at,
            now=self.clock.now(),
        )
        if not applied:
            return False
        if c.status in ENDED_PLAN_STATES and not sub.ended:
            notes.add(sub.user_id, _text_plan_ended(sub.plan_name))
        elif c.cancel_at_period_end and not sub.cancel_at_period_end:
            end = c.period_end or sub.current_period_end
            notes.add(sub.user_id, _cancelled_note(sub.plan_name, end))
        return True

    # --- settling refunds and disputes against their payment ------------------------------------

    async def _settle(self, uow: UnitOfWork, payment_intent_id: str, notes: _Notes) -> None:
        """Bring a payment's purchase in line with its refunds and disputes.

        Each reversal takes back the credits of its share of the payment (rounded up),
        less what it took already; a purchase never loses more than it gave. Spending is
        frozen while any dispute of the user's payments is open.
        """
        purchases = await uow.billing.purchases_for_payment(payment_intent_id)
        paid = [p for p in purchases if p.status == "paid"]
        if not paid:
            return  # not known (or not paid) yet: settled when the payment arrives
        purchase = paid[0]
        now = self.clock.now()
        user_id = purchase.user_id
        name = self._name(purchase)
        shown = self._shown(purchase)
        revoked = purchase.credits_revoked
        reversals = await uow.billing.reversals_for_payment(payment_intent_id)
        for rev in reversals:
            delta = max(
                0, min(_target(rev, purchase) - rev.credits_taken, purchase.credits - revoked)
            )
            if delta == 0 and rev.purchase_id is not None:
                continue
            taken = rev.credits_taken + delta
            await uow.billing.settle_reversal(
                rev.id, purchase_id=purchase.id, user_id=user_id, credits_taken=taken, now=now
            )
            if delta == 0:
                continue
            revoked += delta
            await uow.billing.add_purchase_revoked(purchase.id, delta, now)
            if user_id is None:
                continue  # the buyer was erased: nothing left to take from
            # Stripe's ids keep their old key space; a rail's stored ids carry their own.
            space = "" if ":" in rev.stripe_object_id else "stripe:"
            await self.ledger.grant(
                uow,
                user_id,
                -delta,
                key=f"{space}{rev.kind}:{rev.stripe_object_id}:{taken}",
                kind=rev.kind,
                note=name,
            )
            balance = await _balance(uow, user_id)
            taken_back = msg("credits", count=delta)
            args = {"name": shown, "credits": taken_back, "balance": balance}
            if rev.kind == "refund" and rev.currency not in RAIL_CURRENCIES:
                amount = _money(rev.amount_minor, rev.currency)
                text = msg("tg.pay.refund_money", amount=amount, **args)
            elif rev.kind == "refund":
                text = msg("tg.pay.refund", **args)
            else:
                text = msg("tg.pay.dispute_lost", **args)
            if balance < 0:
                text = msg("tg.pay.with_pause", text=text)
            notes.add(user_id, text)
            log.info(
                "reversal applied %s=%s purchase=%s credits=%s",
                rev.kind,
                rev.stripe_object_id,
                purchase.stripe_object_id,
                delta,
            )
        if user_id is not None and any(r.kind == "dispute" for r in reversals):
            await self._refreeze(uow, user_id, shown, notes)

    async def _refreeze(
        self, uow: UnitOfWork, user_id: int, name: str | Msg, notes: _Notes
    ) -> None:
        """Frozen exactly while a dispute of the user's payments is open."""
        await uow.billing.lock(f"user:{user_id}")
        now = self.clock.now()
        want = await uow.billing.open_disputes(user_id) > 0
        await uow.ledger.ensure_account(user_id, now)
        account = await uow.ledger.account(user_id)
        assert account is not None
        if account.frozen == want:
            return
        await uow.ledger.set_frozen(user_id, want, now)
        if want:
            notes.add(user_id, msg("tg.pay.dispute_opened", name=name))
            log.info("account frozen user=%s (dispute open)", user_id)
        elif account.balance < 0:
            notes.add(user_id, msg("tg.pay.dispute_closed_paused"))
        else:
            notes.add(user_id, msg("tg.pay.dispute_closed"))

    async def _our_checkout(
        self,
        uow: UnitOfWork,
        ref: str | None,
        session_id: str | None,
        claimed_user_id: int | None,
    ) -> CheckoutRecord | None:
        """The checkout row that names the buyer; None for checkouts made elsewhere
        (another app on the same account), or whose user was erased."""
        row = await uow.billing.checkout(ref) if ref else None
        if row is None and session_id:
            row = await uow.billing.checkout_by_session(session_id)
        if row is None:
            return None
        if claimed_user_id is not None and claimed_user_id != row.user_id:
            log.warning("checkout %s: metadata names another user; ignored", row.ref[:12])
            return None
        return row

    def _name(self, purchase: PurchaseRecord) -> str:
        offer = self._offers.get(purchase.offer_id)
        return offer.name if offer else "your purchase"

    def _shown(self, purchase: PurchaseRecord) -> str | Msg:
        """The purchase as its buyer reads it (an offer no longer on sale: "your purchase")."""
        offer = self._offers.get(purchase.offer_id)
        return offer.name if offer else msg("tg.pay.your_purchase")


def _target(rev: ReversalRecord, purchase: PurchaseRecord) -> int:
    """The credits a reversal should have taken back from ``purchase`` in total."""
    if rev.kind == "dispute" and rev.status != "lost":
        return 0
    if rev.amount_minor <= 0:
        return 0
    base = rev.payment_amount_minor if rev.payment_amount_minor > 0 else purchase.amount_minor
    if base <= 0:
        return purchase.credits
    return min(purchase.credits, -(-purchase.credits * rev.amount_minor // base))


async def _balance(uow: UnitOfWork, user_id: int) -> int:
    account = await uow.ledger.account(user_id)
    return account.balance if account else 0


RAIL_CURRENCIES = frozenset({"xtr", "sku"})
"""Telegram Stars and Discord SKUs: amounts not shown as money in minor units."""


def _money(minor: int, currency: str) -> str:
    major = f"{minor / 100:.2f}"
    return f"${major}" if currency.lower() == "usd" else f"{major} {currency.upper()}"


def _text_failed(name: str) -> Msg:
    return msg("tg.pay.failed", name=name)


def _text_plan_ended(name: str) -> Msg:
    return msg("tg.pay.plan_ended", name=name)


def _period_note(head: str, name: str, until: datetime | None, credits: int, balance: int) -> Msg:
    """A plan period (or a rail payment) paid: ``head`` is the message, with ``_until``
    when the period's end is known."""
    args = {"name": name, "credits": msg("credits", count=credits), "balance": balance}
    if until is not None and head != "tg.pay.plan_payment" and head != "tg.pay.rail_received":
        return msg(head + "_until", date=f"{until:%Y-%m-%d}", **args)
    return msg(head, **args)


def _cancelled_note(name: str, end: datetime | None) -> Msg:
    """A plan cancelled at its period's end."""
    if end is not None:
        return msg("tg.pay.cancelled_on", name=name, date=f"{end:%Y-%m-%d}")
    return msg("tg.pay.cancelled", name=name)
