"""Benchmark: fairness and the first answer under a burst, with a 2-second model.

The model is the loopback OpenAI fake in a process of its own (``bench_workers.py
--serve-provider``: ``FakeOpenAI`` with ``latency=--latency``, default 2 s, small ≈38 KB
PNGs). ``fake_provider_process.py`` has no latency knob, hence that helper.

Set-up (not measured): a fresh database; ``--users`` users who accepted the terms; the
worker running and idle, ``--concurrency`` model calls at once (default 16), per-user limit
``--per-user`` (default: as high as the global one, so only the queue order decides who
goes first):

- ``--db postgres`` (default): the worker is a separate ``imagebot run --role worker``
  process (the docker/compose.yaml layout); this process plays the bot: it submits and
  has no worker;
- ``--db sqlite``: the worker runs in this process beside the submits (the one-process
  layout SQLite is shipped with).

The burst: ``--jobs`` jobs, ``--jobs/--users`` per user, **user by user** (user 1's jobs
first, then user 2's, …), every request arriving at the same moment (t = 0) and handled
by ``--submitters`` concurrent calls of ``core.generation.submit`` (16: the Telegram
adapter's limit on commands past their first answer). Then wait until every job has
succeeded. Times come from the jobs table (``finished_at``: the result was handed to the
platform) against t = 0.

Figures:

- ``total_s`` and ``ratio_to_ideal``: the last job's end against jobs / concurrency x
  latency (62.5 s for the defaults);
- ``first_done_s_mean``/``_max``/``first_max_over_mean``: per user, t = 0 to the end of
  their first job. Fair queueing gives every user a turn per round: with 50 users and 16
  slots the first jobs end in rounds 1 to 4 (``first_done_fair_mean_s``/``_max_s``, ≈4.2
  and 8 s), while first-come-first-served would make the last user wait for everyone's
  whole batch (``first_done_fifo_mean_s``/``_max_s``, ≈33 and 62 s);
- ``first_wait_s_mean``/``_max``/``first_wait_max_over_mean``: per user, from their
  first job's creation (their first acknowledgement) to the end of their first job: the
  same question without the time the burst itself took to submit (ideal: about one
  latency, at most a few rounds);
- ``last_done_s_mean``/``_max``: the same for each user's last job;
- ``submit_ms_p50``/``_p99``/``_max``: the submit call, from its start to its return (the
  acknowledgement with the queue position); ``answer_s_p50``/``_p99``/``_max``: from t = 0
  to that return (also the wait for a free submit slot).

Run: ``.venv/bin/python benchmarks/bench_fairness.py [--db postgres|sqlite] [--jobs 500]
[--users 50] [--latency 2.0] [--concurrency 16] [--per-user N] [--submitters 16]
[--dump-jobs jobs.csv]``. Prints one JSON line; ``--dump-jobs`` also writes every job
(user, ``fair_seq``, created/started/finished since t = 0) in the order they started.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
from bench_workers import FakeProviderProcess, WorkerProcesses, load_average, worker_env


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--latency", type=float, default=2.0, help="model seconds per image")
    parser.add_argument("--concurrency", type=int, default=16, help="model calls at once")
    parser.add_argument(
        "--per-user", type=int, default=None, help="per-user limit (default: --concurrency)"
    )
    parser.add_argument(
        "--submitters", type=int, default=16, help="submit calls at once during the burst"
    )
    parser.add_argument("--pg-url", default=c.PG_URL)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--dump-jobs", type=Path, help="also write every job (user, fair_seq, times) as CSV here"
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def reference_first_done(users: int, per_user: int, slots: int, latency: float) -> dict[str, float]:
    """Per-user first-job end times under perfect round robin and under FIFO (user by user)."""
    fair = [math.ceil((u + 1) / slots) * latency for u in range(users)]
    fifo = [math.ceil((u * per_user + 1) / slots) * latency for u in range(users)]
    return {
        "first_done_fair_mean_s": round(statistics.mean(fair), 2),
        "first_done_fair_max_s": round(max(fair), 2),
        "first_done_fifo_mean_s": round(statistics.mean(fifo), 2),
        "first_done_fifo_max_s": round(max(fifo), 2),
    }


def burst_requests(jobs: int, users: int) -> list[Any]:
    """User by user: user 0's jobs, then user 1's, …"""
    per_user = math.ceil(jobs / users)
    requests: list[Any] = []
    for user in range(users):
        for seq in range(per_user):
            if len(requests) < jobs:
                requests.append(c.make_request(user, user * per_user + seq))
    return requests


async def burst(
    core: Any, requests: list[Any], submitters: int
) -> tuple[datetime, list[float], list[float]]:
    """Every request arrives at t = 0; ``submitters`` calls at once, in order. Returns t = 0
    (UTC), each call's duration and each answer's time since t = 0 (seconds)."""
    gate = asyncio.Semaphore(max(1, submitters))
    calls: list[float] = []
    answers: list[float] = []

    async def one(request: Any) -> None:
        async with gate:
            begun = time.perf_counter()
            sub = await core.generation.submit(request)
            ended = time.perf_counter()
        if not sub.created:
            raise RuntimeError(f"request {request.idempotency_key} was not queued")
        calls.append(ended - begun)
        answers.append(ended - start)

    t0 = datetime.now(UTC)
    start = time.perf_counter()
    await asyncio.gather(*(one(r) for r in requests))
    return t0, calls, answers


async def per_job(db: Any) -> list[tuple[str, float, float, float, int]]:
    """(user, created, started, finished, fair_seq) of every job, times as epoch seconds."""
    from sqlalchemy import text

    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT u.platform_user_id, j.created_at, j.started_at, j.finished_at, "
                    "j.state, j.fair_seq "
                    "FROM jobs j JOIN users u ON u.id = j.user_id"
                )
            )
        ).all()
    out = []
    for uid, created, started, finished, state, seq in rows:
        if state != "succeeded":
            raise RuntimeError(f"a job ended {state}")
        out.append((str(uid), _epoch(created), _epoch(started), _epoch(finished), int(seq)))
    return out


def _epoch(value: Any) -> float:
    if isinstance(value, str):  # SQLite through a text() query: naive UTC text
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


async def wait_all_done(db: Any, jobs: int, timeout: float, workers: Any = None) -> None:
    """Poll the jobs table until ``jobs`` jobs have ended."""
    async with asyncio.timeout(timeout):
        while True:
            states = await c.job_states(db)
            ended = sum(states.get(s, 0) for s in ("succeeded", "failed", "rejected", "cancelled"))
            if ended >= jobs:
                return
            if workers is not None and any(p.poll() is not None for p in workers.procs):
                raise RuntimeError("the worker process exited during the run")
            await asyncio.sleep(0.2)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, burst, wait, read the figures."""
    from bot.wiring import build_core
    from storage.database import Database

    per_user_limit = args.per_user or args.concurrency
    per_user_jobs = math.ceil(args.jobs / args.users)
    with (
        tempfile.TemporaryDirectory(prefix="imagebot-bench-fairness-") as tmp,
        FakeProviderProcess(latency=args.latency) as provider,
    ):
        workdir = Path(tmp)
        schema = c.new_schema_name() if args.db == "postgres" else None
        if schema:
            await c.create_schema(args.pg_url, schema)
            url = args.pg_url
        else:
            url = c.sqlite_url(workdir)
        settings = c.bench_settings(
            workdir,
            database_url=url,
            schema=schema,
            base_url=provider.base_url,
            partial_images=0,
            concurrency=args.concurrency,
            max_queued_per_user=max(per_user_jobs, 20),
            moderation=False,
        )
        settings = settings.model_copy(update={"per_user_concurrency": per_user_limit})
        db = Database(url, schema=schema, pool_size=max(10, args.submitters))
        workers: WorkerProcesses | None = None
        worker_problems: list[str] = []
        core = await build_core(settings, database=db, migrate=True)
        try:
            await c.onboard(core, [c.make_actor(u) for u in range(args.users)])
            requests = burst_requests(args.jobs, args.users)
            if schema:
                env = worker_env(
                    url=args.pg_url,
                    schema=schema,
                    data_dir=workdir / "data",
                    base_url=provider.base_url,
                    name="bench-fair",
                    concurrency=args.concurrency,
                    per_user=per_user_limit,
                )
                env["IMAGEBOT_PROVIDER_TIMEOUT_SECONDS"] = str(max(60.0, args.latency * 10))
                workers = WorkerProcesses([env], workdir)
                workers.__enter__()
                await asyncio.to_thread(workers.wait_ready)
            else:
                await core.worker.start(exclusive=core.exclusive_worker)
            load_start = load_average()
            t0, calls, answers = await burst(core, requests, args.submitters)
            await wait_all_done(db, len(requests), args.timeout, workers)
            rows = await per_job(db)
        finally:
            if workers is not None:
                workers.__exit__(None, None, None)
                worker_problems = workers.problems()
            await core.aclose()
            await db.dispose()
            if schema:
                await c.drop_schema(args.pg_url, schema)

    start = t0.timestamp()
    if args.dump_jobs:
        lines = ["user,fair_seq,created_s,started_s,finished_s"]
        for uid, created, started, finished, seq in sorted(rows, key=lambda r: r[2]):
            lines.append(
                f"{uid},{seq},{created - start:.3f},{started - start:.3f},{finished - start:.3f}"
            )
        args.dump_jobs.write_text("\n".join(lines) + "\n")
    by_user: dict[str, list[float]] = {}
    created_by_user: dict[str, list[float]] = {}
    for uid, created, _started, finished, _seq in rows:
        by_user.setdefault(uid, []).append(finished - start)
        created_by_user.setdefault(uid, []).append(created - start)
    firsts = [min(v) for v in by_user.values()]
    lasts = [max(v) for v in by_user.values()]
    # From each user's first queued job (their first acknowledgement) to their first result:
    # independent of how long the burst took to submit.
    first_waits = [min(by_user[u]) - min(created_by_user[u]) for u in by_user]
    total = max(lasts)
    ideal = len(rows) / args.concurrency * args.latency
    figures: dict[str, Any] = {
        "benchmark": "fairness",
        "db": args.db,
        "worker": "separate process" if args.db == "postgres" else "in this process",
        "jobs": len(rows),
        "users": args.users,
        "latency_s": args.latency,
        "concurrency": args.concurrency,
        "per_user_concurrency": per_user_limit,
        "submitters": args.submitters,
        "order": "user by user",
        "total_s": round(total, 2),
        "ideal_s": round(ideal, 2),
        "ratio_to_ideal": round(total / ideal, 3),
        "first_done_s_mean": round(statistics.mean(firsts), 2),
        "first_done_s_max": round(max(firsts), 2),
        "first_max_over_mean": round(max(firsts) / statistics.mean(firsts), 2),
        "first_wait_s_mean": round(statistics.mean(first_waits), 2),
        "first_wait_s_max": round(max(first_waits), 2),
        "first_wait_max_over_mean": round(max(first_waits) / statistics.mean(first_waits), 2),
        "last_done_s_mean": round(statistics.mean(lasts), 2),
        "last_done_s_max": round(max(lasts), 2),
        "last_max_over_mean": round(max(lasts) / statistics.mean(lasts), 2),
        **reference_first_done(args.users, per_user_jobs, args.concurrency, args.latency),
        "submit_ms_p50": round(percentile(calls, 50) * 1000, 1),
        "submit_ms_p99": round(percentile(calls, 99) * 1000, 1),
        "submit_ms_max": round(max(calls) * 1000, 1),
        "answer_s_p50": round(percentile(answers, 50), 3),
        "answer_s_p99": round(percentile(answers, 99), 3),
        "answer_s_max": round(max(answers), 3),
        "burst_s": round(max(answers), 2),
        "load_avg_start": load_start,
        "load_avg_end": load_average(),
        "python": c.python_version(),
        "machine": c.machine(),
    }
    if worker_problems:
        figures["worker_problems"] = worker_problems
    if provider.final.get("errors"):
        figures["provider_errors"] = provider.final["errors"]
    return figures


def main() -> None:
    """Parse flags, run, print the one JSON line."""
    args = parse_args()
    c.setup_logging(args.log_level)
    c.emit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
