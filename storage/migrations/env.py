"""Alembic environment.

``imagebot migrate`` (storage.database) hands in an open connection and holds the lock
that keeps replicas from migrating at once. Run from the command line (``alembic
upgrade head``, ``alembic revision --autogenerate -m "..."`` at the repository root), it
opens its own connection to ``IMAGEBOT_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from storage.schema import Base

DEFAULT_URL = "sqlite+aiosqlite:///./data/imagebot.db"
target_metadata = Base.metadata


def run(connection: Connection) -> None:
    """Run the migrations Alembic was asked for on ``connection``."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_command_line() -> None:
    """Connect to ``IMAGEBOT_DATABASE_URL`` and migrate (the ``alembic`` command)."""
    url = os.environ.get("IMAGEBOT_DATABASE_URL", DEFAULT_URL)
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(run)
            await conn.commit()
    finally:
        await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    asyncio.run(run_from_command_line())
