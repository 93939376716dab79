"""The unit of work: one session, one transaction, every repository."""

from __future__ import annotations

from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from storage.billing.repository import SqlBillingRepository
from storage.database import Database
from storage.gallery.repository import SqlGalleryRepository
from storage.privacy.repository import SqlPrivacyRepository
from storage.privacy.retention import SqlRetentionRepository
from storage.repositories import SqlJobRepository, SqlLedgerRepository, SqlUserRepository
from storage.safety.repository import SqlSafetyRepository, SqlUpdateRepository


class SqlUnitOfWork:
    """One transaction across the repositories; rolled back unless :meth:`commit` ran."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        """Open a session; the transaction begins with the first statement."""
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
            await self.session.close()
            self.session = None

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
