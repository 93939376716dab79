"""SQLAlchemy 2 models: the whole schema of imagebot.

Every table that can hold data about a person names ``user_id`` (a foreign key to
``users``), so export and erasure can walk the schema instead of a hand-kept list.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite keeps naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EncryptedText(TypeDecorator[str]):
    """Text encrypted with the engine's data cipher when one is configured (P18).

    The cipher hangs on the engine's dialect (set by storage.database.Database), so each
    engine has its own and nothing global is needed; without one, text is stored plain.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        cipher = getattr(dialect, "imagebot_cipher", None)
        if value is None or cipher is None:
            return value
        return str(cipher.encrypt_text(value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        cipher = getattr(dialect, "imagebot_cipher", None)
        if value is None or cipher is None:
            return value
        return str(cipher.decrypt_text(value))


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (for Alembic)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Installation(Base):
    """Per-installation values (the pseudonymisation secret)."""

    __tablename__ = "installation"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class User(Base):
    """A person on one platform: the minimal profile of P01."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    locale: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    terms_version: Mapped[str | None] = mapped_column(String(32))
    terms_accepted_at: Mapped[datetime | None]
    age_confirmed_at: Mapped[datetime | None]


class AgeRefusal(Base):
    """A keyed hash of someone who said they are under 13: all that is kept of them (P15)."""

    __tablename__ = "age_refusals"
    marker: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime]


class UserSettings(Base):
    """A user's defaults for new jobs."""

    __tablename__ = "user_settings"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    size: Mapped[str | None] = mapped_column(String(16))
    quality: Mapped[str | None] = mapped_column(String(8))
    output_format: Mapped[str | None] = mapped_column(String(8))
    background: Mapped[str | None] = mapped_column(String(16))
    n: Mapped[int | None] = mapped_column(Integer)
    model: Mapped[str | None] = mapped_column(String(100), index=True)
    language: Mapped[str | None] = mapped_column(String(16))


class CreditAccount(Base):
    """Credits beside the ledger, changed in the same transaction as each ledger row.

    ``balance`` is what the user may spend (the sum of the ledger); ``held`` is what
    running jobs have reserved and not yet captured or released.
    """

    __tablename__ = "credit_accounts"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]


class LedgerEntry(Base):
    """One append-only credit movement; ``idempotency_key`` makes every movement once-only."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Kept after erasure for tax records, unlinked from the person (P08): SET NULL, and
    # ``subject_hash`` (a keyed hash) is filled in by the erasure.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    subject_hash: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    job_id: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]


class Job(Base):
    """One generation or edit, from received to a final state."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_queue", "state", "fair_seq", "created_at"),
        Index("ix_jobs_user_created", "user_id", "created_at"),
        Index("ix_jobs_finished", "state", "finished_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    prompt: Mapped[str] = mapped_column(EncryptedText)
    options: Mapped[dict[str, Any]]
    cost: Mapped[int] = mapped_column(Integer, default=0)
    fair_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    group_id: Mapped[str | None] = mapped_column(String(64))
    reply_target: Mapped[dict[str, Any]]
    parent_job_id: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    not_before: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class JobImage(Base):
    """A stored image of a job: a reference input, the mask, or an output."""

    __tablename__ = "job_images"
    __table_args__ = (UniqueConstraint("job_id", "role", "idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(8))
    idx: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
