"""``imagebot stripe reconcile``: apply what lost webhooks missed.

Three passes over the last ``days`` (Stripe lists events for 30 days), all through the
same idempotent path as the webhook: recent events of the handled types, oldest first
(a processed event id is skipped); then completed Checkout Sessions and paid invoices,
applied by their own ids (a session or invoice already credited changes nothing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from payments.stripe.events import plain
from payments.stripe.gateway import StripeGateway
from payments.stripe.translate import HANDLED_EVENTS, checkout_change, timestamp


@dataclass
class ReconcileReport:
    """What one run looked at and what it applied."""

    events_seen: int = 0
    events_applied: int = 0
    sessions_seen: int = 0
    sessions_applied: int = 0
    invoices_seen: int = 0
    invoices_applied: int = 0

    def text(self) -> str:
        """One line for the operator."""
        return (
            f"events: {self.events_seen} seen, {self.events_applied} applied; "
            f"checkout sessions: {self.sessions_seen} seen, {self.sessions_applied} applied; "
            f"invoices: {self.invoices_seen} seen, {self.invoices_applied} applied"
        )


async def _all(listing: Any) -> AsyncIterator[dict[str, Any]]:
    async for item in listing.auto_paging_iter():
        yield plain(item)


async def reconcile(
    gateway: StripeGateway, *, days: int, now: datetime | None = None
) -> ReconcileReport:
    """Compare recent Stripe activity with the ledger and apply what is missing."""
    now = now or datetime.now(UTC)
    since = int((now - timedelta(days=days)).timestamp())
    client = gateway.client
    purchases = gateway.purchases
    report = ReconcileReport()

    # Chunks of 20: the most types one events request may name.
    events: list[dict[str, Any]] = []
    for start in range(0, len(HANDLED_EVENTS), 20):
        listing = await client.v1.events.list_async(
            params={
                "types": list(HANDLED_EVENTS[start : start + 20]),
                "created": {"gte": since},
                "limit": 100,
            }
        )
        events += [e async for e in _all(listing)]
    events.sort(key=lambda e: (e.get("created") or 0, str(e.get("id"))))
    for event in events:
        report.events_seen += 1
        outcome = await gateway.events.process(event)
        if outcome.applied:
            report.events_applied += 1
        await purchases.deliver(outcome)

    sessions = await client.v1.checkout.sessions.list_async(
        params={"status": "complete", "created": {"gte": since}, "limit": 100}
    )
    async for session in _all(sessions):
        report.sessions_seen += 1
        at = timestamp(session.get("created")) or now
        change = checkout_change(session, event_type="checkout.session.completed", at=at)
        if change is None or not (change.paid or change.mode == "subscription"):
            continue
        outcome = await purchases.apply(change)
        if outcome.applied:
            report.sessions_applied += 1
        await purchases.deliver(outcome)

    invoices = await client.v1.invoices.list_async(
        params={"status": "paid", "created": {"gte": since}, "limit": 100}
    )
    async for invoice in _all(invoices):
        report.invoices_seen += 1
        at = timestamp(invoice.get("created")) or now
        invoice_change = await gateway.events.invoice(invoice, at=at)
        if invoice_change is None:
            continue
        outcome = await purchases.apply(invoice_change)
        if outcome.applied:
            report.invoices_applied += 1
        await purchases.deliver(outcome)
    return report
