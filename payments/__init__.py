"""Billing through Stripe Checkout (see the billing issue)."""
