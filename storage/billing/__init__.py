"""Billing tables and the SQL billing repository (accounts, plans, payment events)."""
