"""Billing tables (Stripe customers, purchases, subscriptions, webhook events)."""

from __future__ import annotations
