"""The provider lanes in the database: one bound for every worker process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from core.generation.capacity import LaneState
from storage.database import Database
from storage.generation.models import ProviderCall, ProviderLane

T = TypeVar("T")


class SqlSharedLanes:
    """Implements :class:`core.generation.capacity.SharedLanes` on PostgreSQL (the lane's
    row is locked with ``FOR UPDATE`` while it changes) and SQLite (one writer anyway)."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        self._known: set[str] = set()

    async def change(
        self,
        key: str,
        fn: Callable[[LaneState, int], tuple[LaneState, T]],
        initial: LaneState,
        *,
        add_call: tuple[str, float] | None = None,
        remove_call: str | None = None,
    ) -> T:
        """See :meth:`core.generation.capacity.SharedLanes.change`."""
        now = self._clock()
        lane = ProviderLane
        call = ProviderCall
        async with self._db.engine.begin() as conn:
            if remove_call is not None:
                await conn.execute(delete(call).where(call.id == remove_call))
            stmt = select(
                lane.cap,
                lane.limit,
                lane.refill_per_s,
                lane.tokens,
                lane.refilled_at,
                lane.paused_until,
            ).where(lane.key == key)
            if not self._db.is_sqlite:
                stmt = stmt.with_for_update()
            row = (await conn.execute(stmt)).first()
            if row is None:
                values = {"key": key, **vars(initial)}
                if self._db.is_sqlite:
                    await conn.execute(insert(lane).values(values).prefix_with("OR IGNORE"))
                else:
                    await conn.execute(
                        pg_insert(lane)
                        .values(values)
                        .on_conflict_do_nothing(index_elements=["key"])
                    )
                row = (await conn.execute(stmt)).first()
            assert row is not None
            state = LaneState(*row)
            in_flight = (
                await conn.execute(
                    select(func.count()).where(call.key == key, call.expires_at > now)
                )
            ).scalar_one()
            new, result = fn(state, int(in_flight))
            await conn.execute(update(lane).where(lane.key == key).values(**vars(new)))
            if add_call is not None and result == 0.0:
                call_id, lease = add_call
                await conn.execute(insert(call).values(id=call_id, key=key, expires_at=now + lease))
            # Calls of workers that died lapse with their lease.
            await conn.execute(delete(call).where(call.key == key, call.expires_at <= now))
        return result

    async def renew(self, call_ids: list[str], lease_s: float) -> None:
        """See :meth:`core.generation.capacity.SharedLanes.renew`."""
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(ProviderCall)
                .where(ProviderCall.id.in_(call_ids))
                .values(expires_at=self._clock() + lease_s)
            )
