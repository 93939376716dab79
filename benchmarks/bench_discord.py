"""Benchmark: the Discord adapter under a burst, through the loopback gateway.

Three processes: the loopback Discord (``tests/fakes/discord_server.py``: REST and the
gateway WebSocket; it dispatches the interactions and times every answer), the OpenAI
fake (``fake_provider_process.py``: ≈2.2 MB noisy PNGs, zero latency), and imagebot
itself: the real core, the real discord.py adapter, the real OpenAI provider. Neither
fake's CPU is counted. Each phase runs in a fresh imagebot process on a fresh database:

- ``baseline``: the same burst submitted straight to core (no Discord), workers running,
  results only counted: ``baseline_cpu_ms_per_job``, ``baseline_jobs_per_s``. What the
  adapter adds is ``adapter_cpu_ms_per_job`` = ``cpu_ms_per_job`` minus this.
- ``burst``: ``--burst`` (500) ``/imagine`` interactions dispatched at once by
  ``--users`` users. Measured: how long each waited for its defer (p50/p99/max; Discord
  drops an interaction not answered in 3 s) and for its delivered image (the result
  edited into the original response, file and buttons), jobs per second, and the CPU of
  the imagebot process per job (all of it: gateway, handlers, database, worker, model
  calls, moderation, uploads).
- ``inflight``: ``--inflight`` (100) interactions deferred and queued while the workers
  are held, then run to the end: the process's peak RSS.

The burst also runs the blocked-loop check (``_common.LoopWatch``): callbacks over
100 ms (``slow_callbacks``, ``slowest_callback_ms``, ``slowest_callback``; with the loop
thread's own CPU in them, ``slow_callbacks_cpu``, since on a shared machine a callback can
be slow because the thread was not scheduled), how late a 20 ms timer fires
(``loop_lag_*``), the garbage collector's pauses (``gc_*``) and discord.py's gateway
warnings (``gateway_warnings``: "Can't keep up", "heartbeat blocked"). The fake gateway
heartbeats every ``--heartbeat-ms`` (5 s by default, so that several fall inside the
burst; Discord's interval is 41.25 s).

Run: ``.venv/bin/python benchmarks/bench_discord.py [--db sqlite|postgres] [--burst N]
[--inflight N] [--users U] [--concurrency C] [--moderation default|on|off]
[--phases baseline,burst,inflight] [--loop-check watchdog|debug] [--heartbeat-ms MS]
[--no-gc-freeze]``. Prints one JSON line. The defaults are the shipped ones (worker
concurrency, moderation on). Targets (``loop_targets_met``): every interaction of the
burst deferred with p99 < 0.5 s, no callback over 100 ms, no gateway warning; and
(``targets_met``, with all phases) ``cpu_ms_per_job`` <= 15, ``inflight_peak_rss_mb`` < 150
(MiB).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

FAKE_DISCORD = "tests.fakes.discord_server"
GUILD = "800000000000000001"
TARGET_DEFER_P99_S = 0.5
TARGET_CPU_MS_PER_JOB = 15.0
TARGET_PEAK_RSS_MB = 150.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags (the ``--child-*`` ones are internal)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--inflight", type=int, default=100)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument(
        "--concurrency", type=int, default=None, help="worker concurrency (default: as shipped)"
    )
    parser.add_argument(
        "--loop-check",
        choices=("watchdog", "debug"),
        default="watchdog",
        help="how callbacks over 100 ms are found: a timer around every callback, or "
        "asyncio's debug mode (slow_callback_duration)",
    )
    parser.add_argument(
        "--heartbeat-ms",
        type=int,
        default=5000,
        help="the fake gateway's heartbeat interval (Discord's is 41250): short, so that "
        "several heartbeats fall inside the burst",
    )
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument(
        "--moderation",
        choices=("default", "on", "off"),
        default="default",
        help="screening through the provider's moderation endpoint (default: as shipped, on)",
    )
    parser.add_argument(
        "--phases",
        default="baseline,burst,inflight",
        help="which phases to run, comma-separated (default: all three)",
    )
    parser.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="freeze the start-up heap once started, as `imagebot run` does",
    )
    parser.add_argument("--pg-url", default=c.PG_URL)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument(
        "--child-phase", choices=("baseline", "burst", "inflight"), help=argparse.SUPPRESS
    )
    parser.add_argument("--child-workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-schema", help=argparse.SUPPRESS)
    parser.add_argument("--child-provider", help=argparse.SUPPRESS)
    parser.add_argument("--child-discord", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- the measured (child) process ---------------------------------------------------------------


async def run_child(args: argparse.Namespace) -> dict[str, Any]:
    """One phase in this process: build, connect, warm up, measure."""
    import aiohttp
    from pydantic import SecretStr

    from bot.discord.app import start
    from bot.memory import freeze_startup_heap, tune_malloc
    from bot.wiring import build_core
    from core.types import Actor
    from storage.database import Database
    from tests.fakes.discord_server import TOKEN

    tune_malloc()  # as `imagebot` does at start-up
    discord_urls = json.loads(args.child_discord)
    workdir: Path = args.child_workdir
    workdir.mkdir(parents=True, exist_ok=True)
    if args.db == "postgres":
        url, schema = args.pg_url, args.child_schema
        await c.create_schema(url, schema)
    else:
        url, schema = c.sqlite_url(workdir), None
    count = args.inflight if args.child_phase == "inflight" else args.burst
    settings = c.bench_settings(
        workdir,
        database_url=url,
        schema=schema,
        base_url=args.child_provider,
        partial_images=0,
        concurrency=args.concurrency or _shipped("worker_concurrency"),
        max_queued_per_user=max(count, 20),
        moderation={"default": None, "on": True, "off": False}[args.moderation],
    ).model_copy(
        update={
            "discord_token": SecretStr(TOKEN),
            "discord_api_url": discord_urls["api_url"],
            "discord_gateway_url": discord_urls["gateway_url"],
            "discord_shard_count": 1,
            "per_user_concurrency": args.concurrency or _shipped("worker_concurrency"),
        }
    )
    db = Database(settings.database_url, schema=settings.database_schema, pool_size=10)
    core = await build_core(settings, database=db, migrate=True, poll_interval=1.0)
    users = [Actor("discord", str(700_000 + u)) for u in range(args.users)]
    await c.onboard(core, [*users, Actor("discord", "699999")])
    if args.child_phase == "baseline":
        try:
            return await _baseline(core, count, args)
        finally:
            await core.aclose()
            await db.dispose()
            if args.db == "postgres":
                await c.drop_schema(args.pg_url, schema or "")
    stop = await start(core)
    rss_started = c.rss_mb()
    control = discord_urls["base_url"] + "/_control"
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900))

    async def burst(n: int, n_users: int, user_base: int = 700_000) -> dict[str, Any]:
        async with session.post(
            f"{control}/burst",
            json={"count": n, "users": n_users, "guild_id": GUILD, "user_base": user_base},
        ) as response:
            return await response.json()

    try:
        await core.worker.start(exclusive=core.exclusive_worker)
        await burst(args.warmup, 1, user_base=699_999)  # imports, connections, caches
        if args.gc_freeze:
            freeze_startup_heap()  # as `imagebot run` does once started
        else:
            gc.collect()
        if args.child_phase == "inflight":
            await core.worker.stop(grace=10)
            held = asyncio.create_task(burst(count, args.users))
            # Every interaction deferred and queued while no worker runs...
            await _wait_queued(db, count)
            await core.worker.start(exclusive=core.exclusive_worker)
            report = await held  # ...then all of them delivered
            return {
                "inflight": count,
                "inflight_delivered": sum(1 for s in report["final_s"] if s is not None),
                "inflight_peak_rss_mb": round(c.peak_rss_mb(), 1),
            }
        watch = c.LoopWatch(args.loop_check).start()
        begin = c.CpuMark()
        report = await burst(count, args.users)
        end = c.CpuMark()
        watch.stop()
    finally:
        await session.close()
        await stop()
        await core.aclose()
        await db.dispose()
        if args.db == "postgres":
            await c.drop_schema(args.pg_url, schema or "")
    defers = sorted(s for s in report["defer_s"] if s is not None)
    finals = sorted(s for s in report["final_s"] if s is not None)
    return {
        "burst": count,
        "burst_deferred": len(defers),
        "burst_delivered": len(finals),
        "defer_p50_ms": _ms(_pct(defers, 50)),
        "defer_p99_ms": _ms(_pct(defers, 99)),
        "defer_max_ms": _ms(defers[-1] if defers else None),
        "delivered_p50_s": _round(_pct(finals, 50)),
        "delivered_p99_s": _round(_pct(finals, 99)),
        "jobs_per_s": round(len(finals) / max(report["wall_s"], 1e-9), 1),
        "cpu_ms_per_job": c.ms_per(end.cpu - begin.cpu, max(len(finals), 1)),
        "loop_thread_cpu_ms_per_job": c.ms_per(end.loop_cpu - begin.loop_cpu, max(len(finals), 1)),
        "burst_peak_rss_mb": round(c.peak_rss_mb(), 1),
        "rss_after_start_mb": round(rss_started, 1),
        "fake_errors": report["errors"],
        **watch.figures(),
    }


def _shipped(name: str) -> Any:
    from core.settings import Settings

    return Settings.model_fields[name].default


async def _baseline(core: Any, count: int, args: argparse.Namespace) -> dict[str, Any]:
    """The same burst without Discord: every submit at once through core, the workers
    running, results only counted. What the adapter adds is the difference."""
    notifier = c.CountingNotifier()
    core.notifier.register(c.PLATFORM, notifier)
    await core.worker.start(exclusive=core.exclusive_worker)
    warm = [c.make_request(0, i, prefix="warm") for i in range(args.warmup)]
    await c.onboard(core, [c.make_actor(0, prefix="warm")])
    notifier.expect(len(warm))
    await c.submit_all(core, warm, 1)
    await notifier.wait(timeout=120)
    gc.collect()
    requests = c.round_robin_requests(count, args.users)
    await c.onboard(core, [c.make_actor(u) for u in range(args.users)])
    notifier.expect(count)
    begin = c.CpuMark()
    await c.submit_all(core, requests, count)
    await notifier.wait(timeout=900)
    end = c.CpuMark()
    return {
        "baseline_jobs_per_s": round(count / (end.wall - begin.wall), 1),
        "baseline_cpu_ms_per_job": c.ms_per(end.cpu - begin.cpu, count),
        "baseline_peak_rss_mb": round(c.peak_rss_mb(), 1),
    }


async def _wait_queued(db: Any, count: int, timeout: float = 120.0) -> None:
    """Until ``count`` jobs wait in the queue (read from the database)."""
    async with asyncio.timeout(timeout):
        while (await c.job_states(db)).get("queued", 0) < count:
            await asyncio.sleep(0.05)


def _pct(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# --- the parent: the fakes, one child per phase, the report ------------------------------------


class DiscordProcess:
    """The loopback Discord in a process of its own; a context manager."""

    def __init__(self, heartbeat_ms: int) -> None:
        self.heartbeat_ms = heartbeat_ms

    def __enter__(self) -> DiscordProcess:
        heartbeat_ms = self.heartbeat_ms
        self.proc = subprocess.Popen(
            [sys.executable, "-m", FAKE_DISCORD, "--heartbeat-ms", str(heartbeat_ms)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=c.ROOT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.__exit__()
            raise RuntimeError("the fake Discord process did not start")
        self.urls: dict[str, str] = json.loads(line)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.proc.communicate(timeout=10)  # closing stdin stops it
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_phase(args: argparse.Namespace, phase: str, workdir: Path, provider: str) -> dict:
    """One phase in a fresh imagebot process (and a fresh fake Discord)."""
    schema = c.new_schema_name() if args.db == "postgres" else None
    with DiscordProcess(args.heartbeat_ms) as discord_fake:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--db", args.db, "--burst", str(args.burst), "--inflight", str(args.inflight),
            "--users", str(args.users), "--concurrency", str(args.concurrency or 0),
            "--loop-check", args.loop_check,
            "--gc-freeze" if args.gc_freeze else "--no-gc-freeze",
            "--warmup", str(args.warmup), "--pg-url", args.pg_url,
            "--moderation", args.moderation,
            "--log-level", args.log_level, "--child-phase", phase,
            "--child-workdir", str(workdir / phase), "--child-provider", provider,
            "--child-discord", json.dumps(discord_fake.urls),
        ]  # fmt: skip
        if schema:
            cmd += ["--child-schema", schema]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, cwd=c.ROOT, check=False)
    lines = [line for line in done.stdout.decode().splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the {phase} phase failed (exit {done.returncode})")
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    """Run both phases and print the figures as one JSON line."""
    args = parse_args(argv)
    c.setup_logging(args.log_level)
    if args.child_phase:
        c.emit(asyncio.run(run_child(args)))
        return 0
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    figures: dict[str, Any] = {
        "benchmark": "discord",
        "db": args.db,
        "machine": c.machine(),
        "python": c.python_version(),
        "users": args.users,
        "worker_concurrency": args.concurrency or _shipped("worker_concurrency"),
        "heartbeat_ms": args.heartbeat_ms,
        "moderation": args.moderation,
    }
    with tempfile.TemporaryDirectory(prefix="bench-discord-") as tmp, c.ProviderProcess() as p:
        for phase in ("baseline", "burst", "inflight"):
            if phase in phases:
                figures |= run_phase(args, phase, Path(tmp), p.base_url)
    if "baseline" in phases and "burst" in phases:
        figures["adapter_cpu_ms_per_job"] = round(
            figures["cpu_ms_per_job"] - figures["baseline_cpu_ms_per_job"], 2
        )
    if "burst" in phases:
        figures["loop_targets_met"] = bool(
            figures["burst_deferred"] == args.burst
            and (figures["defer_p99_ms"] or 1e9) < TARGET_DEFER_P99_S * 1000
            and figures["slow_callbacks"] == 0
            and figures["gateway_warnings"] == 0
        )
    if set(phases) >= {"burst", "inflight"}:
        figures["targets_met"] = bool(
            figures["loop_targets_met"]
            and figures["cpu_ms_per_job"] <= TARGET_CPU_MS_PER_JOB
            and figures["inflight_peak_rss_mb"] < TARGET_PEAK_RSS_MB
        )
    c.emit(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
