"""welcome marks: a keyed hash per platform account that received the welcome credits

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "welcome_marks",
        sa.Column("mark", sa.String(length=64), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mark", name=op.f("pk_welcome_marks")),
    )
    with op.batch_alter_table("welcome_marks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_welcome_marks_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("welcome_marks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_welcome_marks_created_at"))
    op.drop_table("welcome_marks")
