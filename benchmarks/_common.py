"""Shared pieces of the pipeline benchmarks: the provider process, settings, a counting
notifier, PostgreSQL schemas, CPU and memory readings.

Kept free of test-only imports (pytest, tests.conftest) so that the memory figures of the
imagebot process are those of imagebot, not of a test harness.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import platform
import resource
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.settings import Settings
from core.types import (
    Actor,
    Conversation,
    Delivered,
    Failed,
    GenerateOptions,
    GenerateRequest,
    JobEvent,
    PartialImage,
    ReplyTarget,
)

ROOT = Path(__file__).resolve().parents[1]
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PLATFORM = "bench"
API_KEY = "sk-bench-0123456789abcdef0123456789"
PROVIDER_SCRIPT = Path(__file__).resolve().parent / "fake_provider_process.py"

log = logging.getLogger("bench")


# --- environment ------------------------------------------------------------------------------


def setup_logging(level: str = "WARNING") -> None:
    """Logs go to stderr; stdout carries only the JSON line."""
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("bench").setLevel(logging.INFO)


def machine() -> str:
    """``"N cores"``: the cores this process may use, as ``nproc`` reports them."""
    if hasattr(os, "sched_getaffinity"):
        return f"{len(os.sched_getaffinity(0))} cores"
    return f"{os.cpu_count() or 1} cores"


def python_version() -> str:
    """The running interpreter's version."""
    return platform.python_version()


def emit(figures: dict[str, Any]) -> None:
    """Print the one JSON line of figures on stdout."""
    print(json.dumps(figures), flush=True)


# --- CPU and memory ---------------------------------------------------------------------------


def cpu_s() -> float:
    """User + system CPU seconds of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main_thread_cpu_s() -> float:
    """CPU seconds of the calling thread (the event loop, when called from it)."""
    return time.thread_time()


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (``ru_maxrss``), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """The process's current resident set size, in MB (Linux; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of another process (Linux ``/proc``), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


@dataclass
class CpuMark:
    """A reading of wall time, process CPU (all, system part), event-loop-thread CPU and
    minor page faults."""

    wall: float = field(default_factory=time.perf_counter)
    cpu: float = field(default_factory=cpu_s)
    loop_cpu: float = field(default_factory=main_thread_cpu_s)
    sys_cpu: float = field(
        default_factory=lambda: resource.getrusage(resource.RUSAGE_SELF).ru_stime
    )
    minor_faults: int = field(
        default_factory=lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    )


def ms_per(seconds: float, count: int) -> float:
    """Milliseconds per item, rounded for the report."""
    return round(seconds * 1000 / max(count, 1), 2)


# --- the provider process ---------------------------------------------------------------------


class ProviderProcess:
    """``fake_provider_process.py`` as a child process; a context manager.

    ``base_url`` and ``pid`` are set on entry; on exit the child's stdin is closed (it
    stops and reports its CPU in ``final``), and it is terminated, then killed, if it
    does not go.
    """

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self.pid = 0
        self.final: dict[str, Any] = {}

    def __enter__(self) -> ProviderProcess:
        self.proc = subprocess.Popen(
            [sys.executable, str(PROVIDER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        line = _readline_with_timeout(self.proc, 60.0)
        if not line:
            self.__exit__(None, None, None)
            raise RuntimeError("the fake provider process did not start")
        hello = json.loads(line)
        self.base_url = hello["base_url"]
        self.pid = int(hello["pid"])
        log.info("fake provider pid=%s at %s", self.pid, self.base_url)
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            try:
                out, _ = proc.communicate(timeout=10)  # closes stdin: the child stops
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    out, _ = proc.communicate(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    out, _ = proc.communicate()
            for raw in (out or b"").decode(errors="replace").splitlines():
                if raw.startswith("{"):
                    self.final = json.loads(raw)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _readline_with_timeout(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    result: list[bytes] = []

    def read() -> None:
        assert proc.stdout is not None
        result.append(proc.stdout.readline())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else b""


# --- imagebot pieces --------------------------------------------------------------------------


def bench_settings(
    workdir: Path,
    *,
    database_url: str,
    schema: str | None,
    base_url: str,
    partial_images: int,
    concurrency: int,
    max_queued_per_user: int,
    moderation: bool | None = None,
) -> Settings:
    """Settings for a benchmark core: the real OpenAI provider pointed at the fake.

    Everything else keeps its shipped default, except what would stop a benchmark: the
    credits, the queue limit and the per-user and per-chat rate limits (a benchmark user
    submits far faster than a person). ``moderation=None`` keeps the default.
    """
    values: dict[str, Any] = {
        "database_url": database_url,
        "database_schema": schema,
        "data_dir": workdir / "data",
        "free_credits": 10_000_000,
        "image_provider": "openai",
        "openai_api_key": API_KEY,
        "openai_base_url": base_url,
        "partial_images": partial_images,
        "worker_concurrency": concurrency,
        "max_queued_per_user": max_queued_per_user,
        "provider_max_retries": 0,
        "provider_timeout_seconds": 60.0,
        "rate_user_per_minute": 1e9,
        "rate_user_burst": 1_000_000_000,
        "rate_chat_per_minute": 1e9,
        "rate_chat_burst": 1_000_000_000,
    }
    if moderation is not None:
        values["moderation"] = moderation
    # The settings grow while the project does: pass only what this version knows.
    known = set(Settings.model_fields)
    values = {k: v for k, v in values.items() if k in known}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def moderation_enabled(settings: Settings) -> bool:
    """Whether the core screens with the provider's moderation endpoint (when it can)."""
    return bool(getattr(settings, "moderation", False))


def sqlite_url(workdir: Path) -> str:
    """A SQLite file in the benchmark's working folder."""
    return f"sqlite+aiosqlite:///{workdir / 'imagebot.db'}"


def new_schema_name() -> str:
    """A fresh PostgreSQL schema name for one run."""
    return f"bench_{secrets.token_hex(5)}"


async def create_schema(url: str, schema: str) -> None:
    """``CREATE SCHEMA`` on the server."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        await engine.dispose()


async def drop_schema(url: str, schema: str) -> None:
    """``DROP SCHEMA … CASCADE`` (missing is fine)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


def drop_schema_sync(url: str, schema: str) -> None:
    """:func:`drop_schema` from synchronous code (the parent of the measured process)."""
    asyncio.run(drop_schema(url, schema))


def make_actor(user: int, *, prefix: str = "u") -> Actor:
    """Benchmark user ``prefix``+``user``."""
    uid = f"{prefix}{user}"
    return Actor(PLATFORM, uid, display_name=f"Bench {uid}", locale="en")


def make_request(user: int, seq: int, *, prefix: str = "u") -> GenerateRequest:
    """One ``/imagine`` (1024x1024, medium, png) from benchmark user ``prefix``+``user``."""
    uid = f"{prefix}{user}"
    return GenerateRequest(
        actor=make_actor(user, prefix=prefix),
        conversation=Conversation(PLATFORM, f"chat-{uid}"),
        prompt=f"a red fox in snow, variation {seq}",
        options=GenerateOptions(size="1024x1024", quality="medium", output_format="png"),
        idempotency_key=f"bench:{uid}:{seq}",
        reply_target=ReplyTarget(PLATFORM, f"chat-{uid}"),
    )


def round_robin_requests(jobs: int, users: int) -> list[GenerateRequest]:
    """``jobs`` requests spread over ``users`` users, interleaved as they would arrive."""
    return [make_request(i % users, i) for i in range(jobs)]


async def onboard(core: Any, actors: list[Actor]) -> None:
    """Register each user as one who accepted the terms (when the core asks for that), so
    the measured submits are those of returning users."""
    onboarding = getattr(core, "onboarding", None)
    for actor in actors:
        if onboarding is not None:
            await onboarding.accept(actor)
        else:
            await core.users.register(actor)


async def submit_all(core: Any, requests: list[GenerateRequest], submitters: int) -> None:
    """Submit every request with ``submitters`` concurrent callers (adapters' handlers)."""
    queue: asyncio.Queue[GenerateRequest] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)

    async def one() -> None:
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            sub = await core.generation.submit(item)
            if not sub.created:
                raise RuntimeError(f"request {item.idempotency_key} was not queued")

    await asyncio.gather(*(one() for _ in range(max(1, submitters))))


class CountingNotifier:
    """A platform notifier that only counts events (no chat upload is benchmarked)."""

    def __init__(self) -> None:
        self.delivered = 0
        self.failed = 0
        self.partials = 0
        self.target = 0
        self._reached = asyncio.Event()

    def expect(self, count: int) -> None:
        """Wait for ``count`` more final events from now on."""
        self.delivered = self.failed = self.partials = 0
        self.target = count
        self._reached.clear()

    async def notify(self, target: ReplyTarget, event: JobEvent) -> None:
        """Count the event."""
        if isinstance(event, Delivered):
            self.delivered += 1
        elif isinstance(event, Failed):
            self.failed += 1
            log.warning("job failed job=%s code=%s", event.job_id, event.code)
        elif isinstance(event, PartialImage):
            self.partials += 1
        if self.delivered + self.failed >= self.target:
            self._reached.set()

    async def wait(self, timeout: float) -> None:
        """Until every expected job ended (delivered or failed)."""
        async with asyncio.timeout(timeout):
            await self._reached.wait()


@dataclass
class SqlCount:
    """SQL statements and committed transactions over a stretch of a run."""

    statements: int = 0
    transactions: int = 0


class SqlCounter:
    """Counts statements sent (``before_cursor_execute``) and commits on an engine."""

    def __init__(self, db: Any) -> None:
        from sqlalchemy import event

        self._count = SqlCount()
        self._last = SqlCount()
        engine = db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, *_args: Any) -> None:
        self._count.statements += 1

    def _commit(self, *_args: Any) -> None:
        self._count.transactions += 1

    def take(self) -> SqlCount:
        """Counts since the previous call (or since creation)."""
        now = SqlCount(self._count.statements, self._count.transactions)
        delta = SqlCount(
            now.statements - self._last.statements, now.transactions - self._last.transactions
        )
        self._last = now
        return delta


async def job_states(db: Any) -> dict[str, int]:
    """Jobs per state, straight from the database."""
    from sqlalchemy import text

    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT state, COUNT(*) FROM jobs GROUP BY state"))).all()
    return {str(state): int(n) for state, n in rows}


# --- a blocked event loop -----------------------------------------------------------------------

SLOW_CALLBACK_S = 0.1
"""A callback that holds the event loop this long is a blocked loop (asyncio's own measure)."""
LAG_PROBE_S = 0.02


class LoopWatch:
    """Counts the event-loop callbacks that ran over :data:`SLOW_CALLBACK_S` and names the
    slowest, for the ``slow_callbacks`` / ``slowest_callback_ms`` / ``slowest_callback``
    keys of a benchmark's JSON line.

    Two ways, the same figures:

    - ``"watchdog"`` (the default): every callback the loop runs is timed by wrapping
      ``asyncio.events.Handle._run`` (what ``BaseEventLoop._run_once`` calls for each ready
      callback, task steps included). Two clock reads per callback, nothing else.
    - ``"debug"``: asyncio's debug mode with ``loop.slow_callback_duration``; the
      "Executing <Handle …> took N seconds" warnings of the ``asyncio`` logger are counted.
      Debug mode also checks every call_soon's thread and keeps each coroutine's origin,
      which costs CPU in a busy process (see ``benchmarks/README.md``).

    ``start()`` in the loop to watch (counting begins there), ``stop()`` to uninstall;
    ``figures()`` any time. Also counts the warnings of discord.py's ``discord.gateway``
    logger (``gateway_warnings``: "Can't keep up", "heartbeat blocked").
    """

    def __init__(self, mode: str = "watchdog", threshold: float = SLOW_CALLBACK_S) -> None:
        if mode not in ("watchdog", "debug"):
            raise ValueError(f"unknown loop check {mode!r}")
        self.mode = mode
        self.threshold = threshold
        self.reset()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._original_run: Any = None
        self._handlers: list[tuple[logging.Logger, logging.Handler]] = []
        self._running_since = 0.0
        self._gc_began = 0.0
        self._lag_task: asyncio.Task[None] | None = None

    def start(self) -> LoopWatch:
        """Install on the running loop; count from now on."""
        self._loop = asyncio.get_running_loop()
        self.reset()
        if self.mode == "watchdog":
            self._install_watchdog()
        else:
            self._loop.slow_callback_duration = self.threshold
            self._loop.set_debug(True)
            self._listen("asyncio", logging.WARNING, self._on_asyncio_record)
        self._listen("discord.gateway", logging.WARNING, self._on_gateway_record)
        gc.callbacks.append(self._on_gc)
        self._lag_task = self._loop.create_task(self._probe_lag(), name="loop-watch-lag")
        return self

    async def _probe_lag(self) -> None:
        # How late a 20 ms timer fires: what any callback waits behind the others (a
        # queue, not one slow callback), e.g. the gateway's heartbeat or a defer.
        loop = asyncio.get_running_loop()
        while True:
            planned = loop.time() + LAG_PROBE_S
            await asyncio.sleep(LAG_PROBE_S)
            self.lags.append(max(0.0, loop.time() - planned))

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # The collector runs inside whatever callback allocated: a long pass is a blocked
        # loop that no stack shows. Timed apart, by generation.
        if phase == "start":
            self._gc_began = time.perf_counter()
            return
        took = time.perf_counter() - self._gc_began
        generation = int(info.get("generation", 0))
        self.gc_passes[generation] = self.gc_passes.get(generation, 0) + 1
        self.gc_max_s = max(self.gc_max_s, took)
        self.gc_total_s += took
        if took >= self.threshold / 2:
            self.gc_slow += 1

    def reset(self) -> None:
        """Forget what was counted (after a warm-up)."""
        self.slow = 0
        self.slow_cpu = 0
        self.slowest_s = 0.0
        self.slowest_cpu_s: float | None = None
        self.slowest = ""
        self.gateway_warnings = 0
        self.gateway_first = ""
        self.lags: list[float] = []
        self.gc_passes: dict[int, int] = {}
        self.gc_max_s = 0.0
        self.gc_total_s = 0.0
        self.gc_slow = 0

    def stop(self) -> None:
        """Uninstall (the counts stay)."""
        if self._original_run is not None:
            asyncio.events.Handle._run = self._original_run  # type: ignore[method-assign]
            self._original_run = None
        if self.mode == "debug" and self._loop is not None:
            self._loop.set_debug(False)
        if self._lag_task is not None:
            self._lag_task.cancel()
            self._lag_task = None
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        for logger, handler in self._handlers:
            logger.removeHandler(handler)
        self._handlers.clear()

    def figures(self) -> dict[str, Any]:
        """The JSON keys: ``slow_callbacks``, ``slowest_callback_ms``, ``slowest_callback``,
        ``loop_check`` (which way), ``gateway_warnings``."""
        return {
            "loop_check": self.mode,
            "slow_callbacks": self.slow,
            "slowest_callback_ms": round(self.slowest_s * 1000, 1),
            "slowest_callback": self.slowest[:300],
            # Wall time includes the loop thread being descheduled (a shared machine); the
            # loop thread's own CPU in the callback says how much of it was work.
            "slow_callbacks_cpu": self.slow_cpu if self.mode == "watchdog" else None,
            "slowest_callback_cpu_ms": (
                None if self.slowest_cpu_s is None else round(self.slowest_cpu_s * 1000, 1)
            ),
            "gateway_warnings": self.gateway_warnings,
            "gateway_warning_first": self.gateway_first[:200],
            "loop_lag_p50_ms": _pct_ms(self.lags, 0.5),
            "loop_lag_p99_ms": _pct_ms(self.lags, 0.99),
            "loop_lag_max_ms": _pct_ms(self.lags, 1.0),
            "gc_max_ms": round(self.gc_max_s * 1000, 1),
            "gc_total_ms": round(self.gc_total_s * 1000, 1),
            "gc_over_50ms": self.gc_slow,
            "gc_full_passes": self.gc_passes.get(2, 0),
        }

    def _record(self, seconds: float, what: Any, cpu: float | None = None) -> None:
        if seconds >= self.threshold:
            self.slow += 1
            if cpu is not None and cpu >= self.threshold:
                self.slow_cpu += 1
            if callable(what):
                what = what()
            log.warning(
                "slow callback %.0f ms (loop thread CPU %s ms): %s",
                seconds * 1000,
                "?" if cpu is None else f"{cpu * 1000:.0f}",
                what,
            )
        if seconds > self.slowest_s:
            self.slowest_s = seconds
            self.slowest_cpu_s = cpu
            self.slowest = what() if callable(what) else str(what)

    def _install_watchdog(self) -> None:
        original = asyncio.events.Handle._run
        self._original_run = original
        watch = self
        clock = time.perf_counter

        cpu_clock = time.thread_time

        def _run(handle: asyncio.Handle) -> None:
            began = clock()
            began_cpu = cpu_clock()
            watch._running_since = began
            try:
                original(handle)
            finally:
                watch._running_since = 0.0
                took = clock() - began
                if took > watch.slowest_s or took >= watch.threshold:
                    cpu = cpu_clock() - began_cpu
                    watch._record(took, lambda: describe_handle(handle), cpu=cpu)

        asyncio.events.Handle._run = _run  # type: ignore[method-assign]
        if os.environ.get("BENCH_SLOW_STACKS"):
            self._start_sampler()

    def _start_sampler(self) -> None:
        """Diagnosis (``BENCH_SLOW_STACKS=1``): a thread that logs the loop thread's stack
        when one callback has run for over ``threshold`` (the figures do not need it)."""
        import traceback

        loop_thread = threading.get_ident()
        self._running_since = 0.0

        def sample() -> None:
            seen = 0.0
            while self._original_run is not None:
                time.sleep(self.threshold / 4)
                since = self._running_since
                if since and since != seen and time.perf_counter() - since > self.threshold * 0.8:
                    seen = since
                    frame = sys._current_frames().get(loop_thread)
                    if frame is not None:
                        stack = "".join(traceback.format_stack(frame)[-14:])
                        log.warning(
                            "loop busy %.0f ms in:\n%s", (time.perf_counter() - since) * 1000, stack
                        )

        threading.Thread(target=sample, daemon=True, name="loop-watch-sampler").start()

    def _listen(self, name: str, level: int, on_record: Any) -> None:
        logger = logging.getLogger(name)
        handler = _CallbackHandler(on_record)
        handler.setLevel(level)
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > level:
            logger.setLevel(level)
        self._handlers.append((logger, handler))

    def _on_asyncio_record(self, record: logging.LogRecord) -> None:
        if record.msg == "Executing %s took %.3f seconds" and isinstance(record.args, tuple):
            what, took = record.args
            self._record(float(took), str(what))

    def _on_gateway_record(self, record: logging.LogRecord) -> None:
        self.gateway_warnings += 1
        if not self.gateway_first:
            self.gateway_first = record.getMessage()


def _pct_ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def describe_handle(handle: asyncio.Handle) -> str:
    """What a callback was: for a task's step the task and its coroutine (and where it
    waits now), else the handle's repr."""
    callback = getattr(handle, "_callback", None)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        name = getattr(coro, "__qualname__", type(coro).__name__)
        inner = coro
        while getattr(getattr(inner, "cr_await", None), "cr_frame", None) is not None:
            inner = inner.cr_await  # type: ignore[union-attr]
        frame = getattr(inner, "cr_frame", None)
        where = f" waiting at {frame.f_code.co_filename}:{frame.f_lineno}" if frame else ""
        return f"Task {owner.get_name()} coro={name}{where}"
    return repr(handle)


class _CallbackHandler(logging.Handler):
    def __init__(self, on_record: Any) -> None:
        super().__init__()
        self._on_record = on_record

    def emit(self, record: logging.LogRecord) -> None:
        self._on_record(record)
