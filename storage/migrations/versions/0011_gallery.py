"""gallery: sign-in links used once, web sessions

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gallery_sign_ins",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", storage.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", storage.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_gallery_sign_ins_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_gallery_sign_ins")),
    )
    with op.batch_alter_table("gallery_sign_ins", schema=None) as batch_op:
        batch_op.create_index("ix_gallery_sign_ins_expires", ["expires_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_gallery_sign_ins_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "gallery_sessions",
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", storage.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_gallery_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_hash", name=op.f("pk_gallery_sessions")),
    )
    with op.batch_alter_table("gallery_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_gallery_sessions_expires", ["expires_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_gallery_sessions_user_id"), ["user_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("gallery_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gallery_sessions_user_id"))
        batch_op.drop_index("ix_gallery_sessions_expires")
    op.drop_table("gallery_sessions")
    with op.batch_alter_table("gallery_sign_ins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gallery_sign_ins_user_id"))
        batch_op.drop_index("ix_gallery_sign_ins_expires")
    op.drop_table("gallery_sign_ins")
