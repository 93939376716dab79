"""Shared pieces of the pipeline benchmarks: the provider process, settings, a counting
notifier, PostgreSQL schemas, CPU and memory readings.

Kept free of test-only imports (pytest, tests.conftest) so that the memory figures of the
imagebot process are those of imagebot, not of a test harness.
"""

from __future__ import annotations

import asyncio
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
