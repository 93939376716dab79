"""ProviderCapacity: the provider's limits, memory and the operator's ceiling bound the
model calls in flight; the measured rate gives the ETA. Pure, with a hand-moved clock."""

from __future__ import annotations

import asyncio

import pytest

from core.generation.capacity import (
    MB,
    ProviderCapacity,
    RateSignal,
    memory_estimate,
    parse_duration,
)

KEY = "openai:gpt-image-2"


class Tick:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_openai_durations_and_headers_are_read() -> None:
    assert parse_duration("240ms") == pytest.approx(0.24)
    assert parse_duration("1s") == 1.0
    assert parse_duration("6m0s") == 360.0
    assert parse_duration("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_duration("7") == 7.0
    for junk in ("", None, "soon", "5x", "1s2", "-"):
        assert parse_duration(junk) is None
    signal = RateSignal.from_headers(
        429,
        {
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1s",
            "retry-after": "2",
            "retry-after-ms": "1500",
        },
    )
    assert (signal.limit, signal.remaining, signal.reset_s) == (60, 0, 1.0)
    assert signal.retry_after_s == 1.5  # the precise one wins, as in the SDK


def test_hostile_header_values_are_ignored() -> None:
    signal = RateSignal.from_headers(
        429,
        {
            "x-ratelimit-limit-requests": "-5",
            "x-ratelimit-remaining-requests": "1e30",
            "retry-after": "999999999",
        },
    )
    assert signal.limit is None and signal.remaining is None and signal.retry_after_s is None
    cap = ProviderCapacity(ceiling=8, initial=2, clock=Tick())
    cap.observe(KEY, signal)
    assert cap.lane(KEY).paused_until <= 1000.0 + 1.0  # the default one-second pause only


async def test_a_429_with_retry_after_pauses_the_lane_and_lowers_in_flight() -> None:
    clock = Tick()
    cap = ProviderCapacity(ceiling=64, initial=2, clock=clock)
    cap.observe(KEY, RateSignal(200, limit=100, remaining=99))
    permits = [await cap.acquire(KEY) for _ in range(20)]
    assert cap.limit(KEY) == 64 and cap.lane(KEY).in_flight == 20
    cap.observe(KEY, RateSignal(429, retry_after_s=5.0))
    assert cap.limit(KEY) == 10  # halved from the 20 in flight
    assert not cap.ready(KEY)  # over the lowered cap
    for permit in permits[:15]:
        cap.release(permit)
    assert cap.lane(KEY).in_flight == 5
    assert not cap.ready(KEY)  # paused for Retry-After
    clock.now += 5.1
    assert cap.ready(KEY)


async def test_headers_raise_in_flight_from_slow_start_and_pace_by_the_limit() -> None:
    clock = Tick()
    cap = ProviderCapacity(ceiling=64, initial=2, clock=clock)
    first = [await cap.acquire(KEY) for _ in range(2)]
    assert not cap.ready(KEY)  # slow start: the provider has said nothing yet
    cap.observe(KEY, RateSignal(200, limit=30, remaining=28, reset_s=4.0))
    assert cap.limit(KEY) == 30
    more = [await cap.acquire(KEY) for _ in range(28)]
    assert len(more) == 28
    for permit in first:
        permit.ok = True
        cap.release(permit)
    assert cap.limit(KEY) == 32  # +1 a success
    assert not cap.ready(KEY)  # the bucket is empty: 30 a minute, one every 2 s
    clock.now += 2.0
    assert cap.ready(KEY)
    for permit in more:
        permit.ok = True
        cap.release(permit)
    assert cap.limit(KEY) == 60  # up to the ceiling
    assert cap.lane(KEY).in_flight == 0


async def test_remaining_below_the_local_bucket_wins() -> None:
    clock = Tick()
    cap = ProviderCapacity(ceiling=64, initial=64, clock=clock)
    cap.observe(KEY, RateSignal(200, limit=60, remaining=60))
    # Another process with the same key spent most of it: the provider says 3 are left.
    cap.observe(KEY, RateSignal(200, limit=60, remaining=3))
    for _ in range(3):
        await cap.acquire(KEY)
    assert not cap.ready(KEY)


async def test_the_operator_ceiling_and_the_memory_budget_bound_every_lane() -> None:
    cap = ProviderCapacity(ceiling=3, initial=64, memory_budget=100 * MB, clock=Tick())
    a = await cap.acquire("openai:a", memory=20 * MB)
    b = await cap.acquire("openai:b", memory=20 * MB)
    assert cap.ready("openai:c", memory=20 * MB)
    assert not cap.ready("openai:c", memory=80 * MB)  # over the memory budget
    await cap.acquire("openai:c", memory=20 * MB)
    assert not cap.ready("openai:d")  # the ceiling, across lanes
    cap.release(a)
    cap.release(b)
    assert cap.ready("openai:d", memory=60 * MB)
    # One call always fits, whatever its size, or a huge job would never run.
    lone = ProviderCapacity(ceiling=3, memory_budget=10 * MB, clock=Tick())
    assert lone.ready(KEY, memory=10_000 * MB)
    assert 20 * MB < memory_estimate("1024x1024", 1) < 30 * MB
    assert memory_estimate("1536x1024", 2) > memory_estimate("1024x1024", 1)


async def test_waiters_wake_when_a_call_ends() -> None:
    cap = ProviderCapacity(ceiling=1, initial=1)
    held = await cap.acquire(KEY)
    waiter = asyncio.create_task(cap.acquire(KEY))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    cap.release(held)
    permit = await asyncio.wait_for(waiter, 1)
    assert permit.key == KEY


async def test_eta_of_a_busy_lane_at_its_limit() -> None:
    clock = Tick()
    cap = ProviderCapacity(ceiling=64, initial=64, clock=clock)
    assert cap.eta(KEY, 5) is None  # nothing measured: no promise
    cap.observe(KEY, RateSignal(200, limit=60, remaining=0))  # one a second
    # Twenty calls of 20 s each, finishing one a second: a busy lane.
    for _ in range(20):
        cap.lane(KEY).tokens = 1.0  # one more may start (the pacing is tested above)
        permit = await cap.acquire(KEY)
        permit.started = clock.now - 20.0
        permit.ok = True
        cap.release(permit)
        clock.now += 1.0
    lane = cap.lane(KEY)
    assert lane.call_s == pytest.approx(20.0, rel=0.05)
    assert cap.rate(KEY) == pytest.approx(1.0, rel=0.1)
    eta = cap.eta(KEY, 40)
    assert eta is not None
    assert 50 <= eta <= 65  # 20 s of call + about 40 places at one a second


def test_the_refill_rate_is_a_bound_the_rounded_headers_prove() -> None:
    # A 60-image bucket refilling ten a second, as its headers say it: whole tokens left,
    # the reset rounded up to whole seconds (milliseconds below one).
    cap = ProviderCapacity(ceiling=64, initial=64, clock=Tick())
    lane = cap.lane(KEY)
    cap.observe(KEY, RateSignal(200, limit=60, remaining=59, reset_s=0.06))
    assert lane.refill_per_s is None  # one call used: the headers prove nothing
    cap.observe(KEY, RateSignal(200, limit=60, remaining=35, reset_s=3.0))  # 2.43 s, up
    assert lane.refill_per_s == pytest.approx(24 / 3)  # 8: below 10, never above
    cap.observe(KEY, RateSignal(200, limit=60, remaining=0, reset_s=6.0))  # 5.93 s, up
    assert lane.refill_per_s == pytest.approx(59 / 6)  # the empty bucket makes it tight
    cap.observe(KEY, RateSignal(200, limit=60, remaining=40, reset_s=2.0))
    assert lane.refill_per_s == pytest.approx(59 / 6)  # the highest bound stays
    cap.observe(KEY, RateSignal(429, limit=60, remaining=0, reset_s=7.0, retry_after_s=0.1))
    assert lane.refill_per_s == pytest.approx(59 / 7)  # a 429: learnt again from it
    # Never below what the limit per window allows (60 a minute: one a second).
    slow = ProviderCapacity(ceiling=64, initial=64, clock=Tick())
    slow.observe(KEY, RateSignal(200, limit=60, remaining=57, reset_s=3.0))
    assert slow.lane(KEY).refill_per_s == pytest.approx(2 / 3)
    assert slow.rate(KEY) == 1.0


async def test_eta_counts_the_tokens_in_the_bucket_then_the_refill() -> None:
    clock = Tick()
    cap = ProviderCapacity(ceiling=64, initial=64, clock=clock)
    cap.observe(KEY, RateSignal(200, limit=60, remaining=60))  # one a second, 60 at once
    first = await cap.acquire(KEY)
    first.started, first.ok = clock.now - 20.0, True
    cap.release(first)  # calls take 20 s
    assert cap.eta(KEY, 1) == pytest.approx(20.0)
    assert cap.eta(KEY, 59) == pytest.approx(20.0)  # the bucket holds 59: all start now
    assert cap.eta(KEY, 70) == pytest.approx(20.0 + 11)  # 11 beyond it, one a second
    held = [await cap.acquire(KEY) for _ in range(59)]  # the bucket is empty
    assert len(held) == 59
    assert cap.eta(KEY, 1) == pytest.approx(21.0)
    assert cap.eta(KEY, 10) == pytest.approx(30.0)
    clock.now += 5.0  # five tokens back
    assert cap.eta(KEY, 5) == pytest.approx(20.0)
    assert cap.eta(KEY, 15) == pytest.approx(30.0)
    # A 429 pauses the lane: the pause comes first, then the refill.
    cap.observe(KEY, RateSignal(429, retry_after_s=3.0))
    assert cap.eta(KEY, 2) == pytest.approx(20.0 + 3.0 + 2.0)
    # No limit known: the measured finishing rate (here none yet: the modelled one).
    bare = ProviderCapacity(ceiling=4, initial=4, clock=clock)
    call = await bare.acquire(KEY)
    call.started, call.ok = clock.now - 2.0, True
    bare.release(call)
    assert bare.eta(KEY, 4) == pytest.approx(2.0)  # four places free
    assert bare.eta(KEY, 8) == pytest.approx(2.0 + 2.0)  # 4 beyond: 4 places, 2 s a call
