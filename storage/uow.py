"""The unit of work: one session, one transaction, every repository."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from storage.billing.repository import SqlBillingRepository
from storage.database import Database
from storage.gallery.repository import SqlGalleryRepository
from storage.privacy.repository import SqlPrivacyRepository
from storage.privacy.retention import SqlRetentionRepository
from storage.repositories import SqlJobRepository, SqlLedgerRepository, SqlUserRepository
from storage.safety.repository import SqlSafetyRepository, SqlUpdateRepository

_IN_UNIT: contextvars.ContextVar[bool] = contextvars.ContextVar("imagebot_in_unit", default=False)


class SqlUnitOfWork:
    """One transaction across the repositories; rolled back unless :meth:`commit` ran.

    On SQLite every unit of work is a write transaction (``BEGIN IMMEDIATE``) and SQLite
    has one writer: units of work of one process take turns in arrival order on an
    asyncio lock instead of all polling SQLite's busy handler, which is not fair (with 64
    worker loops and a burst of submits, some waited out its 30 s). The busy timeout
    still orders this process against others."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.session: AsyncSession | None = None
        self._turn: asyncio.Lock | None = None
        self._entered: contextvars.Token[bool] | None = None

    async def __aenter__(self) -> Self:
        """Open a session; the transaction begins with the first statement."""
        turn = self._db.writer_turn()
        if turn is not None and not _IN_UNIT.get():
            await turn.acquire()
            self._turn = turn
            self._entered = _IN_UNIT.set(True)
        self.session = self._db.sessions()
        self.users = SqlUserRepository(self.session)
        self.ledger = SqlLedgerRepository(self.session)
        self.jobs = SqlJobRepository(self.session)
        self.billing = SqlBillingRepository(self.session)
        self.privacy = SqlPrivacyRepository(self.session)
        self.retention = SqlRetentionRepository(self.session)
        self.safety = SqlSafetyRepository(self.session)
        self.updates = SqlUpdateRepository(self.session)
        self.gallery = SqlGalleryRepository(self.session)
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Roll back anything not committed and close."""
        assert self.session is not None
        try:
            await self.session.rollback()
        finally:
            try:
                await self.session.close()
            finally:
                self.session = None
                if self._turn is not None:
                    assert self._entered is not None
                    _IN_UNIT.reset(self._entered)
                    self._turn.release()
                    self._turn = self._entered = None

    async def commit(self) -> None:
        """Commit the transaction."""
        assert self.session is not None
        await self.session.commit()


class SqlUnitOfWorkFactory:
    """Makes units of work on one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __call__(self) -> SqlUnitOfWork:
        """A fresh unit of work."""
        return SqlUnitOfWork(self.db)
