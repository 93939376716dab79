"""Benchmark: the whole bot through Telegram, with and without Telegram's rate limits.

Three processes per mode, so each one's CPU and memory are its own:

- the OpenAI fake (``fake_provider_process.py``): zero latency, realistic ≈2.2 MB PNGs;
- the Telegram fake (this file, ``--child-fake``): ``tests/fakes/telegram_server.py``
  (files and calls not kept), plus a small control API that pushes bursts of ``/imagine``
  updates and times, for each command, the bot's first answer (the status message, which
  replies to it) and the delivered image (the photo replying to it);
- imagebot (this file, ``--child-bot``): the real core on SQLite with the shipped
  settings except what would stop a benchmark (credits, queue and rate limits), the real
  python-telegram-bot adapter long polling the fake, the worker. The users are
  registered before anything is measured (returning users). Mode ``free`` runs with the
  shipped moderation, rate limiter (``AIORateLimiter``), partial images and worker
  concurrency unless told otherwise (``--no-moderation``, ``--no-limiter``,
  ``--partial-images 0``, ``--concurrency``; ``--lean`` turns the first three off).

Phases in the imagebot process (mode ``free``: no rate limiter):

1. warm-up (not measured); ``rss_ready_mib`` is the memory before it;
2. ``throughput``: ``--users`` users × ``--per-user`` commands at once: jobs per second
   (first update to last delivered photo), CPU per job (process CPU, every thread);
3. ``in_flight``: ``--in-flight`` users with one command each at once: peak memory;
4. ``burst``: ``--burst`` commands at once (one per user): time from update to the first
   answer and to the delivered image (p50/p99).

Mode ``limited`` (``AIORateLimiter``, Telegram's 30 messages a second): the burst again,
with the shipped defaults (worker concurrency, moderation on, partial images; the
``--concurrency`` and ``--moderation`` flags apply only with ``--no-limited-defaults``);
its duration is compared with the bound the limit sets: the calls that count (every call
naming a chat) beyond the limiter's initial allowance of 30, at 30 a second. Also
reported: Telegram calls per job, and the blocked-loop check (``limited_slow_callbacks``,
``limited_slowest_callback_ms``: callbacks over 100 ms, see ``_common.LoopWatch``).

Run: ``.venv/bin/python benchmarks/bench_telegram.py [--mode free|limited|both] [--lean]``
(``--throughput-only``: mode free without the in-flight and burst phases; ``--db postgres``:
mode free on a fresh PostgreSQL schema; ``--no-uvloop``: asyncio's loop). The line also
gives the SQL statements and committed transactions per job (``BENCH_SQL_TOP=1`` lists the
statements on stderr, ``BENCH_CPROFILE=<file>`` profiles the throughput phase).
Prints one JSON line. Targets: free (``--lean``): ≥ 50 jobs/s, ≤ 13 ms CPU per job,
≤ 150 MiB with 100 users in flight, burst first answer p99 < 1 s; limited: burst within 5%
of the bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _common as c

TOKEN = "123456:BENCH-token-abcdefghijklmnopqrstuvwxyz0123"
LIMIT_PER_SECOND = 30
FIRST_USER = 100_000
TARGETS = {
    "jobs_per_s": 50,
    "cpu_ms_per_job": 13,
    "in_flight_peak_mib": 150,
    "burst_first_answer_p99_ms": 1000,
    "limited_within": 1.05,
}


def _settings_fields() -> set[str]:
    from core.settings import Settings

    return set(Settings.model_fields)


def _shipped(name: str) -> Any:
    """The shipped default of one setting."""
    from core.settings import Settings

    return Settings.model_fields[name].default


def _loop_factory(args: argparse.Namespace) -> Any:
    """The event loop of the imagebot process: uvloop when chosen and installed."""
    if args.child_bot == "limited" or not args.uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags (the ``--child-*`` ones are internal)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("free", "limited", "both"), default="both")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--per-user", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=100)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--limited-burst", type=int, default=500)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=_shipped("worker_concurrency"),
        help="worker concurrency (default: the shipped setting)",
    )
    parser.add_argument(
        "--moderation",
        action=argparse.BooleanOptionalAction,
        default=_shipped("moderation"),
        help="screen with the provider's moderation endpoint (default: the shipped setting)",
    )
    parser.add_argument(
        "--limiter",
        action=argparse.BooleanOptionalAction,
        default=_shipped("telegram_rate_limit"),
        help="mode free: python-telegram-bot's rate limiter (default: the shipped setting)",
    )
    parser.add_argument(
        "--partial-images",
        type=int,
        default=_shipped("partial_images"),
        help="mode free: partial images (previews) per job (default: the shipped setting)",
    )
    parser.add_argument(
        "--uvloop",
        action=argparse.BooleanOptionalAction,
        default=_shipped("uvloop") if "uvloop" in _settings_fields() else False,
        help="mode free: run imagebot on uvloop (default: the shipped setting)",
    )
    parser.add_argument(
        "--lean",
        action="store_true",
        help="mode free: moderation, limiter and previews off (the CPU target's configuration)",
    )
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="mode free: the database (postgres: a fresh schema on --pg-url, dropped after)",
    )
    parser.add_argument("--pg-url", default=c.PG_URL)
    parser.add_argument("--child-schema", help=argparse.SUPPRESS)
    parser.add_argument(
        "--throughput-only",
        action="store_true",
        help="mode free: only the throughput phase (no in-flight or burst phase)",
    )
    parser.add_argument(
        "--limited-defaults",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="mode limited: the shipped worker concurrency, moderation and partial images "
        "(--concurrency and --moderation apply to it only with --no-limited-defaults)",
    )
    parser.add_argument(
        "--loop-check",
        choices=("watchdog", "debug"),
        default="watchdog",
        help="mode limited: how callbacks over 100 ms are found (see _common.LoopWatch)",
    )
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--child-fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-bot", choices=("free", "limited"), help=argparse.SUPPRESS)
    parser.add_argument("--child-workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-telegram", help=argparse.SUPPRESS)
    parser.add_argument("--child-control", help=argparse.SUPPRESS)
    parser.add_argument("--child-openai", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.lean:
        args.moderation, args.limiter, args.partial_images = False, False, 0
    return args


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, in the values' unit, rounded."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 1)


# --- the Telegram fake process ------------------------------------------------------------------


async def serve_fake() -> None:
    """The fake Bot API plus a control API; prints ``{"base_url", "control"}``."""
    from aiohttp import web

    from tests.fakes.telegram_server import FakeTelegram, FakeUser

    fake = FakeTelegram(TOKEN, keep_files=False, keep_calls=False)
    await fake.start()
    commands: dict[tuple[int, int], dict[str, Any]] = {}
    phases: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] = {}

    statuses: dict[tuple[int, int], dict[str, Any]] = {}  # status message -> its command

    def on_call(call: Any) -> None:
        if not call.ok or call.chat_id is None:
            return
        phase = current.get("phase")
        if phase is not None:
            phases[phase]["calls"] += 1
        reply = call.params.get("reply_parameters")
        if call.method == "editMessageMedia" and "reply_markup" in call.params:
            # The status message showing a preview, edited into the result.
            entry = statuses.get((call.chat_id, int(call.params.get("message_id", 0))))
        elif isinstance(reply, dict):
            entry = commands.get((call.chat_id, int(reply.get("message_id", 0))))
            if entry is not None and call.method == "sendMessage" and "answered" not in entry:
                result = call.result if isinstance(call.result, dict) else {}
                statuses[(call.chat_id, int(result.get("message_id", 0)))] = entry
        else:
            return
        if entry is None:
            return
        now = time.monotonic()
        entry.setdefault("answered", now)
        delivery = call.method in ("sendPhoto", "sendDocument", "sendMediaGroup") or (
            call.method == "editMessageMedia"
        )
        if delivery and "delivered" not in entry:
            entry["delivered"] = now
            info = phases[entry["phase"]]
            info["delivered"] += 1
            if info["delivered"] >= info["count"]:
                info["done"].set()

    def on_serve(batch: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        for update in batch:
            message = update.get("message") or {}
            key = (int(message.get("chat", {}).get("id", 0)), int(message.get("message_id", 0)))
            entry = commands.get(key)
            if entry is not None:
                entry.setdefault("served", now)

    fake.on_call = on_call
    fake.on_serve = on_serve

    async def send(request: web.Request) -> web.Response:
        body = await request.json()
        name = body["phase"]
        info = phases[name] = {
            "count": body["users"] * body["per_user"],
            "delivered": 0,
            "calls": 0,
            "done": asyncio.Event(),
            "start": time.monotonic(),
        }
        current["phase"] = name
        # The same people across phases (registered by the imagebot process beforehand).
        users = [FakeUser(FIRST_USER + i, f"u{i}") for i in range(body["users"])]
        for seq in range(body["per_user"]):
            for user in users:
                message = fake.send_text(
                    user, fake.private_chat(user), f"/imagine a red fox in snow, take {seq}"
                )
                commands[(user.id, message["message_id"])] = {
                    "pushed": time.monotonic(),
                    "phase": name,
                }
        info["pushed"] = time.monotonic()
        return web.json_response({"count": info["count"]})

    async def wait(request: web.Request) -> web.Response:
        name = request.match_info["phase"]
        info = phases[name]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(info["done"].wait(), float(request.query.get("timeout", "300")))
        await asyncio.sleep(float(request.query.get("settle", "0.5")))  # trailing calls
        mine = [e for e in commands.values() if e["phase"] == name]
        if info["delivered"] < info["count"]:
            missing = [e for e in mine if "delivered" not in e]
            unanswered = [e for e in missing if "answered" not in e]
            c.log.warning(
                "phase %s: %s not delivered, %s unanswered", name, len(missing), len(unanswered)
            )
        first = [1000 * (e["answered"] - e["pushed"]) for e in mine if "answered" in e]
        served = [1000 * (e["served"] - e["pushed"]) for e in mine if "served" in e]
        done = [1000 * (e["delivered"] - e["pushed"]) for e in mine if "delivered" in e]
        last = max((e["delivered"] for e in mine if "delivered" in e), default=time.monotonic())
        return web.json_response(
            {
                "count": info["count"],
                "delivered": info["delivered"],
                "wall_s": last - info["start"],
                "calls": info["calls"],
                "first_answer_ms": first,
                "served_ms": served,
                "delivered_ms": done,
            }
        )

    control = web.Application()
    control.router.add_post("/send", send)
    control.router.add_get("/wait/{phase}", wait)
    runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(
        json.dumps({"base_url": fake.base_url, "control": f"http://127.0.0.1:{port}"}), flush=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)
    await stop.wait()
    await runner.cleanup()
    await fake.stop()


# --- the imagebot process ---------------------------------------------------------------------


async def run_bot(args: argparse.Namespace) -> dict[str, Any]:
    """Start the bot against both fakes and run the phases of one mode."""
    from aiohttp import ClientSession, ClientTimeout

    from bot.telegram.app import TelegramAdapter
    from bot.wiring import build_core
    from core.settings import Settings

    limited = args.child_bot == "limited"
    workdir: Path = args.child_workdir
    url, schema = c.sqlite_url(workdir), None
    if args.child_schema and not limited:
        url, schema = args.pg_url, args.child_schema
        await c.create_schema(url, schema)
    concurrency, moderation, partials = args.concurrency, args.moderation, args.partial_images
    if limited:
        partials = 0
        if args.limited_defaults:
            concurrency, moderation, partials = _shipped_limited()
    base = c.bench_settings(
        workdir,
        database_url=url,
        schema=schema,
        base_url=args.child_openai,
        partial_images=partials,
        concurrency=concurrency,
        max_queued_per_user=1000,
        moderation=moderation,
    )
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        **{
            **base.model_dump(),
            "openai_api_key": c.API_KEY,
            "require_terms": False,
            "telegram_token": TOKEN,
            "telegram_api_url": args.child_telegram,
            "telegram_rate_limit": limited or args.limiter,
        },
    )
    from storage.database import Database

    db = Database(settings.database_url, schema=settings.database_schema)
    core = await build_core(settings, database=db, poll_interval=0.2)
    sql = c.SqlCounter(db)
    if os.environ.get("BENCH_SQL_TOP"):  # which statements, most frequent first (stderr)
        from collections import Counter

        from sqlalchemy import event

        seen: Counter[str] = Counter()
        event.listen(
            db.engine.sync_engine,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_a: seen.update([" ".join(statement.split())[:110]]),
        )
    from core.types import Actor

    # Returning users: registered before anything is measured.
    for i in range(max(args.users, args.in_flight, args.burst, args.limited_burst)):
        await core.users.register(Actor("telegram", str(FIRST_USER + i), f"u{i}"))
    adapter = TelegramAdapter(core)
    await adapter.start()
    await core.worker.start(exclusive=core.exclusive_worker)
    if limited:
        from bot.memory import freeze_startup_heap, tune_malloc

        tune_malloc()
        freeze_startup_heap()  # as `imagebot run` does once started
    figures: dict[str, Any] = {}
    session = ClientSession(timeout=ClientTimeout(total=900))

    async def phase(name: str, users: int, per_user: int) -> dict[str, Any]:
        profiler = None
        if os.environ.get("BENCH_CPROFILE") and name == "throughput":
            import cProfile

            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()
        mark = c.CpuMark()
        sql.take()
        async with session.post(
            f"{args.child_control}/send",
            json={"phase": name, "users": users, "per_user": per_user},
        ) as resp:
            await resp.json()
        async with session.get(f"{args.child_control}/wait/{name}") as resp:
            result = await resp.json()
        result["cpu_s"] = c.cpu_s() - mark.cpu
        result["loop_cpu_s"] = c.main_thread_cpu_s() - mark.loop_cpu
        counted = sql.take()
        result["sql_statements"] = counted.statements
        result["sql_transactions"] = counted.transactions
        if profiler is not None:
            import pstats

            profiler.disable()
            profiler.dump_stats(os.environ["BENCH_CPROFILE"])
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(45)
        return result

    try:
        figures["rss_ready_mib"] = round(c.rss_mb(), 1)
        await phase("warmup", 4, 2)
        prefix = "limited_" if limited else ""
        if not limited:
            result = await phase("throughput", args.users, args.per_user)
            jobs = result["count"]
            figures.update(
                jobs=jobs,
                jobs_per_s=round(jobs / result["wall_s"], 1),
                cpu_ms_per_job=c.ms_per(result["cpu_s"], jobs),
                loop_cpu_ms_per_job=c.ms_per(result["loop_cpu_s"], jobs),
                bot_calls_per_job=round(result["calls"] / jobs, 2),
                sql_statements_per_job=round(result["sql_statements"] / jobs, 1),
                sql_transactions_per_job=round(result["sql_transactions"] / jobs, 1),
                first_answer_p50_ms=pct(result["first_answer_ms"], 0.5),
                first_answer_p99_ms=pct(result["first_answer_ms"], 0.99),
                delivered_p50_ms=pct(result["delivered_ms"], 0.5),
                delivered_p99_ms=pct(result["delivered_ms"], 0.99),
            )
            if args.throughput_only:
                return figures
            await phase("in_flight", args.in_flight, 1)
            figures["in_flight_peak_mib"] = round(c.peak_rss_mb(), 1)
        burst_size = args.limited_burst if limited else args.burst
        watch = c.LoopWatch(args.loop_check).start() if limited else None
        result = await phase("burst", burst_size, 1)
        if watch is not None:
            watch.stop()
        figures.update(
            {
                f"{prefix}burst": burst_size,
                f"{prefix}burst_s": round(result["wall_s"], 2),
                f"{prefix}burst_jobs_per_s": round(burst_size / result["wall_s"], 1),
                f"{prefix}burst_first_answer_p50_ms": pct(result["first_answer_ms"], 0.5),
                f"{prefix}burst_first_answer_p99_ms": pct(result["first_answer_ms"], 0.99),
                f"{prefix}burst_fetched_p99_ms": pct(result["served_ms"], 0.99),
                f"{prefix}burst_delivered_p50_ms": pct(result["delivered_ms"], 0.5),
                f"{prefix}burst_delivered_p99_ms": pct(result["delivered_ms"], 0.99),
                f"{prefix}burst_calls": result["calls"],
                f"{prefix}burst_cpu_ms_per_job": c.ms_per(result["cpu_s"], burst_size),
                f"{prefix}peak_mib": round(c.peak_rss_mb(), 1),
            }
        )
        if limited:
            figures.update(_limited_figures(result, burst_size, concurrency, moderation, partials))
            if watch is not None:
                figures.update({f"limited_{k}": v for k, v in watch.figures().items()})
    finally:
        if os.environ.get("BENCH_SQL_TOP"):
            for statement, n in seen.most_common(40):
                print(f"{n:6d} {statement}", file=sys.stderr)
        await session.close()
        await core.worker.stop(grace=5)
        await adapter.stop()
        await core.aclose()
    return figures


def _shipped_limited() -> tuple[int, bool, int]:
    """Worker concurrency, moderation and partial images as shipped (mode limited)."""
    from core.settings import Settings

    fields = Settings.model_fields
    return (
        int(fields["worker_concurrency"].default),
        bool(fields["moderation"].default),
        int(fields["partial_images"].default),
    )


def _limited_figures(
    result: dict[str, Any], jobs: int, concurrency: int, moderation: bool, partials: int
) -> dict[str, Any]:
    """The bound Telegram's limit sets and how close the burst came to it.

    The bound: the limiter (``AIORateLimiter``: 30 calls a second over all chats, a leaky
    bucket that starts full) lets the first 30 chat calls through at once and every
    further one at 1/30 s, so ``calls`` chat calls need at least
    ``(calls - 30) / 30`` seconds, however fast the rest of the bot is. ``calls`` is what
    the fake saw (every successful call naming a chat: replies, edits, deletions, photos)
    during the burst. Within 5 % means ``burst_s <= 1.05 * bound``."""
    bound = max(result["calls"] - LIMIT_PER_SECOND, 0) / LIMIT_PER_SECOND
    over = result["wall_s"] / max(bound, 1e-9)
    return {
        "limited_worker_concurrency": concurrency,
        "limited_moderation": moderation,
        "limited_partial_images": partials,
        "limited_calls_per_job": round(result["calls"] / max(jobs, 1), 2),
        "limited_bound_s": round(bound, 2),
        "limited_over_bound": round(over, 3),
        "limited_within_target": over <= TARGETS["limited_within"],
    }


# --- the parent ----------------------------------------------------------------------------------


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=c.ROOT,
    )


def _first_json(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode().strip()
        if line.startswith("{"):
            return dict(json.loads(line))
    raise RuntimeError("child process ended without its JSON line")


def run_mode(mode: str, args: argparse.Namespace, openai_url: str) -> dict[str, Any]:
    """One mode: a fresh Telegram fake and a fresh imagebot process."""
    fake = _spawn(["--child-fake", "--log-level", args.log_level])
    schema = c.new_schema_name() if args.db == "postgres" and mode == "free" else None
    try:
        hello = _first_json(fake)
        with tempfile.TemporaryDirectory(prefix="bench-telegram-") as tmp:
            bot = _spawn(
                [
                    "--child-bot", mode,
                    "--child-workdir", tmp,
                    "--child-telegram", hello["base_url"],
                    "--child-control", hello["control"],
                    "--child-openai", openai_url,
                    "--users", str(args.users),
                    "--per-user", str(args.per_user),
                    "--in-flight", str(args.in_flight),
                    "--burst", str(args.burst),
                    "--limited-burst", str(args.limited_burst),
                    "--concurrency", str(args.concurrency),
                    "--moderation" if args.moderation else "--no-moderation",
                    "--limiter" if args.limiter else "--no-limiter",
                    "--uvloop" if args.uvloop else "--no-uvloop",
                    "--partial-images", str(args.partial_images),
                    *(["--throughput-only"] if args.throughput_only else []),
                    *(["--child-schema", schema, "--pg-url", args.pg_url] if schema else []),
                    "--limited-defaults" if args.limited_defaults else "--no-limited-defaults",
                    "--loop-check", args.loop_check,
                    "--log-level", args.log_level,
                ]
            )  # fmt: skip
            try:
                figures = _first_json(bot)
            finally:
                bot.wait(timeout=60)
        return figures
    finally:
        with contextlib.suppress(Exception):
            assert fake.stdin is not None
            fake.stdin.close()
            fake.wait(timeout=10)
        if fake.poll() is None:
            fake.kill()
        if schema is not None:
            c.drop_schema_sync(args.pg_url, schema)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    c.setup_logging(args.log_level)
    if args.child_fake:
        asyncio.run(serve_fake())
        return
    if args.child_bot:
        with asyncio.Runner(loop_factory=_loop_factory(args)) as runner:
            print(json.dumps(runner.run(run_bot(args))), flush=True)
        return
    modes = ("free", "limited") if args.mode == "both" else (args.mode,)
    figures: dict[str, Any] = {
        "benchmark": "telegram",
        "machine": c.machine(),
        "python": c.python_version(),
        "users": args.users,
        "per_user": args.per_user,
        "worker_concurrency": args.concurrency,
        "moderation": args.moderation,
        "limiter": args.limiter,
        "uvloop": args.uvloop,
        "db": args.db,
        "partial_images": args.partial_images,
    }
    started = time.perf_counter()
    with c.ProviderProcess() as provider:
        for mode in modes:
            figures.update(run_mode(mode, args, provider.base_url))
    figures["targets"] = TARGETS
    figures["elapsed_s"] = round(time.perf_counter() - started, 1)
    c.emit(figures)


if __name__ == "__main__":
    main()
