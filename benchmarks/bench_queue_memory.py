"""Benchmark: the process's memory with 1,000 queued jobs, and after running them all.

The model is the loopback OpenAI fake in a separate process (``fake_provider_process.py``,
realistic ≈2.2 MB noisy 1024x1024 PNGs), reached through the real ``OpenAIImageModel``
with ``partial_images=0``. This process is the imagebot process: it builds the core on a
fresh database, submits ``--jobs`` jobs from ``--users`` users (worker stopped), then
starts the worker and waits until every job is delivered. The platform notifier only
counts events.

Reported (MB): ``baseline_rss_mb`` (after imports and building the core),
``peak_rss_after_submit_mb`` (``ru_maxrss`` with every job queued),
``peak_rss_after_run_mb`` (``ru_maxrss`` once all are delivered; the process's peak) and
the current RSS at each point. Images are never kept in memory for queued or finished
jobs, so the figures should not grow with the number of jobs.

Run: ``.venv/bin/python benchmarks/bench_queue_memory.py [--db sqlite|postgres]
[--jobs N] [--users U] [--moderation default|on|off]``. Prints one JSON line.
Target: ``peak_rss_after_run_mb`` < 150.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

from bot.wiring import build_core
from storage.database import Database

TARGET_PEAK_RSS_MB = 150.0


async def run(args: argparse.Namespace, workdir: Path, base_url: str) -> dict[str, Any]:
    """Build, submit, run; return the figures."""
    from bot.memory import tune_malloc

    tune_malloc()  # as `imagebot` does at start-up
    schema = c.new_schema_name() if args.db == "postgres" else None
    if schema:
        await c.create_schema(args.pg_url, schema)
    try:
        url = args.pg_url if schema else c.sqlite_url(workdir)
        settings = c.bench_settings(
            workdir,
            database_url=url,
            schema=schema,
            base_url=base_url,
            partial_images=0,
            concurrency=args.concurrency,
            max_queued_per_user=args.jobs,
            moderation={"default": None, "on": True, "off": False}[args.moderation],
        )
        moderation = c.moderation_enabled(settings)
        db = Database(settings.database_url, schema=settings.database_schema)
        core = await build_core(settings, database=db, migrate=True, poll_interval=1.0)
        notifier = c.CountingNotifier()
        core.notifier.register(c.PLATFORM, notifier)
        try:
            await c.onboard(core, [c.make_actor(u) for u in range(args.users)])
            gc.collect()
            baseline_rss = c.rss_mb()
            baseline_peak = c.peak_rss_mb()

            requests = c.round_robin_requests(args.jobs, args.users)
            start = time.perf_counter()
            await c.submit_all(core, requests, args.submitters)
            submit_s = time.perf_counter() - start
            del requests
            queued = (await c.job_states(db)).get("queued", 0)
            gc.collect()
            after_submit_rss = c.rss_mb()
            after_submit_peak = c.peak_rss_mb()

            notifier.expect(args.jobs)
            start = time.perf_counter()
            await core.worker.start(exclusive=core.exclusive_worker)
            await notifier.wait(timeout=900)
            await core.worker.stop(grace=60)
            run_s = time.perf_counter() - start
            states = await c.job_states(db)
            gc.collect()
            after_run_rss = c.rss_mb()
            after_run_peak = c.peak_rss_mb()
        finally:
            await core.aclose()
            await db.dispose()
    finally:
        if schema:
            await c.drop_schema(args.pg_url, schema)

    if states != {"succeeded": args.jobs}:
        c.log.warning("unexpected job states %s", states)
    return {
        "benchmark": "queue_memory",
        "db": args.db,
        "jobs": args.jobs,
        "users": args.users,
        "concurrency": args.concurrency,
        "moderation": moderation,
        "queued_after_submit": queued,
        "baseline_rss_mb": round(baseline_rss, 1),
        "baseline_peak_rss_mb": round(baseline_peak, 1),
        "rss_after_submit_mb": round(after_submit_rss, 1),
        "peak_rss_after_submit_mb": round(after_submit_peak, 1),
        "rss_after_run_mb": round(after_run_rss, 1),
        "peak_rss_after_run_mb": round(after_run_peak, 1),
        "kb_per_queued_job": round((after_submit_rss - baseline_rss) * 1024 / args.jobs, 2),
        "delivered": notifier.delivered,
        "failed": notifier.failed,
        "states_ok": states == {"succeeded": args.jobs},
        "submit_s": round(submit_s, 1),
        "run_s": round(run_s, 1),
        "target_peak_rss_mb": TARGET_PEAK_RSS_MB,
        "meets_target": after_run_peak < TARGET_PEAK_RSS_MB,
        "python": c.python_version(),
        "machine": c.machine(),
    }


def main() -> None:
    """Parse flags, start the provider process, run, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=4, help="worker concurrency")
    parser.add_argument("--submitters", type=int, default=4, help="concurrent submit calls")
    parser.add_argument(
        "--moderation",
        choices=("default", "on", "off"),
        default="default",
        help="screening with the provider's moderation endpoint (default: the shipped setting)",
    )
    parser.add_argument("--pg-url", default=c.PG_URL)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    c.setup_logging(args.log_level)
    with (
        tempfile.TemporaryDirectory(prefix="imagebot-bench-") as tmp,
        c.ProviderProcess() as provider,
    ):
        figures = asyncio.run(run(args, Path(tmp), provider.base_url))
    if provider.final.get("errors"):
        figures["provider_errors"] = provider.final["errors"]
    c.emit(figures)


if __name__ == "__main__":
    main()
