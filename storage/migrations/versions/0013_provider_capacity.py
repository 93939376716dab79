"""provider lanes and calls in flight, shared by worker processes

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_lanes",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("cap", sa.Float(), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=True),
        sa.Column("refill_per_s", sa.Float(), nullable=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refilled_at", sa.Float(), nullable=False),
        sa.Column("paused_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_provider_lanes")),
    )
    op.create_table(
        "provider_calls",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_calls")),
    )
    op.create_index("ix_provider_calls_lane", "provider_calls", ["key", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_provider_calls_lane", table_name="provider_calls")
    op.drop_table("provider_calls")
    op.drop_table("provider_lanes")
