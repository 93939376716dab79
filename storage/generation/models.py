"""Provider lanes and the calls in flight in them, shared by every worker process."""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class ProviderLane(Base):
    """What one provider key and model allows, as learned from its answers."""

    __tablename__ = "provider_lanes"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    cap: Mapped[float] = mapped_column(Float)
    limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    refill_per_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    tokens: Mapped[float] = mapped_column(Float)
    refilled_at: Mapped[float] = mapped_column(Float)
    paused_until: Mapped[float] = mapped_column(Float)


class ProviderCall(Base):
    """A model call in flight, held by a worker until it ends or its lease runs out."""

    __tablename__ = "provider_calls"
    __table_args__ = (Index("ix_provider_calls_lane", "key", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[float] = mapped_column(Float)
