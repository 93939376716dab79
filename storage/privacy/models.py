"""Privacy tables: consents, privacy requests, feedback and support, the audit log.

Rows that must outlive an erasure (the request log, the audit log) reference the user
with ``ON DELETE SET NULL`` and carry ``subject_hash``, a keyed hash of the platform
identity, so they stay provable without naming the person.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, EncryptedText


class Consent(Base):
    """A user's switches (P03, P10, P11): all off until the user turns them on."""

    __tablename__ = "consents"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    training_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    product_updates: Mapped[bool] = mapped_column(Boolean, default=False)
    usage_analytics: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]


class PrivacyRequest(Base):
    """One privacy request: what was asked, when, the outcome, and any appeal (P12)."""

    __tablename__ = "privacy_requests"
    __table_args__ = (Index("ix_privacy_requests_subject", "subject_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    subject_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500), default="")
    received_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    appeal_text: Mapped[str | None] = mapped_column(EncryptedText)
    appeal_status: Mapped[str | None] = mapped_column(String(16))
    appealed_at: Mapped[datetime | None]


class FeedbackMessage(Base):
    """A /feedback or /support message and the operators' answer (P26)."""

    __tablename__ = "feedback_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime]
    reply_text: Mapped[str | None] = mapped_column(EncryptedText)
    replied_at: Mapped[datetime | None]


class AuditEntry(Base):
    """A decision by an operator or by the system, with who, what, whom, when and why."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    subject_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    subject_hash: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500), default="")
    details: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
