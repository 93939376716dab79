"""Billing: the credit ledger, offers, purchases and their ports."""

from __future__ import annotations

from core.billing.ledger import CreditLedger, CreditsService
from core.billing.offers import (
    DEFAULT_OFFERS,
    BillingDisabled,
    BillingService,
    CheckoutGateway,
    Offer,
    offers_on_rail,
    parse_offers,
    rail_report,
)
from core.billing.ports import (
    ENDED_PLAN_STATES,
    FINAL_DISPUTE_STATES,
    BillingRepository,
    CheckoutRecord,
    NewPurchase,
    PurchaseRecord,
    ReversalRecord,
    SubscriptionRecord,
)
from core.billing.purchases import (
    BillingChange,
    BillingOutcome,
    ChargeRefunded,
    CheckoutPaid,
    CheckoutTicket,
    DisputeChanged,
    InvoicePaid,
    OrderRefusal,
    PurchaseService,
    RailPaid,
    RailPlanChanged,
    RailRefunded,
    SubscriptionChanged,
    rail_id,
)
from core.billing.words import movements

__all__ = [
    "DEFAULT_OFFERS",
    "ENDED_PLAN_STATES",
    "FINAL_DISPUTE_STATES",
    "BillingChange",
    "BillingDisabled",
    "BillingOutcome",
    "BillingRepository",
    "BillingService",
    "ChargeRefunded",
    "CheckoutGateway",
    "CheckoutPaid",
    "CheckoutRecord",
    "CheckoutTicket",
    "CreditLedger",
    "CreditsService",
    "DisputeChanged",
    "InvoicePaid",
    "NewPurchase",
    "Offer",
    "OrderRefusal",
    "PurchaseRecord",
    "PurchaseService",
    "RailPaid",
    "RailPlanChanged",
    "RailRefunded",
    "ReversalRecord",
    "SubscriptionChanged",
    "SubscriptionRecord",
    "movements",
    "offers_on_rail",
    "parse_offers",
    "rail_id",
    "rail_report",
]
