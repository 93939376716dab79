"""Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from storage.database import Database
from storage.schema import Base


async def test_migrated_schema_matches_the_models(database: Database) -> None:
    async with database.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
        )
    assert diff == [], diff
    assert not await database.pending_migrations()


async def test_migrate_is_idempotent(database: Database) -> None:
    await database.migrate()
    await database.migrate()
    assert not await database.pending_migrations()


async def test_sqlite_runs_in_wal_with_secure_delete(sqlite_only: Database) -> None:
    async with sqlite_only.engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA secure_delete"))).scalar() == 1
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1


async def test_concurrent_migrations_wait_for_each_other(database: Database) -> None:
    """Containers starting together all migrate; none fails, the schema ends current."""
    others = [Database(database.url, schema=database.schema) for _ in range(3)]
    try:
        await asyncio.gather(*(db.migrate() for db in others))
        assert not await database.pending_migrations()
    finally:
        for db in others:
            await db.dispose()
