"""Benchmark (b): throughput that follows the provider's rate limit, and honest ETAs.

The OpenAI fake runs in this process (``tests/fakes/openai_server.py``, small images) with
a latency of ``--latency`` ± ``--jitter`` seconds per image and an images-per-window limit
(``FakeOpenAI.rate_limit``: a token bucket that answers 429 with ``retry-after`` above
it, and the real ``x-ratelimit-*-requests`` headers). imagebot is the real core built by
``bot.wiring.build_core`` with the **shipped defaults** (moderation on, previews on, the
limiter on; only credits, queue and per-user rate limits lifted as in every benchmark) and
the real OpenAI provider.

Time is compressed by ``--scale`` (default 10): the issue's 20 s ± 10 s and 60 images a
minute become 2 s ± 1 s and 60 images per 6 s. The core learns the limit from headers
alone (its window stays a minute; the refill rate is read from ``reset``).

1. warm-up: ``--warmup`` jobs (the lane learns the limit and the call time), then wait a
   provider window so the bucket is full again;
2. ``--users`` users submit one job each at t = 0 (16 concurrent submit calls, as the
   Telegram adapter); each acknowledgement's ETA is kept;
3. every job is awaited. Figures:

- ``accepted_per_s`` / ``provider_per_s``: the rate the provider let requests in once its
  bucket was empty (from the first request beyond the bucket to the last), against its
  limit: ``throughput_ratio`` (target 0.95–1.05);
- ``total_s`` against ``ideal_s`` = (jobs − bucket) / rate + mean latency;
- ``failed`` (target 0), ``rate_limited`` (429s the fake sent), ``peak_in_flight``;
- ``eta_error_*``: |ETA − actual wait| / actual wait over the jobs, ``eta_within_25pct``
  the share within 25 % (target: all); ``eta_within_25pct_waited`` the same over the
  jobs that waited beyond the longest call (latency + jitter), i.e. for the bucket: a job
  that starts at once waits one call, ± the jitter (± 50 % here), which no ETA foresees.

Run: ``.venv/bin/python benchmarks/bench_provider_limit.py [--users 300] [--scale 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c

from bot.wiring import build_core
from core.types import Delivered, Failed, JobEvent, ReplyTarget
from tests.fakes.openai_server import FakeOpenAI


class Timed:
    """A notifier that keeps when each job ended."""

    def __init__(self) -> None:
        self.done: dict[str, float] = {}
        self.failed = 0
        self.target = 0
        self.reached = asyncio.Event()

    async def notify(self, target: ReplyTarget, event: JobEvent) -> None:
        if isinstance(event, Delivered | Failed):
            self.done[event.job_id] = time.monotonic()
            if isinstance(event, Failed):
                self.failed += 1
            if len(self.done) >= self.target:
                self.reached.set()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    scale = args.scale
    latency = args.latency / scale
    jitter = args.jitter / scale
    window = 60.0 / scale
    fake = FakeOpenAI()
    await fake.start()
    fake.latency = latency
    fake.latency_jitter = jitter
    fake.rate_limit(args.limit, window=window)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        settings = c.bench_settings(
            workdir,
            database_url=c.sqlite_url(workdir),
            schema=None,
            base_url=fake.base_url,
            partial_images=2,
            concurrency=64,
            max_queued_per_user=1000,
        )
        settings = settings.model_copy(update={"provider_max_retries": 3})
        core = await build_core(settings, migrate=True)
        notes = Timed()
        core.notifier.register(c.PLATFORM, notes)
        actors = [c.make_actor(i) for i in range(args.users)]
        warm = [c.make_actor(i, prefix="warm") for i in range(args.warmup)]
        await c.onboard(core, actors + warm)
        await core.worker.start(exclusive=True)
        try:
            notes.target = args.warmup
            for i in range(args.warmup):
                await core.generation.submit(c.make_request(i, 0, prefix="warm"))
            await asyncio.wait_for(notes.reached.wait(), 120)
            await asyncio.sleep(window)  # the provider's bucket is full again
            notes.done.clear()
            notes.reached.clear()
            notes.target = args.users
            fake.accepted_at.clear()
            limited_before = fake.rate_limited
            submitted: dict[str, tuple[float, float | None]] = {}
            positions: dict[str, int] = {}
            sampler_peak = 0

            async def sample() -> None:
                nonlocal sampler_peak
                while True:
                    sampler_peak = max(sampler_peak, core.worker.capacity.in_flight)
                    await asyncio.sleep(0.01)

            sampler = asyncio.create_task(sample())
            t0 = time.monotonic()
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(args.users):
                queue.put_nowait(i)

            async def submitter() -> None:
                while not queue.empty():
                    i = queue.get_nowait()
                    sub = await core.generation.submit(c.make_request(i, 1))
                    submitted[sub.job.id] = (time.monotonic(), sub.job.eta_seconds)
                    positions[sub.job.id] = sub.job.queue_position or 0

            await asyncio.gather(*(submitter() for _ in range(16)))
            submit_s = time.monotonic() - t0
            await asyncio.wait_for(notes.reached.wait(), 60 * 30 / scale + 600)
            total = max(notes.done.values()) - t0
            sampler.cancel()
        finally:
            await core.aclose()
            await fake.stop()
    accepted = sorted(fake.accepted_at)
    beyond = accepted[args.limit :]
    accepted_per_s = (len(beyond) - 1) / (beyond[-1] - beyond[0]) if len(beyond) > 2 else None
    provider_per_s = args.limit / window
    errors = []
    waited = []  # jobs that waited for the bucket: beyond the longest call
    no_eta = 0
    for job_id, (at, eta) in submitted.items():
        actual = notes.done[job_id] - at
        if eta is None:
            no_eta += 1
            continue
        errors.append(abs(eta - actual) / max(actual, 1e-6))
        if actual > latency + jitter:
            waited.append(errors[-1])
        if args.dump:
            print(
                positions[job_id],
                round(at - t0, 2),
                round(eta, 2),
                round(actual, 2),
                file=sys.stderr,
            )
    errors.sort()
    ideal = max(0, args.users - args.limit) / provider_per_s + latency
    return {
        "benchmark": "provider_limit",
        "defaults": "shipped (moderation on, previews 2, limiter on)",
        "time_scale": scale,
        "users": args.users,
        "jobs": args.users,
        "provider_latency_s": f"{latency} ± {jitter}",
        "provider_limit": f"{args.limit} images / {window} s",
        "provider_per_s": round(provider_per_s, 3),
        "accepted_per_s": round(accepted_per_s, 3) if accepted_per_s else None,
        "throughput_ratio": round(accepted_per_s / provider_per_s, 3) if accepted_per_s else None,
        "total_s": round(total, 2),
        "ideal_s": round(ideal, 2),
        "total_over_ideal": round(total / ideal, 3),
        "submit_s": round(submit_s, 2),
        "failed": notes.failed,
        "rate_limited": fake.rate_limited - limited_before,
        "peak_in_flight": sampler_peak,
        "eta_missing": no_eta,
        "eta_error_p50": round(statistics.median(errors), 3) if errors else None,
        "eta_error_p90": round(errors[int(len(errors) * 0.9)], 3) if errors else None,
        "eta_error_max": round(errors[-1], 3) if errors else None,
        "eta_within_25pct": round(sum(e <= 0.25 for e in errors) / len(submitted), 3),
        "eta_within_25pct_waited": (
            round(sum(e <= 0.25 for e in waited) / len(waited), 3) if waited else None
        ),
        "python": c.python_version(),
        "machine": c.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--limit", type=int, default=60, help="images per (scaled) minute")
    parser.add_argument("--latency", type=float, default=20.0, help="seconds, unscaled")
    parser.add_argument("--jitter", type=float, default=10.0, help="± seconds, unscaled")
    parser.add_argument("--scale", type=float, default=10.0, help="time compression")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument(
        "--dump", action="store_true", help="per job: position, submitted, ETA, wait"
    )
    args = parser.parse_args()
    c.setup_logging()
    c.emit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
