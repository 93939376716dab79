"""Concurrency that follows the provider, through the real SDK against the OpenAI fake
with an images-per-window limit: 429 with Retry-After lowers the calls in flight, the
``x-ratelimit-*`` headers raise them, no job fails for it, and the ETA shown at submit
comes from the measured rate. Every job is charged exactly once (the ledger invariants
are checked after each test by the database fixture)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from core.app import Core
from core.types import Delivered, JobState
from storage.database import Database
from tests.fakes.notifier import RecordingNotifier
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import actor, make_core, request

KEY = "sk-test-capacity-0123456789"
LANE = "openai:gpt-image-2"


async def capacity_core(
    db: Database, tmp_path: Path, fake: FakeOpenAI, **settings: object
) -> tuple[Core, RecordingNotifier]:
    settings.setdefault("provider_max_retries", 3)
    settings.setdefault("moderate_prompts", False)
    settings.setdefault("moderate_outputs", False)
    return await make_core(
        db,
        tmp_path,
        image_provider="openai",
        openai_api_key=KEY,
        openai_base_url=fake.base_url,
        per_user_concurrency=4,
        **settings,
    )


class InFlight:
    """Samples the worker's calls in flight."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.peak = 0
        self.samples: list[int] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            now = self.core.worker.capacity.in_flight
            self.samples.append(now)
            self.peak = max(self.peak, now)
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def submit_many(core: Core, count: int, prefix: str) -> list[str]:
    ids = []
    for i in range(count):
        sub = await core.generation.submit(request(actor(f"{prefix}{i}")))
        ids.append(sub.job.id)
    return ids


async def all_final(core: Core, notes: RecordingNotifier, ids: list[str]) -> list[object]:
    return [await asyncio.wait_for(notes.wait_final(i), 30) for i in ids]


async def test_headers_raise_in_flight_above_the_slow_start(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    openai_fake.rate_limit(100, window=60.0)
    openai_fake.latency = 0.3
    core, notes = await capacity_core(database, tmp_path, openai_fake, worker_concurrency=16)
    ids = await submit_many(core, 16, "u")
    sampler = InFlight(core)
    try:
        assert core.worker.capacity.limit(LANE) == 4  # slow start: nothing known yet
        await core.worker.start(exclusive=True)
        finals = await all_final(core, notes, ids)
        assert all(isinstance(f, Delivered) for f in finals)
        lane = core.worker.capacity.lane(LANE)
        assert lane.limit == 100  # learned from x-ratelimit-limit-requests
        assert sampler.peak > 4  # the headers opened it up
        assert openai_fake.rate_limited == 0
    finally:
        await sampler.stop()
        await core.aclose()


async def test_the_operator_memory_budget_bounds_calls_the_provider_would_allow(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    # The provider allows 100 calls; IMAGEBOT_WORKER_MEMORY_MB=64 holds two 1024x1024
    # calls (≈ 24 MB reserved each), so a third waits for one to finish.
    openai_fake.rate_limit(100, window=60.0)
    openai_fake.latency = 0.2
    core, notes = await capacity_core(
        database, tmp_path, openai_fake, worker_concurrency=16, worker_memory_mb=64
    )
    assert core.worker.capacity.memory_budget == 64 * 2**20
    ids = await submit_many(core, 10, "m")
    sampler = InFlight(core)
    try:
        await core.worker.start(exclusive=True)
        finals = await all_final(core, notes, ids)
        assert all(isinstance(f, Delivered) for f in finals)
        assert core.worker.capacity.lane(LANE).limit == 100  # the provider would allow more
        assert sampler.peak == 2
    finally:
        await sampler.stop()
        await core.aclose()


async def test_429_with_retry_after_lowers_in_flight_and_no_job_fails(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    # Three images a 1.2 s window (one every 0.4 s, wide enough that a loaded machine's
    # scheduling jitter does not look like overrunning): the slow start's four calls do.
    openai_fake.rate_limit(3, window=1.2)
    openai_fake.latency = 0.1
    core, notes = await capacity_core(database, tmp_path, openai_fake, worker_concurrency=16)
    ids = await submit_many(core, 12, "v")
    try:
        await core.worker.start(exclusive=True)
        finals = await all_final(core, notes, ids)
        assert all(isinstance(f, Delivered) for f in finals)  # 429s were waited out
        lane = core.worker.capacity.lane(LANE)
        assert openai_fake.rate_limited >= 1
        assert lane.throttled == openai_fake.rate_limited  # every 429 was seen, retries too
        assert lane.limit == 3
        # After the first 429 the bucket paced the starts: at most the slow start's overrun
        # (and its retries) was refused.
        assert openai_fake.rate_limited <= 4
        # Each job's call was accepted once (the fake's own bucket decides which calls it
        # accepts, so how they are spread in time says nothing about our pacing: the
        # refusals counted above do).
        assert len(openai_fake.accepted_at) == 12
        await core.worker.stop()  # the last one may still be marking itself succeeded
        async with core.worker._uow() as uow:
            states = await uow.jobs.count_by_state()
        assert states.get(JobState.SUCCEEDED.value) == 12
    finally:
        await core.aclose()


async def test_429_lowers_the_cap_of_a_running_worker(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    openai_fake.rate_limit(100, window=60.0)
    openai_fake.latency = 0.2
    core, notes = await capacity_core(database, tmp_path, openai_fake, worker_concurrency=16)
    try:
        await core.worker.start(exclusive=True)
        first = await submit_many(core, 8, "w")
        await all_final(core, notes, first)
        assert core.worker.capacity.limit(LANE) == 16
        openai_fake.fail_next(
            429,
            code="rate_limit_exceeded",
            type="requests",
            headers={"retry-after-ms": "300"},
            times=2,
        )
        second = await submit_many(core, 8, "x")
        finals = await all_final(core, notes, second)
        assert all(isinstance(f, Delivered) for f in finals)
        lane = core.worker.capacity.lane(LANE)
        assert lane.throttled == 2
        # A success raises the cap by one and never above the ceiling (16), so without a
        # decrease it would still be exactly 16 here. Each 429 halves it to at most half
        # the calls then in flight (8 jobs and a claiming loop or two), and the second
        # batch's 8 successes cannot climb all the way back.
        assert lane.cap < 16
        assert core.worker.capacity.limit(LANE) < 16
    finally:
        await core.aclose()


async def test_eta_is_shown_at_submit_from_the_measured_rate(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    openai_fake.rate_limit(600, window=60.0)  # ten a second
    openai_fake.latency = 0.2
    core, notes = await capacity_core(database, tmp_path, openai_fake, worker_concurrency=16)
    try:
        sub = await core.generation.submit(request(actor("first")))
        assert sub.job.eta_seconds is None  # nothing measured yet: no promise
        await core.worker.start(exclusive=True)
        await all_final(core, notes, [sub.job.id])
        await all_final(core, notes, await submit_many(core, 8, "y"))
        await core.worker.stop()
        later = [await core.generation.submit(request(actor(f"z{i}"))) for i in range(30)]
        etas = [s.job.eta_seconds for s in later]
        assert all(e is not None for e in etas)
        assert etas[0] is not None and etas[-1] is not None
        assert 0.1 <= etas[0] <= 1.0  # about one call's time
        # Later places wait longer; how much longer is the benchmark's business.
        assert etas == sorted(etas) and etas[-1] > etas[0]
        assert etas[-1] < 10
        positions = [s.job.queue_position for s in later]
        assert positions == list(range(1, 31))
        await core.worker.start(exclusive=True)
        await all_final(core, notes, [s.job.id for s in later])
    finally:
        await core.aclose()
