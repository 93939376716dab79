"""Benchmark: the retention sweep over 100,000 expired jobs while generation goes on.

Set-up (not measured), in this process, on a fresh database (a SQLite file by default,
``--db postgres`` for a fresh schema on the test server):

1. the core as shipped (``bot.wiring.build_core``, migrations, batch 500 in
   ``RetentionService``), except credits and rate limits (as in ``_common.bench_settings``),
   moderation off, and the model: an in-process zero-latency model answering a cached
   ≈38 KB 1024x1024 PNG (``--model demo`` for the shipped demo model, which draws each
   image with Pillow);
2. ``--expired`` finished jobs (default 100,000; ``succeeded``, created and finished
   400–760 days ago, past the one-year period of ``images_and_prompts``) of
   ``--old-users`` users, each with one output row in ``job_images``, inserted with bulk
   ``INSERT``s through SQLAlchemy Core against the real schema. By default no file exists
   behind those rows (the sweep still calls the file store's ``delete`` for each path,
   which then finds nothing); ``--files`` writes a small real file (a 67-byte PNG) at
   every path first, so the sweep really unlinks 100,000 files. ``--kept`` adds finished
   jobs that are *not* expired yet (30–300 days old), which the sweep must skip;
3. the worker started (``--concurrency`` loops, as shipped: 4).

Measured:

- **before**: ``--baseline-s`` seconds of steady generation: ``--rate`` submits a second
  (open loop: a new ``core.generation.submit`` every 1/rate s whatever the previous
  ones do) from ``--live-users`` users, every job run by the worker;
- **during**: ``core.retention.sweep()`` (the whole sweep, every category, as the
  scheduler runs it) in this process while the same load continues;
- after the sweep the load stops and every live job must have succeeded; every expired
  row (and with ``--files`` every file) must be gone, and no live job touched.

Figures: ``sweep_s``, ``jobs_deleted``, ``rows_per_s`` (job + image rows deleted per
second), ``delete_batches`` (``DELETE FROM jobs`` statements), then for ``before`` and
``during``: ``submit_ms_p50``/``_p99``/``_max`` (submit call to its return),
``e2e_ms_p50``/``_p99`` (submit to the job's delivery), ``loop_lag_ms_max`` (how late a
10 ms timer on the event loop fired: anything that blocks the loop shows here) and
``jobs_done_per_s`` (live jobs delivered per second).

Run: ``.venv/bin/python benchmarks/bench_retention.py [--db sqlite|postgres]
[--expired 100000] [--files] [--kept 0] [--rate 10] [--baseline-s 10]``. Prints one
JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

# The smallest PNG: 1x1, 67 bytes (for --files).
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
INSERT_CHUNK = 5_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--expired", type=int, default=100_000, help="expired finished jobs")
    parser.add_argument("--old-users", type=int, default=1_000, help="users owning them")
    parser.add_argument(
        "--kept", type=int, default=0, help="finished jobs not expired yet (must stay)"
    )
    parser.add_argument("--files", action="store_true", help="a real small file per image row")
    parser.add_argument("--model", choices=("instant", "demo"), default="instant")
    parser.add_argument("--rate", type=float, default=10.0, help="live submits per second")
    parser.add_argument("--live-users", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4, help="worker loops")
    parser.add_argument("--baseline-s", type=float, default=10.0, help="load before the sweep")
    parser.add_argument("--batch", type=int, default=None, help="sweep batch (default: shipped)")
    parser.add_argument("--pg-url", default=c.PG_URL)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


# --- the model ---------------------------------------------------------------------------------


class InstantModel:
    """A zero-latency :class:`core.ports.ImageModel`: one cached small PNG per image."""

    name = "bench"
    notice = ""

    def __init__(self) -> None:
        from tests.fakes.openai_server import small_image

        self.png = small_image(1024, 1024, "png")

    async def run(self, call: Any) -> AsyncIterator[Any]:
        """Yield ``n`` copies of the cached image."""
        from core.generation.ports import ModelImage

        for _ in range(max(1, call.options.n)):
            yield ModelImage(self.png, "image/png")

    async def check(self) -> str | None:
        """Always there."""
        return None

    async def aclose(self) -> None:
        """Nothing to release."""


# --- bulk rows ---------------------------------------------------------------------------------


async def insert_old_rows(
    db: Any, *, expired: int, kept: int, users: int, data_dir: Path | None
) -> dict[str, float]:
    """Users, expired and kept finished jobs with one output image each; returns timings."""
    from sqlalchemy import insert

    from storage.models import Job, JobImage, User

    users_table: Any = User.__table__
    jobs_table: Any = Job.__table__
    images_table: Any = JobImage.__table__
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    first_user = 1_000_000  # far from the ids the live users get
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(users_table),
            [
                {
                    "id": first_user + u,
                    "platform": c.PLATFORM,
                    "platform_user_id": f"old{u}",
                    "display_name": f"Old {u}",
                    "locale": "en",
                    "created_at": now - timedelta(days=800),
                    "last_seen_at": now - timedelta(days=400),
                    "terms_version": "1",
                    "terms_accepted_at": now - timedelta(days=800),
                    "age_confirmed_at": now - timedelta(days=800),
                }
                for u in range(users)
            ],
        )
    options = {
        "model": "gpt-image-2",
        "size": "1024x1024",
        "quality": "medium",
        "output_format": "png",
        "background": "auto",
        "n": 1,
    }
    total = expired + kept
    for start in range(0, total, INSERT_CHUNK):
        jobs, images = [], []
        for i in range(start, min(total, start + INSERT_CHUNK)):
            user_id = first_user + i % users
            if i < expired:  # 400..760 days old, oldest first
                age = timedelta(days=760) - timedelta(seconds=i * (360 * 86400 / max(expired, 1)))
            else:
                age = timedelta(days=30) + timedelta(
                    seconds=(i - expired) * (270 * 86400 / max(kept, 1))
                )
            created = now - age
            finished = created + timedelta(seconds=20)
            job_id = f"{'old' if i < expired else 'kep'}{i:013x}"
            path = f"users/{user_id}/jobs/{job_id}/output-0.png"
            jobs.append(
                {
                    "id": job_id,
                    "user_id": user_id,
                    "idempotency_key": f"bench-old:{job_id}",
                    "kind": "generate",
                    "state": "succeeded",
                    "prompt": f"an old prompt number {i}",
                    "options": options,
                    "cost": 4,
                    "fair_seq": i // users,
                    "platform": c.PLATFORM,
                    "chat_id": f"chat-old{i % users}",
                    "group_id": None,
                    "reply_target": {"platform": c.PLATFORM, "chat_id": f"chat-old{i % users}"},
                    "parent_job_id": None,
                    "attempts": 1,
                    "lease_owner": "w-old",
                    "lease_expires_at": None,
                    "not_before": None,
                    "error_code": None,
                    "error_message": None,
                    "created_at": created,
                    "updated_at": finished,
                    "started_at": created + timedelta(seconds=1),
                    "finished_at": finished,
                }
            )
            images.append(
                {
                    "job_id": job_id,
                    "user_id": user_id,
                    "role": "output",
                    "idx": 0,
                    "path": path,
                    "content_type": "image/png",
                    "width": 1,
                    "height": 1,
                    "size_bytes": len(TINY_PNG),
                    "created_at": finished,
                }
            )
        async with db.engine.begin() as conn:
            await conn.execute(insert(jobs_table), jobs)
            await conn.execute(insert(images_table), images)
        if data_dir is not None:
            await asyncio.to_thread(_write_files, data_dir, [str(im["path"]) for im in images])
    if not db.is_sqlite:
        # What autovacuum would soon do after such an insert. (imagebot never runs ANALYZE
        # or PRAGMA optimize on SQLite, so SQLite plans without statistics, as shipped.)
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("ANALYZE")
    return {"insert_s": round(time.perf_counter() - t0, 2)}


def _write_files(root: Path, paths: list[str]) -> None:
    for rel in paths:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(TINY_PNG)


# --- measurements ------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class Phases:
    """Which phase it is now: ``before``, ``during`` (the sweep runs) or ``after``."""

    def __init__(self) -> None:
        self.now = "before"
        self.bounds: dict[str, list[float]] = {}

    def enter(self, name: str) -> None:
        self.now = name
        self.bounds.setdefault(name, [time.perf_counter(), 0.0])

    def leave(self) -> None:
        self.bounds[self.now][1] = time.perf_counter()


class TimingNotifier:
    """A platform notifier that notes when each job was delivered."""

    def __init__(self) -> None:
        self.delivered: dict[str, float] = {}
        self.failed = 0

    async def notify(self, target: Any, event: Any) -> None:
        """Note the time of final events."""
        from core.types import Delivered, Failed

        if isinstance(event, Delivered):
            self.delivered[event.job_id] = time.perf_counter()
        elif isinstance(event, Failed):
            self.failed += 1
            c.log.warning("live job failed job=%s code=%s", event.job_id, event.code)


class Load:
    """Open-loop submits at ``rate`` per second until stopped; notes each one."""

    def __init__(self, core: Any, phases: Phases, rate: float, users: int) -> None:
        self.core = core
        self.phases = phases
        self.rate = rate
        self.users = users
        self.records: list[dict[str, Any]] = []
        self.errors = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()

    async def run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.perf_counter()
        seq = 0
        while not self._stop.is_set():
            request = c.make_request(seq % self.users, seq, prefix="live")
            task = asyncio.create_task(self._one(request, self.phases.now))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            seq += 1
            next_at += interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)

    async def _one(self, request: Any, phase: str) -> None:
        begun = time.perf_counter()
        try:
            sub = await self.core.generation.submit(request)
        except Exception:
            self.errors += 1
            c.log.exception("live submit failed")
            return
        self.records.append(
            {"phase": phase, "begun": begun, "took": time.perf_counter() - begun, "job": sub.job.id}
        )

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            await asyncio.gather(*list(self._tasks))


class LoopLag:
    """How late a 10 ms timer fires, by phase."""

    def __init__(self, phases: Phases) -> None:
        self.phases = phases
        self.worst: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            begun = time.perf_counter()
            await asyncio.sleep(0.01)
            late = time.perf_counter() - begun - 0.01
            phase = self.phases.now
            self.worst[phase] = max(self.worst.get(phase, 0.0), late)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class DeleteCounter:
    """Counts ``DELETE FROM jobs`` statements (the sweep's batches) on an engine."""

    def __init__(self, db: Any) -> None:
        from sqlalchemy import event

        self.count = 0
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._statement)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM JOBS"):
            self.count += 1


def phase_figures(
    phase: str, load: Load, notifier: TimingNotifier, lag: LoopLag, phases: Phases
) -> dict[str, Any]:
    """Submit and end-to-end latencies of the submits begun in ``phase``."""
    records = [r for r in load.records if r["phase"] == phase]
    took = [r["took"] for r in records]
    e2e = [
        notifier.delivered[r["job"]] - r["begun"] for r in records if r["job"] in notifier.delivered
    ]
    begin, end = phases.bounds.get(phase, [0.0, 0.0])
    done = sum(1 for t in notifier.delivered.values() if begin <= t < end)
    return {
        f"{phase}_submits": len(records),
        f"{phase}_submit_ms_p50": round(percentile(took, 50) * 1000, 1),
        f"{phase}_submit_ms_p99": round(percentile(took, 99) * 1000, 1),
        f"{phase}_submit_ms_max": round(max(took, default=0.0) * 1000, 1),
        f"{phase}_e2e_ms_p50": round(percentile(e2e, 50) * 1000, 1),
        f"{phase}_e2e_ms_p99": round(percentile(e2e, 99) * 1000, 1),
        f"{phase}_loop_lag_ms_max": round(lag.worst.get(phase, 0.0) * 1000, 1),
        f"{phase}_jobs_done_per_s": round(done / (end - begin), 1) if end > begin else 0.0,
    }


async def count(db: Any, sql: str) -> int:
    """One integer from the database."""
    from sqlalchemy import text

    async with db.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


def leftover_files(data_dir: Path) -> tuple[int, int]:
    """(files, directories) left of the expired jobs: ``users/*/jobs/old…/``."""
    files = dirs = 0
    for job_dir in (data_dir / "users").glob("*/jobs/old*"):
        dirs += 1
        files += sum(1 for _ in job_dir.iterdir())
    return files, dirs


class FileDeleteTimer:
    """Time spent inside the file store's ``delete`` (it runs on the event loop), summed
    per sweep batch (batches told apart by the ``DELETE FROM jobs`` count)."""

    def __init__(self, files: Any, batches: DeleteCounter) -> None:
        self.by_batch: dict[int, float] = {}
        self.calls = 0
        real = files.delete

        async def timed(path: str) -> None:
            begun = time.perf_counter()
            try:
                await real(path)
            finally:
                took = time.perf_counter() - begun
                self.calls += 1
                self.by_batch[batches.count] = self.by_batch.get(batches.count, 0.0) + took

        files.delete = timed


# --- the run -----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, measure before and during the sweep, check, report."""
    from bot.wiring import build_core
    from core.generation.providers.demo import DemoImageModel
    from storage.database import Database

    with tempfile.TemporaryDirectory(prefix="imagebot-bench-retention-") as tmp:
        workdir = Path(tmp)
        schema = c.new_schema_name() if args.db == "postgres" else None
        if schema:
            await c.create_schema(args.pg_url, schema)
            url = args.pg_url
        else:
            url = c.sqlite_url(workdir)
        try:
            settings = c.bench_settings(
                workdir,
                database_url=url,
                schema=schema,
                base_url="http://127.0.0.1:9/v1",  # unused: the model is given
                partial_images=0,
                concurrency=args.concurrency,
                max_queued_per_user=10_000,
                moderation=False,
            )
            db = Database(url, schema=schema)
            model = DemoImageModel() if args.model == "demo" else InstantModel()
            core = await build_core(settings, database=db, migrate=True, model=model)
            try:
                if args.batch:
                    core.retention.batch = args.batch
                notifier = TimingNotifier()
                core.notifier.register(c.PLATFORM, notifier)
                data_dir = Path(settings.data_dir)
                # Live users first: they get small ids, the old ones start at 1,000,000.
                await c.onboard(
                    core, [c.make_actor(u, prefix="live") for u in range(args.live_users)]
                )
                setup = await insert_old_rows(
                    db,
                    expired=args.expired,
                    kept=args.kept,
                    users=args.old_users,
                    data_dir=data_dir if args.files else None,
                )
                c.log.info(
                    "inserted %s expired and %s kept jobs in %ss",
                    args.expired,
                    args.kept,
                    setup["insert_s"],
                )
                await core.worker.start(exclusive=core.exclusive_worker)
                deletes = DeleteCounter(db)
                file_deletes = FileDeleteTimer(core.files, deletes)

                phases = Phases()
                lag = LoopLag(phases)
                load = Load(core, phases, args.rate, args.live_users)
                phases.enter("before")
                lag.start()
                load_task = asyncio.create_task(load.run())
                await asyncio.sleep(args.baseline_s)
                phases.leave()

                phases.enter("during")
                sweep_start = time.perf_counter()
                async with asyncio.timeout(args.timeout):
                    swept = await core.retention.sweep()
                sweep_s = time.perf_counter() - sweep_start
                phases.leave()

                phases.enter("after")
                await load.stop()
                await load_task
                submitted = len(load.records)
                async with asyncio.timeout(120):
                    while len(notifier.delivered) + notifier.failed < submitted:
                        await asyncio.sleep(0.1)
                phases.leave()
                await lag.stop()
                await core.worker.stop(grace=30)

                old_jobs_left = await count(db, "SELECT COUNT(*) FROM jobs WHERE id LIKE 'old%'")
                old_images_left = await count(
                    db, "SELECT COUNT(*) FROM job_images WHERE job_id LIKE 'old%'"
                )
                kept_left = await count(db, "SELECT COUNT(*) FROM jobs WHERE id LIKE 'kep%'")
                live_ok = await count(
                    db,
                    "SELECT COUNT(*) FROM jobs j JOIN users u ON u.id = j.user_id "
                    "WHERE u.platform_user_id LIKE 'live%' AND j.state = 'succeeded'",
                )
                files_left, dirs_left = leftover_files(data_dir) if args.files else (0, 0)
            finally:
                await core.aclose()
                await db.dispose()
        finally:
            if schema:
                await c.drop_schema(args.pg_url, schema)

    deleted = swept.get("images_and_prompts", 0)
    figures: dict[str, Any] = {
        "benchmark": "retention",
        "db": args.db,
        "expired": args.expired,
        "kept": args.kept,
        "files": bool(args.files),
        "model": args.model,
        "batch": args.batch or core.retention.batch,
        "rate_per_s": args.rate,
        "worker_concurrency": args.concurrency,
        **setup,
        "sweep_s": round(sweep_s, 2),
        "jobs_deleted": deleted,
        "rows_per_s": round(2 * deleted / sweep_s) if sweep_s else None,
        "jobs_per_s": round(deleted / sweep_s) if sweep_s else None,
        "delete_batches": deletes.count,
        "file_delete_calls": file_deletes.calls,
        "file_delete_s": round(sum(file_deletes.by_batch.values()), 2),
        "file_delete_ms_per_batch_max": round(
            max(file_deletes.by_batch.values(), default=0) * 1000, 1
        ),
        **phase_figures("before", load, notifier, lag, phases),
        **phase_figures("during", load, notifier, lag, phases),
        "live_jobs": submitted,
        "live_failed": notifier.failed + load.errors,
        "live_succeeded": live_ok,
        "expired_jobs_left": old_jobs_left,
        "expired_images_left": old_images_left,
        "kept_jobs_left": kept_left,
    }
    if args.files:
        figures["expired_files_left"] = files_left
        figures["expired_job_dirs_left"] = dirs_left
    figures["ok"] = (
        old_jobs_left == 0
        and old_images_left == 0
        and kept_left == args.kept
        and live_ok == submitted
        and figures["live_failed"] == 0
        and files_left == 0
    )
    figures["load_avg"] = round(os.getloadavg()[0], 2)
    figures["python"] = c.python_version()
    figures["machine"] = c.machine()
    return figures


def main() -> None:
    """Parse flags, run, print the one JSON line."""
    args = parse_args()
    c.setup_logging(args.log_level)
    c.emit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
