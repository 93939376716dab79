"""The provider's bound is shared by worker processes: two ProviderCapacity objects, each
with its own engine on the same database (as two processes would have), keep to one
in-flight cap, one learned rate limit and one 429 pause per lane. Runs on SQLite and
PostgreSQL (row lock ``FOR UPDATE``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from core.generation.capacity import Permit, ProviderCapacity, RateSignal
from storage.database import Database
from storage.generation.capacity import SqlSharedLanes

KEY = "openai:gpt-image-2"


@pytest.fixture
async def other(database: Database) -> AsyncIterator[Database]:
    """A second engine on the same database: the other worker process."""
    second = Database(database.url, schema=database.schema)
    try:
        yield second
    finally:
        await second.dispose()


def capacity(db: Database, **kw: float) -> ProviderCapacity:
    return ProviderCapacity(
        ceiling=64,
        initial=3,
        shared=SqlSharedLanes(db),
        clock=time.time,
        lease_s=kw.get("lease_s", 900.0),
    )


async def blocked(cap: ProviderCapacity, wait: float = 0.4) -> bool:
    try:
        permit = await asyncio.wait_for(cap.acquire(KEY), wait)
    except TimeoutError:
        return True
    cap.release(permit)
    await cap.aclose()
    return False


async def test_the_in_flight_cap_is_shared_by_two_processes(
    database: Database, other: Database
) -> None:
    a, b = capacity(database), capacity(other)
    held: list[Permit] = [await a.acquire(KEY), await a.acquire(KEY), await b.acquire(KEY)]
    assert await blocked(b)  # three in flight across both: the slow start's cap
    assert await blocked(a)
    a.release(held.pop(0))  # not a success: the cap stays at three
    await a.aclose()
    permit = await asyncio.wait_for(b.acquire(KEY), 2)
    held.append(permit)
    assert await blocked(a)
    for p in held[:1]:
        a.release(p)
    for p in held[1:]:
        b.release(p)
    await a.aclose()
    await b.aclose()


async def test_a_429_in_one_process_pauses_the_other(database: Database, other: Database) -> None:
    a, b = capacity(database), capacity(other)
    permit = await a.acquire(KEY)
    a.observe(KEY, RateSignal(429, retry_after_s=30.0))
    a.release(permit)
    await a.aclose()
    assert await blocked(b)


async def test_the_learned_limit_is_shared(database: Database, other: Database) -> None:
    a, b = capacity(database), capacity(other)
    permit = await a.acquire(KEY)
    # The provider says: 5 a minute, none left for now.
    a.observe(KEY, RateSignal(200, limit=5, remaining=0, reset_s=60.0))
    permit.ok = True
    a.release(permit)
    await a.aclose()
    assert await blocked(b)
    assert b.lane(KEY).limit is None  # b never saw a header: it went by the shared row


async def test_a_dead_workers_calls_lapse_with_their_lease(
    database: Database, other: Database
) -> None:
    a = capacity(database, lease_s=0.3)
    b = capacity(other)
    for _ in range(3):
        await a.acquire(KEY)  # and the process dies: never released
    assert await blocked(b, 0.1)
    await asyncio.sleep(0.35)
    permit = await asyncio.wait_for(b.acquire(KEY), 3)
    b.release(permit)
    await b.aclose()
