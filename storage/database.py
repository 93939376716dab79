"""The database: one async engine per process, SQLite or PostgreSQL, and its migrations."""

from __future__ import annotations

import asyncio
import logging
import weakref
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from core.crypto import DataCipher

log = logging.getLogger("imagebot.storage")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x1A6E_B07_0001


class Database:
    """An engine and a session factory for ``url``; ``schema`` selects a PostgreSQL schema."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = 10,
        cipher: DataCipher | None = None,
    ) -> None:
        self.url = url
        self.schema = schema
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            db_path = parsed.database
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["pool_pre_ping"] = True
            if schema:
                kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        # Encrypted columns find the cipher on their engine's dialect (storage.models).
        self.engine.dialect.imagebot_cipher = cipher  # type: ignore[attr-defined]
        if self.is_sqlite:
            _tune_sqlite(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def writer_turn(self) -> asyncio.Lock | None:
        """On SQLite, the lock by which this process's units of work take their turn as
        the one writer (per event loop); None on PostgreSQL."""
        if not self.is_sqlite:
            return None
        loop = asyncio.get_running_loop()
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = asyncio.Lock()
        return turn

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return "sqlite" if self.is_sqlite else "postgresql"

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                # Every container migrates on start: one at a time, the rest then find
                # the schema current. The lock goes with the transaction.
                await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            await conn.run_sync(_upgrade)

    async def readiness(self) -> str | None:
        """None when the database answers and its schema is current, else the problem."""
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except Exception as exc:
            return f"database unreachable ({type(exc).__name__})"
        if await self.pending_migrations():
            return "database schema is behind: run imagebot migrate"
        return None

    async def pending_migrations(self) -> bool:
        """True when the schema is behind the newest migration."""
        async with self.engine.connect() as conn:
            current = await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        return current != head

    async def checkpoint(self) -> None:
        """SQLite: fold the write-ahead log into the database file and empty it, so erased
        values do not linger in the log (``secure_delete`` already zeroed them in pages)."""
        if not self.is_sqlite:
            return
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    async def reencrypt(self, batch: int = 500) -> int:
        """Rewrite every encrypted column under the current key (``imagebot keys rotate``);
        returns how many values were rewritten."""
        from sqlalchemy import select, update

        from storage.models import EncryptedText
        from storage.schema import Base

        cipher = getattr(self.engine.dialect, "imagebot_cipher", None)
        if cipher is None:
            raise RuntimeError("no encryption key configured")
        done = 0
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, EncryptedText)]
            if not columns:
                continue
            pk = next(iter(table.primary_key.columns))
            last = None
            while True:
                async with self.sessions() as session, session.begin():
                    stmt = select(pk, *columns).order_by(pk).limit(batch)
                    if last is not None:
                        stmt = stmt.where(pk > last)
                    rows = (await session.execute(stmt)).all()
                    for row in rows:
                        values = {c.name: row[i + 1] for i, c in enumerate(columns)}
                        await session.execute(update(table).where(pk == row[0]).values(values))
                        done += 1
                if len(rows) < batch:
                    break
                last = rows[-1][0]
        return done

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(_alembic_config(connection), "head")


def _tune_sqlite(engine: AsyncEngine) -> None:
    """WAL, secure_delete and immediate write transactions for SQLite.

    pysqlite opens transactions lazily (DEFERRED), so two connections that read and then
    write deadlock into SQLITE_BUSY without waiting; every unit of work therefore starts
    with BEGIN IMMEDIATE, which waits on the busy timeout instead. ``secure_delete``
    overwrites erased rows so deleted prompts do not linger in free pages.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA secure_delete=ON")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def run_migrations_sync(url: str) -> None:
    """Migrate from synchronous code (the CLI)."""

    async def go() -> None:
        db = Database(url)
        try:
            await db.migrate()
        finally:
            await db.dispose()

    asyncio.run(go())
