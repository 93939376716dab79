"""How many model calls may be in flight: what the provider allows, not a fixed pool.

:class:`ProviderCapacity` bounds the calls a worker starts, per provider key and model
("lane"), by four things at once:

- the provider's rate limit, learned from its answers: ``x-ratelimit-limit-requests`` /
  ``-remaining-requests`` / ``-reset-requests`` give the limit per window and what is left
  (a local token bucket mirrors the provider's, and never holds more than it reported);
  a 429 with ``Retry-After`` pauses the lane for that long and halves its in-flight cap;
- an in-flight cap per lane that starts small while the limit is unknown (slow start),
  grows by one per successful call, and is halved by a 429 (additive increase,
  multiplicative decrease);
- a memory budget: each call reserves an estimate of the bytes it will hold (its images
  decoded, encoded and screened), and calls wait while the budget is spent;
- the operator's ceiling, ``IMAGEBOT_WORKER_CONCURRENCY``.

The provider reports what it saw through :func:`report_response` (called by the HTTP
client's response hook for every attempt, retries included); the calling task's lane is
found through a context variable that :meth:`ProviderCapacity.slot` sets. The queue's ETA
(:meth:`eta`) comes from the bucket's tokens, its refill rate and the call time of the
lane (the measured finishing rate while the limit is unknown).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

MB = 1024 * 1024
BYTES_PER_MEGAPIXEL = 24 * MB
"""Memory a call holds per megapixel of output while in flight (the answer's base64, the
decoded image, the screening request): measured ≈20 MB for one 1024x1024 PNG."""


def parse_duration(text: str | None) -> float | None:
    """OpenAI's reset durations (``240ms``, ``1s``, ``6m0s``, ``1h2m3.5s``) in seconds."""
    if not text:
        return None
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text:
        return None
    return sum(float(value) * _UNITS[unit] for value, unit in parts)


@dataclass(frozen=True, slots=True)
class RateSignal:
    """What one provider answer said about its limits."""

    status: int
    limit: int | None = None
    remaining: int | None = None
    reset_s: float | None = None
    retry_after_s: float | None = None

    @classmethod
    def from_headers(cls, status: int, headers: Mapping[str, str]) -> RateSignal:
        """Read the ``x-ratelimit-*-requests`` and ``retry-after(-ms)`` headers."""

        def integer(name: str) -> int | None:
            value = headers.get(name)
            if value is None:
                return None
            try:
                number = int(float(value))
            except ValueError:
                return None
            return number if 0 <= number < 10**9 else None

        retry: float | None = None
        ms = headers.get("retry-after-ms")
        if ms is not None:
            with contextlib.suppress(ValueError):
                retry = float(ms) / 1000
        if retry is None:
            retry = parse_duration(headers.get("retry-after"))
        if retry is not None and not (0 <= retry <= 3600):
            retry = None
        return cls(
            status=status,
            limit=integer("x-ratelimit-limit-requests"),
            remaining=integer("x-ratelimit-remaining-requests"),
            reset_s=parse_duration(headers.get("x-ratelimit-reset-requests")),
            retry_after_s=retry,
        )


def _refill_floor(signal: RateSignal) -> float | None:
    """The lowest refill rate (calls a second) one answer's headers allow, or None.

    OpenAI's ``reset`` is the time until the bucket is full again, so the rate is
    ``(limit - tokens) / reset``; but ``remaining`` is the whole tokens left (``tokens <
    remaining + 1``) and a reset of a second or more comes rounded up to whole seconds
    (below one, in milliseconds). Reading them as exact under- or over-estimates the rate
    by up to a sixth (a 60-a-minute limit read as 50 to 70): ``(limit - remaining - 1) /
    reset`` is a bound the true rate is never below. The lane keeps the highest bound seen,
    which an empty bucket (remaining 0, reset ≈ limit / rate) makes tight."""
    if signal.limit is None or signal.remaining is None or not signal.reset_s:
        return None
    used = signal.limit - signal.remaining - 1
    if used < 1:
        return None
    whole_seconds = signal.reset_s >= 1 and signal.reset_s == int(signal.reset_s)
    return used / (signal.reset_s if whole_seconds else signal.reset_s + 0.0005)


@dataclass
class _Lane:
    """One provider key and model."""

    cap: float
    limit: int | None = None
    tokens: float = 0.0
    refilled: float = 0.0
    paused_until: float = 0.0
    in_flight: int = 0
    throttled: int = 0
    finished: deque[float] = field(default_factory=lambda: deque(maxlen=200))
    call_s: float | None = None
    refill_per_s: float | None = None
    """The highest refill rate the headers prove (:func:`_refill_floor`), since the last
    429; never below ``limit / window``."""


@dataclass
class LaneState:
    """A lane as the worker processes share it (see :class:`SharedLanes`)."""

    cap: float
    limit: int | None
    refill_per_s: float | None
    tokens: float
    refilled_at: float
    paused_until: float


class SharedLanes(Protocol):
    """Lanes kept in the database, so every worker process keeps to one bound."""

    async def change(
        self,
        key: str,
        fn: Callable[[LaneState, int], tuple[LaneState, T]],
        initial: LaneState,
        *,
        add_call: tuple[str, float] | None = None,
        remove_call: str | None = None,
    ) -> T:
        """In one transaction with the lane locked: call ``fn(state, calls in flight)``
        (``initial`` for a new lane), store the state it returns, and, when its result is
        ``0.0``, record ``add_call`` (id, lease seconds); drop ``remove_call``. Returns
        the result of ``fn``."""
        ...

    async def renew(self, call_ids: list[str], lease_s: float) -> None:
        """Extend the leases of these calls (the worker's heartbeat)."""
        ...


@dataclass
class Permit:
    """One call's place in a lane, held while the call runs."""

    key: str
    images: int
    memory: int
    started: float
    ok: bool = False
    call_id: str = ""


_current: ContextVar[tuple[ProviderCapacity, Permit] | None] = ContextVar(
    "imagebot_capacity", default=None
)


def report_response(status: int, headers: Mapping[str, str]) -> None:
    """Tell the capacity of the calling task's lane what the provider answered (a no-op
    outside :meth:`ProviderCapacity.slot`)."""
    current = _current.get()
    if current is not None:
        capacity, permit = current
        capacity.observe(permit.key, RateSignal.from_headers(status, headers), permit.started)


class ProviderCapacity:
    """Model calls in flight, bounded by the provider, memory and the operator (see the
    module docstring). One per worker process."""

    def __init__(
        self,
        *,
        ceiling: int = 64,
        memory_budget: int | None = None,
        window: float = 60.0,
        initial: int = 2,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedLanes | None = None,
        lease_s: float = 900.0,
    ) -> None:
        """``window``: the period the provider's limit is counted over (OpenAI: a minute);
        ``initial``: calls let through per lane before the provider said anything;
        ``shared``: the lanes' state in the database, for several worker processes (then
        ``clock`` must be wall time, and a call's place lapses after ``lease_s``)."""
        self.ceiling = max(1, ceiling)
        self.memory_budget = memory_budget
        self.window = window
        self.initial = max(1, initial)
        self._clock = clock
        self._lanes: dict[str, _Lane] = {}
        self._in_flight = 0
        self._memory = 0
        self._changed = asyncio.Event()
        self.shared = shared
        self.lease_s = lease_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: set[str] = set()

    # --- reading ------------------------------------------------------------------------------

    def lane(self, key: str) -> _Lane:
        """The state of one lane (created on first use)."""
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(cap=float(min(self.initial, self.ceiling)))
        return lane

    def limit(self, key: str) -> int:
        """Calls the lane may have in flight now (cap, ceiling and memory aside)."""
        return max(1, min(self.ceiling, math.floor(self.lane(key).cap)))

    @property
    def in_flight(self) -> int:
        """Calls in flight in this process, every lane."""
        return self._in_flight

    def rate(self, key: str) -> float | None:
        """Calls per second the lane can finish: measured over the last window from calls
        that ended while the lane was at its bound (the provider's rate or the cap), else
        what the learned limit and the call time allow; None if unknown."""
        lane = self.lane(key)
        now = self._clock()
        recent = [t for t in lane.finished if t > now - self.window]
        measured = None
        if len(recent) >= 5 and now - recent[0] > 0:
            measured = (
                (len(recent) - 1) / (recent[-1] - recent[0]) if recent[-1] > recent[0] else None
            )
        modelled = None
        if lane.call_s:
            modelled = self.limit(key) / lane.call_s
            if lane.limit:
                modelled = min(modelled, self._per_s(lane))
        elif lane.limit:
            modelled = self._per_s(lane)
        return measured or modelled

    def eta(self, key: str, position: int) -> float | None:
        """Seconds until a job at queue ``position`` (1 = next) is finished, or None while
        the lane has no measurement yet.

        With a known limit the job starts once ``position`` tokens have come: now if the
        bucket holds them, else after ``(position - tokens) / refill rate`` (a lane
        paused by a 429 first waits out the pause), and once a place in flight is free
        (``limit`` calls end every call time); it ends a call time later. Without a known
        limit, the measured finishing rate stands for both."""
        lane = self.lane(key)
        if lane.call_s is None:
            return None
        now = self._clock()
        places = self.limit(key)
        free = max(0, places - lane.in_flight)
        by_places = max(0, position - free) * lane.call_s / places
        if lane.limit is None:
            rate = self.rate(key)
            if rate is None:
                return None
            return lane.call_s + max(0, position - free) / rate
        self._refill(lane, now)
        tokens = max(0.0, lane.tokens)
        by_tokens = max(0.0, position - tokens) / self._per_s(lane)
        paused = max(0.0, lane.paused_until - now)
        return lane.call_s + max(by_places, paused + by_tokens)

    # --- waiting and running --------------------------------------------------------------------

    def _per_s(self, lane: _Lane) -> float:
        assert lane.limit is not None
        return max(lane.refill_per_s or 0.0, lane.limit / self.window)

    def _refill(self, lane: _Lane, now: float) -> None:
        if lane.limit is None:
            return
        lane.tokens = min(
            float(lane.limit), lane.tokens + (now - lane.refilled) * self._per_s(lane)
        )
        lane.refilled = now

    def _wait_s(self, lane: _Lane, images: int, memory: int) -> float | None:
        """0 when a call may start now; else seconds to wait (None: until a call ends)."""
        now = self._clock()
        if self._in_flight >= self.ceiling or lane.in_flight >= self.limit_of(lane):
            return None
        if (
            self.memory_budget is not None
            and self._in_flight > 0
            and self._memory + memory > self.memory_budget
        ):
            return None
        if lane.paused_until > now:
            return lane.paused_until - now
        if lane.limit is not None:
            self._refill(lane, now)
            if lane.tokens < images:
                return (images - lane.tokens) / self._per_s(lane)
        return 0.0

    def limit_of(self, lane: _Lane) -> int:
        return max(1, min(self.ceiling, math.floor(lane.cap)))

    def _local_full(self, memory: int) -> bool:
        return self._in_flight >= self.ceiling or (
            self.memory_budget is not None
            and self._in_flight > 0
            and self._memory + memory > self.memory_budget
        )

    async def _wait_local(self, memory: int) -> None:
        while self._local_full(memory):
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 1.0)

    def ready(self, key: str, images: int = 1, memory: int = 0) -> bool:
        """Whether a call could start in the lane now."""
        return self._wait_s(self.lane(key), images, memory) == 0.0

    async def wait_ready(self, key: str, images: int = 1, memory: int = 0) -> None:
        """Wait until a call could start in the lane (without taking the place)."""
        lane = self.lane(key)
        while True:
            self._changed.clear()  # waiters already woken stay woken
            wait = self._wait_s(lane, images, memory)
            if wait == 0.0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait if wait is not None else 1.0)

    async def acquire(self, key: str, images: int = 1, memory: int = 0) -> Permit:
        """Wait for a place in the lane and take it (tokens, in-flight, memory)."""
        lane = self.lane(key)
        call_id = ""
        if self.shared is not None:
            # The lane's bound lives in the database, shared with the other processes;
            # this process keeps to its ceiling and memory budget.
            call_id = secrets.token_hex(12)
            while True:
                await self._wait_local(memory)
                # Reserved here before the round trip (no await since the check), so that
                # calls asking at the same time cannot all pass the same local check.
                self._in_flight += 1
                self._memory += memory
                try:
                    wait = await self._shared_take(key, call_id, images)
                except BaseException:
                    self._unreserve(memory)
                    raise
                if wait == 0.0:
                    break
                self._unreserve(memory)
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._changed.wait(), min(wait if wait is not None else 1.0, 1.0)
                    )
            lane.in_flight += 1
            self._held.add(call_id)
            return Permit(key, images, memory, self._clock(), call_id=call_id)
        await self.wait_ready(key, images, memory)  # returns with no await after its check
        if lane.limit is not None:
            lane.tokens -= images
        lane.in_flight += 1
        self._in_flight += 1
        self._memory += memory
        return Permit(key, images, memory, self._clock())

    def _unreserve(self, memory: int) -> None:
        self._in_flight -= 1
        self._memory -= memory
        self._changed.set()

    def release(self, permit: Permit) -> None:
        """The call ended: free its place; a successful call grows the lane's cap."""
        lane = self.lane(permit.key)
        now = self._clock()
        # A call that ends while the lane is at its bound measures its throughput.
        self._refill(lane, now)
        busy = lane.in_flight >= self.limit_of(lane) or (lane.limit is not None and lane.tokens < 1)
        lane.in_flight -= 1
        self._in_flight -= 1
        self._memory -= permit.memory
        if self.shared is not None and permit.call_id:
            self._held.discard(permit.call_id)
            self._background(self._shared_give_back(permit.key, permit.call_id, permit.ok))
        if permit.ok:
            if busy:
                lane.finished.append(now)
            else:  # the lane had room: its busy stretch (if any) is over
                lane.finished.clear()
            took = now - permit.started
            lane.call_s = took if lane.call_s is None else 0.8 * lane.call_s + 0.2 * took
            lane.cap = min(float(self.ceiling), lane.cap + 1.0)
        self._changed.set()

    def adjust(self, permit: Permit, images: int, memory: int) -> None:
        """The job turned out to want ``images`` images and ``memory`` bytes: charge the
        difference (tokens may go below zero: later calls wait for them)."""
        lane = self.lane(permit.key)
        if lane.limit is not None and images > permit.images:
            lane.tokens -= images - permit.images
        self._memory += memory - permit.memory
        permit.images, permit.memory = images, memory

    @contextlib.contextmanager
    def reporting(self, permit: Permit) -> Iterator[None]:
        """Within this block :func:`report_response` reports to ``permit``'s lane."""
        token = _current.set((self, permit))
        try:
            yield
        finally:
            _current.reset(token)

    @contextlib.asynccontextmanager
    async def slot(self, key: str, images: int = 1, memory: int = 0) -> AsyncIterator[Permit]:
        """Hold a place for one call; :func:`report_response` inside it reports to it."""
        permit = await self.acquire(key, images, memory)
        try:
            with self.reporting(permit):
                yield permit
        finally:
            self.release(permit)

    # --- learning ---------------------------------------------------------------------------------

    def observe(self, key: str, signal: RateSignal, sent_at: float | None = None) -> None:
        """Learn from one provider answer (any attempt, retries included); ``sent_at``:
        when the call started, as the provider counted it then."""
        lane = self.lane(key)
        if signal.status == 429:
            lane.throttled += 1
        self._learn(lane, signal, self._clock(), sent_at)
        if self.shared is not None:
            self._background(self._shared_learn(key, signal))
        self._changed.set()

    def _learn(
        self, lane: _Lane, signal: RateSignal, now: float, sent_at: float | None = None
    ) -> None:
        if signal.limit is not None and signal.limit > 0:
            if lane.limit is None:
                lane.tokens = float(signal.limit)
                lane.refilled = now
                # The limit is known: the bucket paces starts, the cap may open up.
                lane.cap = max(lane.cap, float(min(self.ceiling, signal.limit)))
            lane.limit = signal.limit
            self._refill(lane, now)
            floor = _refill_floor(signal)
            if signal.status == 429:
                lane.refill_per_s = floor  # it paced too fast: learn the rate again
            elif floor is not None and (lane.refill_per_s is None or floor > lane.refill_per_s):
                lane.refill_per_s = floor
        if signal.remaining is not None and lane.limit is not None:
            # The count is as of when the provider took the request. Ageing it by the call's
            # time was tried (remaining + elapsed x rate): with a refill rate estimated from
            # rounded headers it overshot small limits into 429s, and gained nothing
            # measurable in bench_provider_limit.py, so the stale count stands (cautious).
            lane.tokens = min(lane.tokens, float(signal.remaining))
        if signal.status == 429:
            pause = signal.retry_after_s if signal.retry_after_s is not None else 1.0
            lane.paused_until = max(lane.paused_until, now + pause)
            lane.cap = max(1.0, min(lane.cap, float(lane.in_flight)) / 2)
            if lane.limit is not None:
                lane.tokens = min(lane.tokens, 0.0)

    # --- shared by worker processes (PostgreSQL) ----------------------------------------------

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def renew(self) -> None:
        """Keep this process's places in the shared lanes (a dead process's lapse after
        ``lease_s``); call it more often than that."""
        if self.shared is not None and self._held:
            await self.shared.renew(sorted(self._held), self.lease_s)

    async def aclose(self) -> None:
        """Finish the pending updates of the shared lanes."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _shared_lane(self, state: LaneState, in_flight: int) -> _Lane:
        return _Lane(
            cap=state.cap,
            limit=state.limit,
            tokens=state.tokens,
            refilled=state.refilled_at,
            paused_until=state.paused_until,
            in_flight=in_flight,
            refill_per_s=state.refill_per_s,
        )

    @staticmethod
    def _state_of(lane: _Lane) -> LaneState:
        return LaneState(
            cap=lane.cap,
            limit=lane.limit,
            refill_per_s=lane.refill_per_s,
            tokens=lane.tokens,
            refilled_at=lane.refilled,
            paused_until=lane.paused_until,
        )

    def _initial_state(self) -> LaneState:
        return LaneState(
            cap=float(min(self.initial, self.ceiling)),
            limit=None,
            refill_per_s=None,
            tokens=0.0,
            refilled_at=self._clock(),
            paused_until=0.0,
        )

    async def _shared_take(self, key: str, call_id: str, images: int) -> float | None:
        assert self.shared is not None

        def take(state: LaneState, in_flight: int) -> tuple[LaneState, float | None]:
            lane = self._shared_lane(state, in_flight)
            now = self._clock()
            if in_flight >= self.limit_of(lane):
                return state, None
            if lane.paused_until > now:
                return state, lane.paused_until - now
            if lane.limit is not None:
                self._refill(lane, now)
                if lane.tokens < images:
                    return self._state_of(lane), (images - lane.tokens) / self._per_s(lane)
                lane.tokens -= images
            return self._state_of(lane), 0.0

        return await self.shared.change(
            key, take, self._initial_state(), add_call=(call_id, self.lease_s)
        )

    async def _shared_give_back(self, key: str, call_id: str, ok: bool) -> None:
        assert self.shared is not None

        def give(state: LaneState, in_flight: int) -> tuple[LaneState, None]:
            if ok:
                state.cap = min(float(self.ceiling), state.cap + 1.0)
            return state, None

        await self.shared.change(key, give, self._initial_state(), remove_call=call_id)
        self._changed.set()

    async def _shared_learn(self, key: str, signal: RateSignal) -> None:
        assert self.shared is not None

        def learn(state: LaneState, in_flight: int) -> tuple[LaneState, None]:
            lane = self._shared_lane(state, in_flight)
            self._learn(lane, signal, self._clock())
            return self._state_of(lane), None

        await self.shared.change(key, learn, self._initial_state())
        self._changed.set()


def memory_estimate(size: str | None, n: int) -> int:
    """Bytes a call for ``n`` images of ``size`` (``1024x1024``, ``auto``) holds in flight."""
    megapixels = 1.0
    if size and "x" in size:
        with contextlib.suppress(ValueError):
            width, height = (int(v) for v in size.lower().split("x", 1))
            megapixels = max(0.25, width * height / 1_000_000)
    elif size == "auto":
        megapixels = 1.6
    return int(megapixels * BYTES_PER_MEGAPIXEL * max(1, n))


def default_memory_budget() -> int | None:
    """Half of the memory available to this process when it starts (None if unknown)."""
    limits: list[int] = []
    with contextlib.suppress(OSError, ValueError), open("/sys/fs/cgroup/memory.max") as fh:
        text = fh.read().strip()
        if text != "max":
            limits.append(int(text))
    with contextlib.suppress(OSError, ValueError, AttributeError):
        import os

        limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return min(limits) // 2 if limits else None
