"""Privacy storage: consents, requests, feedback, audit, and the schema walks behind
export and erasure.

Export and erasure do not keep a list of tables: they walk ``Base.metadata`` for every
column that references ``users.id``, so a table added later is covered without editing
this module (the tests walk the real schema the same way).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.privacy.ports import ConsentRecord, FeedbackRecord, PrivacyRequestRecord
from storage.privacy.models import AuditEntry, Consent, FeedbackMessage, PrivacyRequest
from storage.repositories import dialect_insert
from storage.schema import Base


def user_columns() -> list[tuple[Table, str, str | None]]:
    """Every (table, column, on-delete rule) that references ``users.id``."""
    found = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            for fk in column.foreign_keys:
                if fk.column.table.name == "users" and fk.column.name == "id":
                    found.append((table, column.name, fk.ondelete))
    return found


def _plain(value: Any) -> Any:
    """A JSON-friendly value."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


class SqlPrivacyRepository:
    """Consents, privacy requests, feedback, audit, export and erasure."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    # --- consents --------------------------------------------------------------------------

    async def consents(self, user_id: int) -> ConsentRecord:
        """The user's switches; all off when never set."""
        row = await self.s.get(Consent, user_id, populate_existing=True)
        if row is None:
            return ConsentRecord(False, False, False, None)
        return ConsentRecord(
            row.training_opt_in, row.product_updates, row.usage_analytics, row.updated_at
        )

    async def set_consent(self, user_id: int, name: str, value: bool, now: datetime) -> None:
        """Change one switch."""
        if name not in ("training_opt_in", "product_updates", "usage_analytics"):
            raise ValueError(name)
        stmt = (
            dialect_insert(self.s, Consent)
            .values(
                user_id=user_id,
                training_opt_in=False,
                product_updates=False,
                usage_analytics=False,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["user_id"])
        )
        await self.s.execute(stmt)
        await self.s.execute(
            update(Consent)
            .where(Consent.user_id == user_id)
            .values({name: value, "updated_at": now})
        )

    async def users_with_consent(self, name: str, after_id: int, limit: int) -> list[int]:
        """Ids of users who turned ``name`` on, in id order (paged)."""
        column = getattr(Consent, name)
        stmt = (
            select(Consent.user_id)
            .where(column.is_(True), Consent.user_id > after_id)
            .order_by(Consent.user_id)
            .limit(limit)
        )
        return list((await self.s.execute(stmt)).scalars().all())

    # --- requests --------------------------------------------------------------------------

    async def add_request(
        self,
        *,
        user_id: int | None,
        subject_hash: str,
        kind: str,
        status: str,
        reason: str,
        now: datetime,
        completed: bool,
    ) -> int:
        """Log a privacy request; returns its id."""
        row = PrivacyRequest(
            user_id=user_id,
            subject_hash=subject_hash,
            kind=kind,
            status=status,
            reason=reason[:500],
            received_at=now,
            completed_at=now if completed else None,
        )
        self.s.add(row)
        await self.s.flush()
        return row.id

    async def requests_for(self, subject_hash: str) -> list[PrivacyRequestRecord]:
        """Every request of one person, newest first (also after erasure)."""
        stmt = (
            select(PrivacyRequest)
            .where(PrivacyRequest.subject_hash == subject_hash)
            .order_by(PrivacyRequest.id.desc())
            .execution_options(populate_existing=True)
        )
        return [_request(r) for r in (await self.s.execute(stmt)).scalars().all()]

    async def appeal(self, request_id: int, subject_hash: str, text_: str, now: datetime) -> bool:
        """Record an appeal against a refused request of this person."""
        result = await self.s.execute(
            update(PrivacyRequest)
            .where(
                PrivacyRequest.id == request_id,
                PrivacyRequest.subject_hash == subject_hash,
                PrivacyRequest.status == "refused",
            )
            .values(appeal_text=text_[:2000], appeal_status="open", appealed_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def open_appeals(self) -> list[PrivacyRequestRecord]:
        """Appeals operators have not decided yet."""
        stmt = (
            select(PrivacyRequest)
            .where(PrivacyRequest.appeal_status == "open")
            .order_by(PrivacyRequest.appealed_at)
        )
        return [_request(r) for r in (await self.s.execute(stmt)).scalars().all()]

    async def request(self, request_id: int) -> tuple[PrivacyRequestRecord, int | None] | None:
        """One request and the id of the user it belongs to (None once erased)."""
        row = await self.s.get(PrivacyRequest, request_id, populate_existing=True)
        return None if row is None else (_request(row), row.user_id)

    async def decide_appeal(self, request_id: int, decision: str) -> bool:
        """Close an open appeal; the condition on ``open`` makes a second decision (a
        double click, two operators at once) change nothing."""
        result = await self.s.execute(
            update(PrivacyRequest)
            .where(PrivacyRequest.id == request_id, PrivacyRequest.appeal_status == "open")
            .values(appeal_status=decision)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    # --- feedback ----------------------------------------------------------------------------

    async def add_feedback(self, user_id: int, kind: str, text_: str, now: datetime) -> int:
        """Store a /feedback or /support message."""
        row = FeedbackMessage(user_id=user_id, kind=kind, text=text_, created_at=now)
        self.s.add(row)
        await self.s.flush()
        return row.id

    async def feedback(self, message_id: int) -> FeedbackRecord | None:
        """One message."""
        row = await self.s.get(FeedbackMessage, message_id, populate_existing=True)
        return _feedback(row) if row else None

    async def reply_feedback(self, message_id: int, text_: str, now: datetime) -> None:
        """Record the operators' answer."""
        await self.s.execute(
            update(FeedbackMessage)
            .where(FeedbackMessage.id == message_id)
            .values(reply_text=text_, replied_at=now)
        )

    # --- audit ---------------------------------------------------------------------------------

    async def audit(
        self,
        *,
        actor: str,
        action: str,
        subject_user_id: int | None,
        subject_hash: str | None,
        reason: str,
        details: dict[str, Any],
        now: datetime,
    ) -> None:
        """Append to the audit log."""
        self.s.add(
            AuditEntry(
                actor=actor[:80],
                action=action[:40],
                subject_user_id=subject_user_id,
                subject_hash=subject_hash,
                reason=reason[:500],
                details=details,
                created_at=now,
            )
        )
        await self.s.flush()

    # --- the schema walks ------------------------------------------------------------------

    async def rows_for_user(self, user_id: int) -> dict[str, list[dict[str, Any]]]:
        """Every row of every table that references the user, plus the user row itself."""
        from storage.models import User

        result: dict[str, list[dict[str, Any]]] = {}
        users = Base.metadata.tables[User.__tablename__]
        rows = (await self.s.execute(select(users).where(users.c.id == user_id))).mappings()
        result["users"] = [{k: _plain(v) for k, v in r.items()} for r in rows]
        for table, column, _ in user_columns():
            stmt = select(table).where(table.c[column] == user_id)
            if "id" in table.c:
                stmt = stmt.order_by(table.c.id)
            rows = (await self.s.execute(stmt)).mappings()
            result.setdefault(table.name, []).extend(
                {k: _plain(v) for k, v in r.items()} for r in rows
            )
        return result

    async def erase_user(self, user_id: int, subject_hash: str) -> dict[str, int]:
        """Delete the user and everything that cascades; rows kept for tax or proof (their
        reference is ``ON DELETE SET NULL``) get the keyed hash instead of the user id.

        Returns how many rows each table lost or had unlinked.
        """
        from storage.models import User

        counts: dict[str, int] = {}
        for table, column, ondelete in user_columns():
            where = table.c[column] == user_id
            n = int(
                (
                    await self.s.execute(select(func.count()).select_from(table).where(where))
                ).scalar_one()
            )
            if not n:
                continue
            counts[table.name] = counts.get(table.name, 0) + n
            if ondelete == "SET NULL":
                values: dict[str, Any] = {column: None}
                if "subject_hash" in table.c:
                    values["subject_hash"] = subject_hash
                if "note" in table.c:
                    values["note"] = ""
                await self.s.execute(update(table).where(where).values(values))
        await self.s.execute(delete(User).where(User.id == user_id))
        counts["users"] = 1
        return counts


def _request(row: PrivacyRequest) -> PrivacyRequestRecord:
    return PrivacyRequestRecord(
        id=row.id,
        kind=row.kind,
        status=row.status,
        reason=row.reason,
        received_at=row.received_at,
        completed_at=row.completed_at,
        appeal_status=row.appeal_status,
        appeal_text=row.appeal_text,
    )


def _feedback(row: FeedbackMessage) -> FeedbackRecord:
    return FeedbackRecord(
        id=row.id,
        user_id=row.user_id,
        kind=row.kind,
        text=row.text,
        created_at=row.created_at,
        reply_text=row.reply_text,
        replied_at=row.replied_at,
    )
