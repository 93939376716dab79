"""Safety tables: rate-limit buckets, strikes and bans, the review queue, chat controls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class RateBucket(Base):
    """A token bucket (per user, per chat): shared by every process through the database."""

    __tablename__ = "rate_buckets"
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    # Seconds since the epoch, so the refill is plain arithmetic in SQL on every database.
    updated_epoch: Mapped[float] = mapped_column(Float)


class UserStanding(Base):
    """Strikes and bans of a user (P17)."""

    __tablename__ = "user_standing"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    strikes: Mapped[int] = mapped_column(Integer, default=0)
    banned_until: Mapped[datetime | None]
    banned_forever: Mapped[bool] = mapped_column(Boolean, default=False)
    ban_reason: Mapped[str] = mapped_column(String(300), default="")
    updated_at: Mapped[datetime]


class ReviewItem(Base):
    """A withheld output or a flagged input waiting for an operator (approve or dismiss)."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_status", "status", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(24))
    categories: Mapped[dict[str, Any]]
    path: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_at: Mapped[datetime | None]


class ChatControl(Base):
    """Per-server or per-group switches set by that chat's own admins."""

    __tablename__ = "chat_controls"
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    allowed_channels: Mapped[dict[str, Any]]
    daily_cap_per_member: Mapped[int | None] = mapped_column(Integer)
    requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    language: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime]


class SeenUpdate(Base):
    """A platform update already taken (Telegram ``update_id``): replicas behind a load
    balancer, and redeliveries, never handle one twice."""

    __tablename__ = "seen_updates"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)
