"""Stripe: Checkout and the billing portal, the signed webhook, reconciliation."""
