"""Benchmark: pipeline throughput and CPU per job, with a zero-latency model.

The model is the loopback OpenAI fake in a separate process
(``fake_provider_process.py``, realistic ≈2.2 MB noisy 1024x1024 PNGs), so its CPU is not
counted. imagebot talks to it through the real ``OpenAIImageModel`` (the openai SDK over
loopback HTTP). Each mode runs in a fresh imagebot process on a fresh database:

- ``plain``: ``partial_images=0``, one JSON answer per job;
- ``stream``: ``partial_images=2``, an SSE stream of two previews plus the final image.

In the imagebot process: build the core (migrations, not measured), run a few warm-up
jobs (the SDK's lazy imports and first connections; reported apart), then

1. **submit**: ``--jobs`` jobs from ``--users`` users with ``--submitters`` concurrent
   callers, worker stopped (measured: wall, process CPU);
2. **run**: start the worker (``--concurrency`` loops) and wait until every job is
   delivered and the worker has stopped (measured: wall, process CPU).

The platform notifier only counts ``Delivered`` events: no chat upload is measured.
Process CPU is ``getrusage(RUSAGE_SELF)`` user + system, every thread included
(aiosqlite's threads, file writes in ``to_thread``); ``loop_*`` figures are the event
loop thread alone.

Settings are the shipped defaults except credits, queue and rate limits (and
``--moderation``, whose default keeps the shipped setting). ``--breakdown`` also measures
the pieces of a job one at a time; ``--profile py-spy`` samples every thread on-CPU.

Run: ``.venv/bin/python benchmarks/bench_pipeline.py [--db sqlite|postgres] [--jobs N]
[--users U] [--concurrency C] [--streaming off|on|both] [--moderation default|on|off]
[--breakdown] [--profile py-spy|cprofile|pyinstrument]``. Prints one JSON line
(``stream_*`` keys for the streaming mode). Target: ``cpu_ms_per_job`` <= 10.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

TARGET_CPU_MS_PER_JOB = 10.0
MODES = {"plain": 0, "stream": 2}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags (the ``--child-*`` ones are internal)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4, help="worker concurrency")
    parser.add_argument(
        "--submitters", type=int, default=4, help="concurrent submit calls (adapter handlers)"
    )
    parser.add_argument("--warmup", type=int, default=4, help="warm-up jobs, not measured")
    parser.add_argument("--streaming", choices=("off", "on", "both"), default="both")
    parser.add_argument(
        "--moderation",
        choices=("default", "on", "off"),
        default="default",
        help="screening with the provider's moderation endpoint (default: the shipped setting)",
    )
    parser.add_argument("--pg-url", default=c.PG_URL)
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also measure the CPU of one model call, base64, JSON and a file write",
    )
    parser.add_argument(
        "--profile",
        choices=("py-spy", "cprofile", "pyinstrument"),
        help="profile the measured phases (figures then include the profiler's overhead)",
    )
    parser.add_argument("--profile-dir", type=Path, help="where to keep profiles (default: cwd)")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--child-mode", choices=tuple(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--child-workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-schema", help=argparse.SUPPRESS)
    parser.add_argument("--child-base-url", help=argparse.SUPPRESS)
    parser.add_argument("--child-provider-pid", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- the measured (child) process -------------------------------------------------------------


class _Profiler:
    """A profiler around the measured phases; a no-op without ``--profile``.

    ``py-spy`` (recommended; ``pip install py-spy``) samples every thread of this process
    from outside, on-CPU only, with little overhead; the summary splits the samples by
    component and by imagebot function. ``cprofile`` counts CPU time of the event loop
    thread only (greenlet switches confuse its cumulative times: read ``tottime``).
    ``pyinstrument`` samples wall time of the loop thread.
    """

    def __init__(self, kind: str | None, out: Path | None, mode: str, db: str) -> None:
        self.kind = kind
        self.out = (out or Path.cwd()) / f"bench_pipeline-{db}-{mode}"
        self._prof: Any = None

    def start(self) -> None:
        if self.kind is None:
            return
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "py-spy":
            exe = Path(sys.executable).with_name("py-spy")
            self._prof = subprocess.Popen(
                [
                    str(exe if exe.exists() else "py-spy"),
                    "record", "--pid", str(os.getpid()), "--rate", "400", "--nonblocking",
                    "--threads", "--format", "raw", "--output", str(self.out.with_suffix(".txt")),
                ],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1.0)  # let it attach
        elif self.kind == "cprofile":
            import cProfile

            # CPU time of the event loop thread, not wall time: waits (SQLite's lock, the
            # GIL, the network) would otherwise look like work.
            self._prof = cProfile.Profile(time.thread_time)
            self._prof.enable()
        elif self.kind == "pyinstrument":
            import pyinstrument

            self._prof = pyinstrument.Profiler(interval=0.0005, async_mode="enabled")
            self._prof.start()

    def stop(self) -> None:
        if self.kind is None:
            return
        if self.kind == "py-spy":
            self._prof.send_signal(signal.SIGINT)
            self._prof.wait(timeout=30)
            path = self.out.with_suffix(".txt")
            print(summarize_pyspy(path.read_text()), file=sys.stderr)
            c.log.info("py-spy samples (collapsed stacks) in %s", path)
        elif self.kind == "cprofile":
            import io
            import pstats

            self._prof.disable()
            path = self.out.with_suffix(".prof")
            self._prof.dump_stats(path)
            text = io.StringIO()
            pstats.Stats(self._prof, stream=text).sort_stats("tottime").print_stats(40)
            print(text.getvalue(), file=sys.stderr)
            c.log.info("cProfile stats in %s", path)
        else:
            self._prof.stop()
            path = self.out.with_suffix(".txt")
            path.write_text(self._prof.output_text(unicode=True, show_all=False))
            print(self._prof.output_text(unicode=True), file=sys.stderr)
            c.log.info("pyinstrument report in %s", path)


# Components, by the file a sampled frame runs in (py-spy prints paths relative to
# sys.path, e.g. "(sqlalchemy/orm/session.py:2555)"); the innermost matching frame wins.
_COMPONENTS = (
    ("base64 decode", ("(base64.py",)),
    ("json", ("(json/",)),
    ("HTTP client (httpx2/httpcore2/h11/anyio)", ("(httpx2/", "(httpcore2/", "(h11/", "(anyio/")),
    ("openai SDK", ("(openai/",)),
    ("pydantic", ("(pydantic",)),
    ("SQLAlchemy", ("(sqlalchemy/",)),
    ("aiosqlite + sqlite3", ("(aiosqlite/", "(sqlite3/")),
    ("asyncpg", ("(asyncpg/",)),
    ("Pillow", ("(PIL/",)),
    ("file store (storage/files/local.py)", ("(local.py", "(tempfile.py", "(pathlib.py")),
    ("logging", ("(logging/",)),
    ("threads (to_thread, queues)", ("(threading.py", "(concurrent/", "(queue.py")),
    ("asyncio event loop", ("(asyncio/", "(selectors.py")),
    ("imagebot core/storage", ("(core/", "(storage/")),
)
_OWNERS = ("submit", "_claim", "_generate", "_finish", "_deliver", "recover", "_heartbeat")


def summarize_pyspy(raw: str, top: int = 30) -> str:
    """Self samples by component and function, and inclusive samples by imagebot step."""
    from collections import Counter

    by_component: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    by_owner: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = "?"
        if frames[0].startswith("thread ("):
            thread = frames.pop(0).rpartition(": ")[2]
        if not frames:
            continue
        total += count
        by_leaf[frames[-1]] += count
        component = "other"
        for frame in reversed(frames):
            name = next((n for n, keys in _COMPONENTS if any(k in frame for k in keys)), None)
            if name is not None:
                component = name
                break
        by_component[component] += count
        owner = "other"
        for frame in reversed(frames):
            if "(core/" in frame or "(storage/" in frame:
                func = frame.split(" (", 1)[0].rpartition(".")[2]
                if func in _OWNERS:
                    owner = func
                    break
        if owner == "other" and "greenlet" not in stack and frames[0].startswith("Session"):
            owner = "SQLAlchemy inside a greenlet (caller not visible)"
        by_owner[owner] += count
        by_thread[thread] += count
    if not total:
        return "py-spy: no samples"
    lines = [f"py-spy: {total} on-CPU samples"]
    for title, counter, limit in (
        ("threads", by_thread, 5),
        ("self time by component (innermost matching frame)", by_component, 20),
        ("inclusive time by imagebot step", by_owner, 10),
        ("self time by function", by_leaf, top),
    ):
        lines.append(f"-- {title}")
        for key, n in counter.most_common(limit):
            lines.append(f"{100 * n / total:6.1f}%  {key}")
    return "\n".join(lines)


async def run_child(args: argparse.Namespace) -> dict[str, Any]:
    """One mode in this process: build, warm up, submit, run; return the figures."""
    from bot.memory import tune_malloc
    from bot.wiring import build_core

    tune_malloc()  # as `imagebot` does at start-up
    from storage.database import Database

    mode = args.child_mode
    workdir: Path = args.child_workdir
    workdir.mkdir(parents=True, exist_ok=True)
    if args.db == "postgres":
        url, schema = args.pg_url, args.child_schema
        await c.create_schema(url, schema)
    else:
        url, schema = c.sqlite_url(workdir), None
    settings = c.bench_settings(
        workdir,
        database_url=url,
        schema=schema,
        base_url=args.child_base_url,
        partial_images=MODES[mode],
        concurrency=args.concurrency,
        max_queued_per_user=max(args.jobs, 20),
        moderation={"default": None, "on": True, "off": False}[args.moderation],
    )
    db = Database(settings.database_url, schema=settings.database_schema, pool_size=10)
    core = await build_core(settings, database=db, migrate=True, poll_interval=1.0)
    notifier = c.CountingNotifier()
    core.notifier.register(c.PLATFORM, notifier)
    profiler = _Profiler(args.profile, args.profile_dir, mode, args.db)
    try:
        # Warm-up: lazy imports of the SDK, first connections, statement caches.
        warm = c.CpuMark()
        warm_requests = [c.make_request(0, i, prefix="warm") for i in range(args.warmup)]
        await c.onboard(core, [c.make_actor(0, prefix="warm")])
        await c.submit_all(core, warm_requests, 1)
        notifier.expect(len(warm_requests))
        await core.worker.run_until_idle(timeout=60)
        await notifier.wait(timeout=10)
        warm_end = c.CpuMark()
        breakdown = await measure_breakdown(core, MODES[mode]) if args.breakdown else {}
        gc.collect()

        requests = c.round_robin_requests(args.jobs, args.users)
        await c.onboard(core, [c.make_actor(u) for u in range(args.users)])
        rss_before = c.rss_mb()
        provider_before = c.process_cpu_s(args.child_provider_pid)
        sql = c.SqlCounter(db)
        profiler.start()

        start = c.CpuMark()
        await c.submit_all(core, requests, args.submitters)
        submitted = c.CpuMark()
        sql_submit = sql.take()

        notifier.expect(len(requests))
        await core.worker.start(exclusive=core.exclusive_worker)
        await notifier.wait(timeout=600)
        await core.worker.stop(grace=60)
        done = c.CpuMark()
        sql_run = sql.take()

        profiler.stop()
        provider_after = c.process_cpu_s(args.child_provider_pid)
        states = await c.job_states(db)
    finally:
        await core.aclose()
        await db.dispose()

    jobs = len(requests)
    failed = notifier.failed
    expected_states = {"succeeded": jobs + len(warm_requests)}
    if states != expected_states:
        c.log.warning("unexpected job states %s (expected %s)", states, expected_states)
    submit_cpu = submitted.cpu - start.cpu
    run_cpu = done.cpu - submitted.cpu
    figures: dict[str, Any] = {
        "moderation": c.moderation_enabled(settings),
        "jobs_per_s": round(jobs / (done.wall - submitted.wall), 1),
        "cpu_ms_per_job": c.ms_per(submit_cpu + run_cpu, jobs),
        "submit_cpu_ms_per_job": c.ms_per(submit_cpu, jobs),
        "run_cpu_ms_per_job": c.ms_per(run_cpu, jobs),
        "system_cpu_ms_per_job": c.ms_per(done.sys_cpu - start.sys_cpu, jobs),
        "minor_faults_per_job": round((done.minor_faults - start.minor_faults) / jobs),
        "loop_thread_cpu_ms_per_job": c.ms_per(done.loop_cpu - start.loop_cpu, jobs),
        "submits_per_s": round(jobs / (submitted.wall - start.wall), 1),
        "wall_s": round(done.wall - start.wall, 2),
        "peak_rss_mb": round(c.peak_rss_mb(), 1),
        "rss_before_mb": round(rss_before, 1),
        "warmup_cpu_ms_per_job": c.ms_per(warm_end.cpu - warm.cpu, len(warm_requests)),
        "submit_sql_per_job": round(sql_submit.statements / jobs, 1),
        "submit_tx_per_job": round(sql_submit.transactions / jobs, 1),
        "run_sql_per_job": round(sql_run.statements / jobs, 1),
        "run_tx_per_job": round(sql_run.transactions / jobs, 1),
        "failed": failed,
        "partials": notifier.partials,
        "states_ok": states == expected_states,
    }
    if provider_before is not None and provider_after is not None:
        figures["provider_cpu_ms_per_job"] = c.ms_per(provider_after - provider_before, jobs)
    figures.update(breakdown)
    if args.profile:
        figures["profiled"] = args.profile
    return figures


async def measure_breakdown(core: Any, partial_images: int, calls: int = 20) -> dict[str, float]:
    """CPU of the pieces of one job, measured one at a time in this process (ms):

    the model call as the worker makes it (SDK, HTTP, JSON, base64; sequential calls),
    base64-decoding one image, ``json.loads`` of one answer, writing one image through
    the file store (atomic write with fsync, in a thread), and, with moderation on,
    screening one prompt and one output image through the core's screener.
    """
    import base64
    import json as json_module

    from core.generation.ports import ModelCall, ModelImage
    from core.types import ResolvedOptions

    options = ResolvedOptions(core.settings.image_model, "1024x1024", "medium", "png", "auto", 1)
    call = ModelCall(
        prompt="a red fox in snow",
        options=options,
        user_hash="u_breakdown",
        inputs=(),
        mask=None,
        stream_partials=partial_images,
    )
    image = b""
    begin = c.CpuMark()
    for _ in range(calls):
        async for event in core.model.run(call):
            if isinstance(event, ModelImage):
                image = event.data
    sdk_cpu = c.CpuMark().cpu - begin.cpu

    encoded = base64.b64encode(image).decode()
    body = json_module.dumps({"created": 0, "data": [{"b64_json": encoded}]}).encode()

    def cpu_of(func: Any, repeat: int = calls) -> float:
        before = c.cpu_s()
        for _ in range(repeat):
            func()
        return c.cpu_s() - before

    b64_cpu = cpu_of(lambda: base64.b64decode(encoded, validate=True))
    json_cpu = cpu_of(lambda: json_module.loads(body))
    before = c.cpu_s()
    for i in range(calls):
        await core.files.write_image(999_999, f"breakdown/out-{i}", image)
    write_cpu = c.cpu_s() - before
    await core.files.delete_user(999_999)
    figures = {}
    screener = getattr(core.worker, "screener", None)
    if c.moderation_enabled(core.settings) and screener is not None:
        before = c.cpu_s()
        for _ in range(calls):
            await screener.screen_input("a red fox in snow", ())
        figures["breakdown_prompt_screening_cpu_ms"] = c.ms_per(c.cpu_s() - before, calls)
        before = c.cpu_s()
        for _ in range(calls):
            await screener.screen_output(image, "image/png")
        figures["breakdown_output_screening_cpu_ms"] = c.ms_per(c.cpu_s() - before, calls)
    return figures | {
        "breakdown_model_call_cpu_ms": c.ms_per(sdk_cpu, calls),
        "breakdown_b64decode_ms": c.ms_per(b64_cpu, calls),
        "breakdown_json_loads_ms": c.ms_per(json_cpu, calls),
        "breakdown_file_write_cpu_ms": c.ms_per(write_cpu, calls),
        "breakdown_image_bytes": len(image),
    }


# --- the parent: provider process, one child per mode, the report -------------------------


def run_mode(args: argparse.Namespace, mode: str, workdir: Path, base_url: str, pid: int) -> dict:
    """Run one mode in a fresh imagebot process; return its figures."""
    schema = c.new_schema_name() if args.db == "postgres" else None
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--db", args.db,
        "--jobs", str(args.jobs),
        "--users", str(args.users),
        "--concurrency", str(args.concurrency),
        "--submitters", str(args.submitters),
        "--warmup", str(args.warmup),
        "--moderation", args.moderation,
        "--pg-url", args.pg_url,
        "--log-level", args.log_level,
        "--child-mode", mode,
        "--child-workdir", str(workdir / mode),
        "--child-base-url", base_url,
        "--child-provider-pid", str(pid),
    ]  # fmt: skip
    if schema:
        cmd += ["--child-schema", schema]
    if args.breakdown:
        cmd.append("--breakdown")
    if args.profile:
        cmd += ["--profile", args.profile]
        cmd += ["--profile-dir", str(args.profile_dir or Path.cwd())]
    c.log.info("running mode=%s db=%s jobs=%s", mode, args.db, args.jobs)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, timeout=900, check=False)
    finally:
        if schema:
            c.drop_schema_sync(args.pg_url, schema)
    lines = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"mode {mode} failed (exit {proc.returncode})")
    return json.loads(lines[-1])


def main() -> None:
    """Parse flags; as the parent, run the modes and print the one JSON line."""
    args = parse_args()
    c.setup_logging(args.log_level)
    if args.child_mode:
        c.emit(asyncio.run(run_child(args)))
        return

    modes = {"off": ["plain"], "on": ["stream"], "both": ["plain", "stream"]}[args.streaming]
    report: dict[str, Any] = {
        "benchmark": "pipeline",
        "db": args.db,
        "jobs": args.jobs,
        "users": args.users,
        "concurrency": args.concurrency,
    }
    with (
        tempfile.TemporaryDirectory(prefix="imagebot-bench-") as tmp,
        c.ProviderProcess() as provider,
    ):
        for mode in modes:
            figures = run_mode(args, mode, Path(tmp), provider.base_url, provider.pid)
            prefix = "" if mode == "plain" else "stream_"
            report.update({f"{prefix}{k}": v for k, v in figures.items()})
    if provider.final.get("errors"):
        report["provider_errors"] = provider.final["errors"]
    main_key = "cpu_ms_per_job" if "plain" in modes else "stream_cpu_ms_per_job"
    report["target_cpu_ms_per_job"] = TARGET_CPU_MS_PER_JOB
    report["meets_target"] = report[main_key] <= TARGET_CPU_MS_PER_JOB
    report["python"] = c.python_version()
    report["machine"] = c.machine()
    c.emit(report)


if __name__ == "__main__":
    main()
