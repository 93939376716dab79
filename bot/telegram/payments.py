"""Telegram Stars: the rail Telegram asks bots to sell digital goods on.

A thin translator into ``core.billing.PurchaseService``: invoices for packs
(``sendInvoice``, currency ``XTR``, empty provider token, one price), invoice links for
plans (``createInvoiceLink`` with a 30-day ``subscription_period``), the pre-checkout
answer (fast, and ``ok=false`` with a reason for anything we would not sell), the
payment (granted once per ``telegram_payment_charge_id``, however often it is delivered
and by whichever replica), refunds (``refunded_payment``), ``/paysupport``, and
cancelling a plan from ``/billing`` (``editUserStarSubscription``).

The invoice payload is ``<order reference>:<offer id>``: the reference is opaque (a hash
kept in our table with the buyer), so the platform user id never travels in it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from telegram import Bot, LabeledPrice, Message, TransactionPartnerUser, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.telegram import callbacks as cb
from bot.telegram import keyboards, render
from bot.telegram.press import Answer, Press
from bot.telegram.replies import PLATFORM, actor_of, gate, log_failure, reply
from bot.telegram.runtime import Runtime, runtime
from bot.telegram.transport import AiohttpRequest
from core.app import Core
from core.billing import (
    BillingOutcome,
    Offer,
    PurchaseService,
    RailPaid,
    RailPlanChanged,
    RailRefunded,
    rail_id,
)
from core.errors import ConfigurationError, InvalidRequest
from core.i18n import msg
from core.settings import Settings

log = logging.getLogger("imagebot.telegram.stars")

Context = ContextTypes.DEFAULT_TYPE
RAIL: Literal["telegram"] = "telegram"
SUBSCRIPTION_PERIOD = 2592000
"""The only period Telegram accepts for Stars subscriptions (30 days)."""
CURRENCY = "XTR"


def sells_stars(rt: Runtime) -> bool:
    """True when Telegram users pay in Stars (``stars`` or ``both``)."""
    return rt.core.settings.telegram_payments in ("stars", "both")


def sells_cards(rt: Runtime) -> bool:
    """True when Telegram users may also pay through Stripe links (and Stripe is set up)."""
    return rt.core.settings.telegram_payments in ("stripe", "both") and rt.core.billing.enabled


def _purchases(rt: Runtime) -> PurchaseService:
    purchases = rt.core.billing.purchases
    assert purchases is not None
    return purchases


def payload_of(ref: str, offer_id: str) -> str:
    """The invoice payload: an opaque order reference and the offer (at most 97 bytes)."""
    return f"{ref}:{offer_id}"


def parse_payload(payload: str | None) -> tuple[str, str] | None:
    """(reference, offer id) from a payload we made; None for anything else."""
    if not payload or len(payload.encode()) > 128:
        return None
    ref, sep, offer_id = payload.partition(":")
    if not sep or len(ref) != 32 or not offer_id:
        return None
    try:
        int(ref, 16)
    except ValueError:
        return None
    return ref, offer_id


# --- /buy, /subscribe: the invoice ---------------------------------------------------------------


async def buy_stars(rt: Runtime, press: Press) -> Answer:
    """A Stars invoice (packs) or subscription link (plans) for one offer."""
    offer = rt.core.billing.offer(press.data.arg)
    if offer.stars is None or not sells_stars(rt):
        raise InvalidRequest(msg("tg.offer_gone"))
    user = await rt.core.users.register(press.actor)
    key = f"{press.message.chat.id}:{press.message.message_id}:{press.query.id}"
    ref = await _purchases(rt).open_order(user.id, offer, rail=RAIL, request_key=key)
    chat_id = press.message.chat.id
    title, description = render.stars_invoice(offer)
    prices = [LabeledPrice(offer.name[:32], offer.stars)]
    payload = payload_of(ref, offer.id)
    if offer.kind == "pack":
        await rt.outbox.call(
            chat_id,
            lambda: rt.bot.send_invoice(
                chat_id=chat_id,
                title=title,
                description=description,
                payload=payload,
                currency=CURRENCY,
                prices=prices,
                # Stars take an empty provider token or none; PTB's ExtBot sends an empty
                # string as "[]", which Telegram refuses, so it is left out.
                provider_token=None,
            ),
        )
    else:
        link = await rt.bot.create_invoice_link(
            title=title,
            description=description,
            payload=payload,
            currency=CURRENCY,
            prices=prices,
            provider_token=None,
            subscription_period=SUBSCRIPTION_PERIOD,
        )
        await reply(
            rt,
            press.message,
            render.stars_subscription_text(offer),
            keyboards.link(render.stars_subscribe_button(offer), link),
        )
    log.info("stars invoice sent offer=%s order=%s", offer.id, ref[:8])
    return Answer()


# --- pre-checkout: answered at once --------------------------------------------------------------


async def pre_checkout(update: Update, context: Context) -> None:
    """Answer a ``pre_checkout_query`` within Telegram's 10 seconds; nothing is granted here."""
    query = update.pre_checkout_query
    if query is None:
        return
    rt = runtime(context)
    reason: str | None = "unknown"
    try:
        parsed = parse_payload(query.invoice_payload)
        if parsed is not None:
            reason, _ = await _purchases(rt).check_order(
                parsed[0],
                parsed[1],
                platform=PLATFORM,
                platform_user_id=str(query.from_user.id),
                amount=query.total_amount,
                currency=query.currency,
            )
    except Exception as exc:  # refuse rather than let the payment through unchecked
        log_failure("pre-checkout", exc, update.update_id)
        reason = "error"
    try:
        if reason is None:
            await query.answer(ok=True)
        else:
            log.info("pre-checkout refused: %s", reason)
            await query.answer(ok=False, error_message=render.stars_refusal(reason))
    except TelegramError as exc:
        log_failure("pre-checkout answer", exc, update.update_id)


# --- the payment, refunds ------------------------------------------------------------------------


async def successful_payment(update: Update, context: Context) -> None:
    """A Stars payment arrived: grant once per charge id, then the receipt (by the notifier)."""
    message = update.effective_message
    if message is None or message.successful_payment is None:
        return
    rt = runtime(context)
    paid = message.successful_payment
    try:
        change = await _payment_change(
            _purchases(rt),
            charge_id=paid.telegram_payment_charge_id,
            payload=paid.invoice_payload,
            amount=paid.total_amount,
            currency=paid.currency,
            expires=paid.subscription_expiration_date,
            recurring=bool(paid.is_recurring),
            first=bool(paid.is_first_recurring) or not paid.is_recurring,
        )
        if change is None:
            log.warning("stars payment for no order of ours; update %s", update.update_id)
            await reply(rt, message, render.stars_unknown_payment())
            return
        outcome = await _purchases(rt).apply(change)
        await _purchases(rt).deliver(outcome)
    except Exception as exc:
        # The update is redelivered only while the bot has not confirmed it; reconcile
        # (imagebot stars reconcile) picks up whatever is still missing.
        log_failure("stars payment", exc, update.update_id)
        raise


async def _payment_change(
    purchases: PurchaseService,
    *,
    charge_id: str,
    payload: str,
    amount: int,
    currency: str,
    expires: datetime | int | None,
    recurring: bool,
    first: bool,
) -> RailPaid | None:
    parsed = parse_payload(payload)
    if parsed is None or not charge_id:
        return None
    ref, offer_id = parsed
    order = await purchases.order(ref)
    if order is None or order.offer_id != offer_id:
        return None
    period_end: datetime | None
    period_end = datetime.fromtimestamp(expires, UTC) if isinstance(expires, int) else expires
    plan = order.kind == "plan"
    if plan and first:
        # The subscription is known by its first charge (editUserStarSubscription).
        await purchases.checkout_made(ref, rail_id(RAIL, charge_id), "")
    return RailPaid(
        rail=RAIL,
        payment_id=charge_id,
        user_id=order.user_id,
        offer_id=offer_id,
        amount=amount,
        currency=currency,
        plan_id=ref if plan else None,
        period_end=period_end if plan or recurring else None,
        first_period=first,
    )


async def refunded_payment(update: Update, context: Context) -> None:
    """Telegram reports a refund: the credits go back once (the balance may go negative)."""
    message = update.effective_message
    if message is None or message.refunded_payment is None:
        return
    rt = runtime(context)
    refunded = message.refunded_payment
    outcome = await _purchases(rt).apply(
        RailRefunded(
            rail=RAIL,
            payment_id=refunded.telegram_payment_charge_id,
            amount=refunded.total_amount,
            currency=refunded.currency,
        )
    )
    await _purchases(rt).deliver(outcome)


# --- /paysupport, /billing -----------------------------------------------------------------------


async def paysupport_command(update: Update, context: Context) -> None:
    """``/paysupport``: how to get help with a payment, and a refund."""
    message = update.effective_message
    if message is None:
        return
    rt = runtime(context)
    await reply(rt, message, render.paysupport_text())


async def stars_billing(rt: Runtime, update: Update, message: Message) -> bool:
    """``/billing`` for Stars: the plan and a button to cancel it; False when there is no
    Stars plan to show (the caller falls back to Stripe's portal)."""
    user = await rt.core.users.register(actor_of(update.effective_user))  # type: ignore[arg-type]
    plan = await _purchases(rt).rail_plans(user.id)
    if plan is None or not plan.subscription_id.startswith(f"{RAIL}:"):
        if sells_cards(rt):
            return False
        await reply(rt, message, render.stars_no_plan_text())
        return True
    owner = message.chat.id
    markup = None if plan.cancel_at_period_end else keyboards.stars_cancel(owner, plan.offer_id)
    await reply(rt, message, render.stars_plan_text(plan), markup)
    return True


async def cancel_plan(rt: Runtime, press: Press) -> Answer:
    """Cancel the presser's Stars plan at the end of its period (Telegram stops renewing)."""
    user = await rt.core.users.register(press.actor)
    purchases = _purchases(rt)
    plan = await purchases.rail_plans(user.id)
    if plan is None or not plan.subscription_id.startswith(f"{RAIL}:"):
        raise InvalidRequest(render.stars_nothing_to_cancel())
    ref = plan.subscription_id.split(":", 1)[1]
    order = await purchases.order(ref)
    if order is None or order.user_id != user.id or not order.session_id:
        raise InvalidRequest(render.stars_nothing_to_cancel())
    charge_id = order.session_id.split(":", 1)[1]
    if not plan.cancel_at_period_end:
        try:
            await rt.bot.edit_user_star_subscription(
                user_id=press.query.from_user.id,
                telegram_payment_charge_id=charge_id,
                is_canceled=True,
            )
        except BadRequest as exc:
            if "NOT_MODIFIED" not in str(exc).upper():
                raise
        outcome = await purchases.apply(
            RailPlanChanged(
                rail=RAIL,
                plan_id=ref,
                status="active",
                cancel_at_period_end=True,
                period_end=plan.current_period_end,
                at=rt.core.clock.now(),
            )
        )
        await purchases.deliver(outcome)
    return Answer(render.stars_cancelled_alert())


async def offers_keyboard(rt: Runtime, owner: int, kind: Literal["pack", "plan"]) -> Any:
    """The /buy or /subscribe buttons: Stars offers, plus card links in ``both`` mode."""
    stars = rt.core.billing.on_rail(kind, "stars") if sells_stars(rt) else ()
    cards = rt.core.billing.offers(kind) if sells_cards(rt) else ()
    return keyboards.stars_offers(owner, stars, cards)


def offers_for_text(rt: Runtime, kind: Literal["pack", "plan"]) -> tuple[list[Offer], bool]:
    """The offers the /buy text lists, and whether prices are in Stars."""
    if sells_stars(rt):
        return list(rt.core.billing.on_rail(kind, "stars")), True
    return list(rt.core.billing.offers(kind)), False


async def guarded_offers(rt: Runtime, update: Update, message: Message, command: str) -> None:
    """``/buy`` and ``/subscribe`` when Stars are on sale."""
    if not await gate(rt, update):
        return
    kind: Literal["pack", "plan"] = "plan" if command == "subscribe" else "pack"
    offers, in_stars = offers_for_text(rt, kind)
    owner = update.effective_user.id  # type: ignore[union-attr]
    await reply(
        rt,
        message,
        render.stars_offers_text(kind, offers, in_stars=in_stars),
        await offers_keyboard(rt, owner, kind),
    )


# --- operator tools: refund, reconcile (imagebot stars …) ----------------------------------------


def make_bot(settings: Settings) -> Bot:
    """A Bot API client for the operator's commands (the token is the adapter's)."""
    if settings.telegram_token is None:
        raise ConfigurationError("IMAGEBOT_TELEGRAM_TOKEN is not set")
    kwargs: dict[str, Any] = {}
    if settings.telegram_api_url:
        root = settings.telegram_api_url.rstrip("/")
        kwargs = {"base_url": f"{root}/bot", "base_file_url": f"{root}/file/bot"}
    return Bot(settings.telegram_token.get_secret_value(), request=AiohttpRequest(), **kwargs)


@dataclass
class StarsReport:
    """What an operator command did."""

    seen: int = 0
    paid: int = 0
    refunded: int = 0
    skipped: int = 0

    def text(self) -> str:
        """One line for the operator."""
        return (
            f"stars transactions: {self.seen} seen, {self.paid} payments applied, "
            f"{self.refunded} refunds applied, {self.skipped} not ours"
        )


async def refund_stars(core: Core, bot: Bot, charge_id: str) -> BillingOutcome:
    """Refund a Stars payment at Telegram (``refundStarPayment``) and take its credits back
    (once: a refund already made at Telegram, or already applied, changes nothing more)."""
    purchases = core.billing.purchases
    assert purchases is not None
    purchase = await purchases.purchase_by_rail(RAIL, charge_id)
    if purchase is None:
        raise InvalidRequest(msg("tg.stars_no_such_charge"))
    who = await purchases.platform_user(purchase.user_id)
    if who is None or who[0] != PLATFORM:
        raise InvalidRequest(msg("tg.stars_buyer_erased"))
    try:
        await bot.refund_star_payment(user_id=int(who[1]), telegram_payment_charge_id=charge_id)
    except BadRequest as exc:
        if "ALREADY_REFUNDED" not in str(exc).upper():
            raise
    outcome = await purchases.apply(
        RailRefunded(
            rail=RAIL, payment_id=charge_id, amount=purchase.amount_minor, currency=CURRENCY
        )
    )
    await purchases.deliver(outcome)
    return outcome


async def reconcile_stars(core: Core, bot: Bot, *, days: int) -> StarsReport:
    """Walk ``getStarTransactions`` over the last ``days`` and apply what lost updates
    missed (payments and refunds), through the same idempotent path as the updates."""
    purchases = core.billing.purchases
    assert purchases is not None
    since = core.clock.now().timestamp() - days * 86400
    report = StarsReport()
    offset = 0
    while True:
        page = await bot.get_star_transactions(offset=offset, limit=100)
        items = list(page.transactions)
        offset += len(items)
        for tx in items:
            if tx.date.timestamp() < since:
                continue
            report.seen += 1
            source, receiver = tx.source, tx.receiver
            if isinstance(source, TransactionPartnerUser) and source.invoice_payload:
                expires = None
                period = source.subscription_period
                if period:
                    seconds = period if isinstance(period, int) else int(period.total_seconds())
                    expires = int(tx.date.timestamp()) + seconds
                change = await _payment_change(
                    purchases,
                    charge_id=tx.id,
                    payload=source.invoice_payload,
                    amount=tx.amount,
                    currency=CURRENCY,
                    expires=expires,
                    recurring=bool(source.subscription_period),
                    first=await purchases.order_is_new(source.invoice_payload.split(":", 1)[0]),
                )
                if change is None:
                    report.skipped += 1
                    continue
                outcome = await purchases.apply(change)
                report.paid += int(outcome.applied)
                await purchases.deliver(outcome)
            elif isinstance(receiver, TransactionPartnerUser):
                outcome = await purchases.apply(
                    RailRefunded(rail=RAIL, payment_id=tx.id, amount=tx.amount, currency=CURRENCY)
                )
                report.refunded += int(outcome.applied)
                await purchases.deliver(outcome)
            else:
                report.skipped += 1
        if len(items) < 100:
            break
    return report


BUTTONS = {cb.BUY_STARS: buy_stars, cb.STARS_CANCEL: cancel_plan}

__all__ = [
    "BUTTONS",
    "StarsReport",
    "cancel_plan",
    "guarded_offers",
    "make_bot",
    "paysupport_command",
    "pre_checkout",
    "reconcile_stars",
    "refund_stars",
    "refunded_payment",
    "stars_billing",
    "successful_payment",
]
