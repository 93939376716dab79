"""Process-level locks: one worker process on SQLite, one scheduler on PostgreSQL."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import ConfigurationError
from storage.database import Database

# Advisory lock keys (any 64-bit number unique to imagebot's purposes).
SCHEDULER_LOCK = 0x1A6E_B07_5C4E


class SqliteWorkerLock:
    """An exclusive file lock beside the SQLite database, held while a worker runs.

    SQLite has one writer at a time, so imagebot runs one worker process on it; a second
    is refused with a clear message instead of fighting over the file. The lock goes
    with the process, so a killed worker never leaves it behind.
    """

    def __init__(self, database_url: str) -> None:
        db_path = make_url(database_url).database or "imagebot.db"
        self.path = Path(db_path).with_name(Path(db_path).name + ".worker.lock")
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise ConfigurationError."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise ConfigurationError(
                "Another imagebot worker is already running on this SQLite database. SQLite "
                "takes one worker process; stop the other one, or move to PostgreSQL "
                "(IMAGEBOT_DATABASE_URL=postgresql+asyncpg://...) to run several."
            ) from None
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        """Let go of the lock."""
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


class PostgresLeaderLock:
    """A session-level advisory lock held on a dedicated connection: whoever holds it
    leads (runs the scheduler); if its process dies, the server releases the lock."""

    def __init__(self, db: Database, key: int = SCHEDULER_LOCK) -> None:
        self.db = db
        self.key = key
        self._conn: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        """True when this process now holds the lock."""
        if self._conn is not None:
            return True
        conn = await self.db.engine.connect()
        try:
            got = await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
            if got.scalar_one():
                await conn.commit()
                self._conn = conn
                return True
        except Exception:
            await conn.close()
            raise
        await conn.close()
        return False

    async def release(self) -> None:
        """Give the lock up."""
        if self._conn is not None:
            try:
                await self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                await self._conn.commit()
            finally:
                await self._conn.close()
                self._conn = None


class DatabaseLocks:
    """The core's ProcessLocks port for one database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._worker = SqliteWorkerLock(db.url) if db.is_sqlite else None
        self._leader = None if db.is_sqlite else PostgresLeaderLock(db)

    async def hold_worker_slot(self) -> None:
        """SQLite: take the single worker slot or raise; PostgreSQL: any number may run."""
        if self._worker is not None:
            await asyncio.to_thread(self._worker.acquire)

    async def try_lead(self) -> bool:
        """Become the one scheduler (always true on SQLite, a single process)."""
        return True if self._leader is None else await self._leader.try_acquire()

    async def release(self) -> None:
        """Give up whatever this process holds."""
        if self._worker is not None:
            self._worker.release()
        if self._leader is not None:
            await self._leader.release()
