"""The provider lanes in the database: one bound for every worker process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from core.generation.capacity import LaneState
from storage.database import Database
from storage.generation.models import ProviderCall, ProviderLane

T = TypeVar("T")

PRUNE_EVERY = 5.0
"""Seconds between deletions of a lane's lapsed calls (left by workers that died; the count
ignores them anyway, so the deletion is housekeeping, not part of every change)."""

_lanes: Any = ProviderLane.__table__
_calls: Any = ProviderCall.__table__
# Built once with bound parameters: every model call changes its lane twice.
_LANE = select(
    _lanes.c.cap,
    _lanes.c.limit,
    _lanes.c.refill_per_s,
    _lanes.c.tokens,
    _lanes.c.refilled_at,
    _lanes.c.paused_until,
).where(_lanes.c.key == bindparam("p_key"))
_LANE_LOCKED = _LANE.with_for_update()
_IN_FLIGHT = select(func.count()).where(
    _calls.c.key == bindparam("p_key"), _calls.c.expires_at > bindparam("p_now")
)
_SAVE_LANE = (
    update(_lanes)
    .where(_lanes.c.key == bindparam("p_key"))
    .values(
        cap=bindparam("p_cap"),
        limit=bindparam("p_limit"),
        refill_per_s=bindparam("p_refill"),
        tokens=bindparam("p_tokens"),
        refilled_at=bindparam("p_refilled"),
        paused_until=bindparam("p_paused"),
    )
)
_ADD_CALL = insert(_calls)
_REMOVE_CALL = delete(_calls).where(_calls.c.id == bindparam("p_id"))
_PRUNE = delete(_calls).where(
    _calls.c.key == bindparam("p_key"), _calls.c.expires_at <= bindparam("p_now")
)


class SqlSharedLanes:
    """Implements :class:`core.generation.capacity.SharedLanes` on PostgreSQL (the lane's
    row is locked with ``FOR UPDATE`` while it changes) and SQLite (one writer anyway)."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        self._known: set[str] = set()
        self._pruned: dict[str, float] = {}

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
        select_lane = _LANE if self._db.is_sqlite else _LANE_LOCKED
        async with self._db.engine.begin() as conn:
            if remove_call is not None:
                await conn.execute(_REMOVE_CALL, {"p_id": remove_call})
            row = (await conn.execute(select_lane, {"p_key": key})).first()
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
                row = (await conn.execute(select_lane, {"p_key": key})).first()
            assert row is not None
            state = LaneState(*row)
            # A statement of its own after the lock: on PostgreSQL it sees the calls that
            # the transaction holding the lock before us added.
            in_flight = (await conn.execute(_IN_FLIGHT, {"p_key": key, "p_now": now})).scalar_one()
            new, result = fn(state, int(in_flight))
            await conn.execute(
                _SAVE_LANE,
                {
                    "p_key": key,
                    "p_cap": new.cap,
                    "p_limit": new.limit,
                    "p_refill": new.refill_per_s,
                    "p_tokens": new.tokens,
                    "p_refilled": new.refilled_at,
                    "p_paused": new.paused_until,
                },
            )
            if add_call is not None and result == 0.0:
                call_id, lease = add_call
                call_row = {"id": call_id, "key": key, "expires_at": now + lease}
                await conn.execute(_ADD_CALL, call_row)
            # Calls of workers that died lapse with their lease.
            if now - self._pruned.get(key, float("-inf")) >= PRUNE_EVERY:
                await conn.execute(_PRUNE, {"p_key": key, "p_now": now})
                self._pruned[key] = now
        return result

    async def renew(self, call_ids: list[str], lease_s: float) -> None:
        """See :meth:`core.generation.capacity.SharedLanes.renew`."""
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(ProviderCall)
                .where(ProviderCall.id.in_(call_ids))
                .values(expires_at=self._clock() + lease_s)
            )
