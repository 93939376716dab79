"""languages: a user's chosen language, a server's language for server-wide notices

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))
    with op.batch_alter_table("chat_controls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chat_controls", schema=None) as batch_op:
        batch_op.drop_column("language")
    with op.batch_alter_table("user_settings", schema=None) as batch_op:
        batch_op.drop_column("language")
