"""Operator actions across areas, each one audited."""

from __future__ import annotations

from core.admin.service import AdminService, NotAnOperator, UserSummary

__all__ = [
    "AdminService",
    "NotAnOperator",
    "UserSummary",
]
