"""Alembic environment: migrations run on a connection handed in by storage.database."""

from __future__ import annotations

from alembic import context

from storage.schema import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through storage.database
    raise RuntimeError("run migrations with `imagebot migrate`")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
