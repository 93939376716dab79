"""SQL implementation of the safety repository."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.safety.ports import ChatControlRecord, ReviewRecord, Standing
from storage.models import Job
from storage.repositories import dialect_insert
from storage.safety.models import ChatControl, RateBucket, ReviewItem, SeenUpdate, UserStanding

_buckets: Any = RateBucket.__table__
_t, _rate, _cap, _n = (bindparam(n, type_=Float()) for n in ("p_t", "p_rate", "p_cap", "p_n"))
_grown = _buckets.c.tokens + (_t - _buckets.c.updated_epoch) * _rate
_refilled = case((_grown > _cap, _cap), else_=_grown)
# Built once (bound parameters): the statement of every request's rate check.
_TAKE = (
    update(_buckets)
    .where(_buckets.c.key == bindparam("p_key"), _refilled >= _n)
    .values(tokens=_refilled - _n, updated_epoch=_t)
    .returning(_buckets.c.key)
)
_STANDING = select(*UserStanding.__table__.c).where(
    UserStanding.__table__.c.user_id == bindparam("p_user")
)


class SqlSafetyRepository:
    """Rate buckets, standing, review queue, chat controls."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def take_token(
        self, key: str, capacity: float, per_second: float, now: datetime, count: int = 1
    ) -> float:
        """Refill by elapsed time and take ``count`` tokens, in one conditional UPDATE.

        The database evaluates the refill under the row lock (PostgreSQL re-checks the
        WHERE clause after waiting; SQLite's unit of work holds the write lock), so
        processes sharing the database never both take the last token.
        """
        t = now.timestamp()
        params = {
            "p_key": key,
            "p_t": t,
            "p_rate": float(per_second),
            "p_cap": float(capacity),
            "p_n": float(count),
        }
        if (await self.s.execute(_TAKE, params)).first() is not None:
            return 0.0
        if count > capacity:
            return max(0.001, (count - capacity) / per_second)
        created = await self.s.execute(
            dialect_insert(self.s, RateBucket)
            .values(key=key, tokens=capacity - count, updated_epoch=t)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(RateBucket.key)
        )
        if created.first() is not None:
            return 0.0
        # Another process made the bucket meanwhile (its insert won; ours waited on it and
        # did nothing): now the row exists, so take from it like everyone else. Without
        # this, every process racing on a new bucket got a token for free.
        if (await self.s.execute(_TAKE, params)).first() is not None:
            return 0.0
        tokens, updated = (
            await self.s.execute(
                select(RateBucket.tokens, RateBucket.updated_epoch).where(RateBucket.key == key)
            )
        ).one()
        current = min(capacity, tokens + (t - updated) * per_second)
        # Nothing was taken, so never answer 0 ("taken"), even when clocks of two
        # processes disagree by a hair.
        return max(0.001, (count - current) / per_second)

    async def standing(self, user_id: int) -> Standing:
        """Strikes and bans."""
        row = (await self.s.execute(_STANDING, {"p_user": user_id})).first()
        if row is None:
            return Standing()
        return Standing(row.strikes, row.banned_until, row.banned_forever, row.ban_reason)

    async def save_standing(self, user_id: int, standing: Standing, now: datetime) -> None:
        """Replace the standing."""
        values = {
            "strikes": standing.strikes,
            "banned_until": standing.banned_until,
            "banned_forever": standing.banned_forever,
            "ban_reason": standing.ban_reason[:300],
            "updated_at": now,
        }
        await self.s.execute(
            dialect_insert(self.s, UserStanding)
            .values(user_id=user_id, **values)
            .on_conflict_do_update(index_elements=["user_id"], set_=values)
        )

    async def add_review(
        self,
        *,
        user_id: int,
        job_id: str,
        kind: str,
        categories: dict[str, Any],
        path: str | None,
        now: datetime,
    ) -> int:
        """Queue an item."""
        row = ReviewItem(
            user_id=user_id,
            job_id=job_id,
            kind=kind,
            categories=categories,
            path=path,
            status="open",
            created_at=now,
        )
        self.s.add(row)
        await self.s.flush()
        return row.id

    async def reviews(self, status: str, limit: int) -> list[ReviewRecord]:
        """Items by status, oldest first."""
        stmt = (
            select(ReviewItem)
            .where(ReviewItem.status == status)
            .order_by(ReviewItem.created_at, ReviewItem.id)
            .limit(limit)
        )
        return [_review(r) for r in (await self.s.execute(stmt)).scalars().all()]

    async def review(self, review_id: int) -> ReviewRecord | None:
        """One item."""
        row = await self.s.get(ReviewItem, review_id, populate_existing=True)
        return _review(row) if row else None

    async def decide_review(self, review_id: int, status: str, by: str, now: datetime) -> bool:
        """Close an open item."""
        result = await self.s.execute(
            update(ReviewItem)
            .where(ReviewItem.id == review_id, ReviewItem.status == "open")
            .values(status=status, decided_by=by[:80], decided_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def chat_control(self, platform: str, chat_id: str) -> ChatControlRecord:
        """A chat's switches."""
        row = await self.s.get(ChatControl, (platform, chat_id), populate_existing=True)
        if row is None:
            return ChatControlRecord()
        channels = tuple(str(c) for c in (row.allowed_channels or {}).get("ids", []))
        return ChatControlRecord(
            row.enabled, channels, row.daily_cap_per_member, row.requests_per_minute, row.language
        )

    async def save_chat_control(
        self, platform: str, chat_id: str, control: ChatControlRecord, now: datetime
    ) -> None:
        """Replace a chat's switches."""
        values = {
            "enabled": control.enabled,
            "allowed_channels": {"ids": list(control.allowed_channels)},
            "daily_cap_per_member": control.daily_cap_per_member,
            "requests_per_minute": control.requests_per_minute,
            "language": control.language,
            "updated_at": now,
        }
        await self.s.execute(
            dialect_insert(self.s, ChatControl)
            .values(platform=platform, chat_id=chat_id, **values)
            .on_conflict_do_update(index_elements=["platform", "chat_id"], set_=values)
        )

    async def jobs_today(self, user_id: int, platform: str, chat_id: str, since: datetime) -> int:
        """Jobs of a member in one chat since ``since`` (refused ones do not count)."""
        stmt = select(func.count()).where(
            Job.user_id == user_id,
            Job.platform == platform,
            Job.group_id == chat_id,
            Job.created_at >= since,
            Job.state != "rejected",
        )
        return int((await self.s.execute(stmt)).scalar_one())


class SqlUpdateRepository:
    """Platform update ids already handled."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def first_time(self, key: str, now: datetime) -> bool:
        """Record ``key``; True when no process recorded it before."""
        result = await self.s.execute(
            dialect_insert(self.s, SeenUpdate)
            .values(key=key[:80], seen_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(SeenUpdate.key)
        )
        return result.first() is not None


def _review(row: ReviewItem) -> ReviewRecord:
    return ReviewRecord(
        id=row.id,
        user_id=row.user_id,
        job_id=row.job_id,
        kind=row.kind,
        categories=dict(row.categories or {}),
        path=row.path,
        status=row.status,
        created_at=row.created_at,
    )
