"""Benchmark: throughput with 1, 2 and 4 worker processes on PostgreSQL.

For each worker count, on a fresh PostgreSQL schema:

1. **submit** (this process, no worker in it): ``--jobs`` jobs (1024x1024, medium, png)
   from ``--users`` users through ``bot.wiring.build_core`` and
   ``core.generation.submit``, with ``--submitters`` concurrent callers; then the queue is
   *gated* (``not_before`` far in the future) so no worker can take a job yet;
2. **start** the worker processes: ``imagebot run --role worker`` (the real CLI, as in
   ``docker/compose.yaml``), each with ``IMAGEBOT_WORKER_CONCURRENCY=--concurrency``
   (default 4, the shipped default), the shipped per-user limit, moderation off, no
   streamed previews, and wait until every one has started (its log says so);
3. **run**: open the gate (``not_before = NULL``; idle loops poll every second) and wait
   until every job has succeeded. ``jobs_per_s`` = jobs / (last ``finished_at`` - first
   ``started_at``), read from the jobs table.

The model is a loopback OpenAI fake in a separate process, zero latency. By default it
answers with the fake's small images (``small_image``: 64x64 noise scaled to 1024x1024,
a ≈38 KB PNG), so the figures are about imagebot's job handling (claim, leases, SQL,
files, the SDK round trip), not about moving megabytes; ``--realistic`` uses
``fake_provider_process.py`` instead (≈2.2 MB noisy PNGs, ≈3 MB of base64 per answer).

CPU is read from ``/proc/<pid>/stat`` over the run phase: the worker processes
(``cpu_ms_per_job``), the PostgreSQL backends serving their connections (found through
their sockets and ``pg_stat_activity.client_port``: ``db_cpu_ms_per_job``) and the fake
provider (``provider_cpu_ms_per_job``). ``cpu_ceiling_jobs_per_s`` = min(processes x
1000 / worker CPU per job, cores x 1000 / all three): what this machine could do if
nothing else ran on it (one process's event loop uses at most one core; every process
shares the same cores), and ``ceiling_speedup_N`` its ratio to one worker: the most N
processes can give here.
``machine_busy`` (all cores, from ``/proc/stat``) and ``bench_cpu_share`` (the part of it
that was this benchmark's) say how much of the machine others were using meanwhile.

The machine's other load only ever slows a run down, so ``--repeat N`` runs N rounds over
the counts and reports each count's best round (all of them in ``*_jobs_per_s_runs``).
``steady_jobs_per_s`` is the middle 80 % of completions (no ramp-up, no tail).

Run: ``.venv/bin/python benchmarks/bench_workers.py [--jobs 300] [--users 20]
[--workers 1,2,4] [--concurrency 4] [--per-user N] [--repeat 1] [--realistic]``. Prints
one JSON line.

Also a helper for the other scale benchmarks: :class:`FakeProviderProcess` (this script
with ``--serve-provider``) is the fake with a chosen latency and image size in a process
of its own; ``bench_fairness.py`` uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

IMAGEBOT = str(Path(sys.executable).with_name("imagebot"))
READY_MARK = "image provider:"
"""Logged by ``build_core`` in a worker process just before the model check and the start
of its loops."""
GATE = datetime(2999, 1, 1, tzinfo=UTC)


# --- the fake provider with a latency, in its own process --------------------------------------


async def serve_provider(latency: float, realistic: bool) -> None:
    """``--serve-provider``: the same protocol as ``fake_provider_process.py`` (a hello line,
    serve until stdin closes or SIGTERM, a final line with its CPU), with ``latency``
    seconds before each image answer and small images unless ``realistic``."""
    import resource
    import threading

    from tests.fakes.openai_server import FakeOpenAI, realistic_factory, realistic_png

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)

    def watch_stdin() -> None:
        with contextlib.suppress(Exception):
            while sys.stdin.buffer.read(4096):
                pass
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    if realistic:
        realistic_png(1024, 1024)
    fake = FakeOpenAI(image_bytes_factory=realistic_factory if realistic else None)
    # A real bucket far above any benchmark's rate: the fake's fixed default headers
    # (250 a minute, 249 left) would otherwise pace imagebot at 4.2 calls a second.
    fake.rate_limit(1_000_000)
    fake.latency = latency
    await fake.start()
    served = 0
    try:
        print(json.dumps({"base_url": fake.base_url, "pid": os.getpid()}), flush=True)
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.5)
            served += len(fake.requests)
            fake.requests.clear()  # it keeps every request body otherwise
    finally:
        await fake.stop()
    for error in fake.errors:
        print(f"fake provider error: {error!r}", file=sys.stderr)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    final = {
        "provider_cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "requests": served,
        "errors": len(fake.errors),
    }
    print(json.dumps(final), flush=True)


class FakeProviderProcess(c.ProviderProcess):
    """:class:`_common.ProviderProcess` with a latency and small images: this script run
    with ``--serve-provider``. With ``realistic`` and no latency it is exactly
    ``fake_provider_process.py``."""

    def __init__(self, *, latency: float = 0.0, realistic: bool = False) -> None:
        super().__init__()
        self.latency = latency
        self.realistic = realistic

    def __enter__(self) -> FakeProviderProcess:
        if self.realistic and not self.latency:
            super().__enter__()
            return self
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-provider"]
        cmd += ["--provider-latency", str(self.latency)]
        if self.realistic:
            cmd.append("--realistic")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=c.ROOT)
        line = c._readline_with_timeout(self.proc, 60.0)
        if not line:
            self.__exit__(None, None, None)
            raise RuntimeError("the fake provider process did not start")
        hello = json.loads(line)
        self.base_url = hello["base_url"]
        self.pid = int(hello["pid"])
        c.log.info("fake provider pid=%s at %s latency=%s", self.pid, self.base_url, self.latency)
        return self


# --- worker processes -------------------------------------------------------------------------


def worker_env(
    *,
    url: str,
    schema: str,
    data_dir: Path,
    base_url: str,
    name: str,
    concurrency: int,
    per_user: int | None,
    log_level: str = "INFO",
) -> dict[str, str]:
    """The environment of one ``imagebot run --role worker``: the caller's, without any
    ``IMAGEBOT_*``/``OPENAI_*`` variable, plus the benchmark's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEBOT_", "OPENAI_"))}
    env.update(
        IMAGEBOT_DATABASE_URL=url,
        IMAGEBOT_DATABASE_SCHEMA=schema,
        IMAGEBOT_DATA_DIR=str(data_dir),
        OPENAI_API_KEY=c.API_KEY,
        OPENAI_BASE_URL=base_url,
        IMAGEBOT_MODERATION="false",
        IMAGEBOT_PARTIAL_IMAGES="0",
        IMAGEBOT_PROVIDER_MAX_RETRIES="0",
        IMAGEBOT_WORKER_CONCURRENCY=str(concurrency),
        IMAGEBOT_WORKER_NAME=name,
        IMAGEBOT_SHUTDOWN_GRACE_SECONDS="10",
        IMAGEBOT_LOG_LEVEL=log_level,
    )
    if per_user is not None:
        env["IMAGEBOT_PER_USER_CONCURRENCY"] = str(per_user)
    return env


class WorkerProcesses:
    """``count`` worker processes, their logs in files; a context manager that stops them
    (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, envs: list[dict[str, str]], workdir: Path) -> None:
        self.envs = envs
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.returncodes: list[int | None] = []

    def __enter__(self) -> WorkerProcesses:
        for i, env in enumerate(self.envs):
            log_path = self.workdir / f"worker-{i}.log"
            self.logs.append(log_path)
            with log_path.open("wb") as log_file:
                self.procs.append(
                    subprocess.Popen(
                        [IMAGEBOT, "run", "--role", "worker"],
                        env=env,
                        cwd=self.workdir,  # no stray .env file is read
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=log_file,
                    )
                )
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until every process has logged :data:`READY_MARK` (then a short settle)."""
        deadline = time.monotonic() + timeout
        while True:
            ready = 0
            for proc, path in zip(self.procs, self.logs, strict=True):
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited early:\n{path.read_text()[-3000:]}")
                if READY_MARK in path.read_text(errors="replace"):
                    ready += 1
            if ready == len(self.procs):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("worker processes did not start in time")
            time.sleep(0.1)
        time.sleep(1.0)  # the model check, the recovery pass, the loops' first claims

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.returncodes = [p.returncode for p in self.procs]

    def problems(self) -> list[str]:
        """Non-zero exits and tracebacks or errors in the logs."""
        found = []
        for i, (code, path) in enumerate(zip(self.returncodes, self.logs, strict=True)):
            text = path.read_text(errors="replace")
            if code not in (0, None):
                found.append(f"worker {i} exited {code}")
            if "Traceback" in text:
                found.append(f"worker {i}: traceback in its log")
            errors = [ln for ln in text.splitlines() if " ERROR " in ln]
            if errors:
                found.append(f"worker {i}: {len(errors)} ERROR lines, e.g. {errors[0][:200]}")
        return found


# --- CPU of PostgreSQL backends serving given processes ----------------------------------------


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def client_ports(pids: list[int], server_port: int = 5432) -> set[int]:
    """Local TCP ports of the processes' connections to ``server_port`` (Linux /proc)."""
    inodes: set[int] = set()
    for pid in pids:
        inodes |= _socket_inodes(pid)
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], int(fields[9])
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == server_port:
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


async def backend_cpu(db: Any, pids: list[int]) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving one of ``pids``."""
    from sqlalchemy import text

    ports = client_ports(pids)
    if not ports:
        return {}
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE client_port = ANY(:ports)"),
                {"ports": list(ports)},
            )
        ).all()
    found = {}
    for (backend,) in rows:
        cpu = c.process_cpu_s(int(backend))
        if cpu is not None:
            found[int(backend)] = cpu
    return found


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every core (``/proc/stat``)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user
    return (total - idle) / ticks, total / ticks


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two readings (a process new since ``before`` counts whole)."""
    return sum(after[p] - before.get(p, 0.0) for p in after)


# --- one worker count --------------------------------------------------------------------------


async def submit_phase(
    args: argparse.Namespace, schema: str, workdir: Path, base_url: str
) -> float:
    """Build a core (no worker), submit every job, gate the queue; return submits/s."""
    from sqlalchemy import text

    from bot.wiring import build_core
    from storage.database import Database

    settings = c.bench_settings(
        workdir,
        database_url=args.pg_url,
        schema=schema,
        base_url=base_url,
        partial_images=0,
        concurrency=args.concurrency,
        max_queued_per_user=max(args.jobs, 20),
        moderation=False,
    )
    db = Database(settings.database_url, schema=schema)
    core = await build_core(settings, database=db, migrate=True)
    try:
        await c.onboard(core, [c.make_actor(u) for u in range(args.users)])
        requests = c.round_robin_requests(args.jobs, args.users)
        start = time.perf_counter()
        await c.submit_all(core, requests, args.submitters)
        elapsed = time.perf_counter() - start
        async with db.engine.begin() as conn:
            await conn.execute(text("UPDATE jobs SET not_before = :gate"), {"gate": GATE})
    finally:
        await core.aclose()
        await db.dispose()
    return args.jobs / elapsed


async def run_count(
    args: argparse.Namespace, count: int, workdir: Path, provider: c.ProviderProcess
) -> dict[str, Any]:
    """One worker count on a fresh schema; its figures."""
    from sqlalchemy import text

    from storage.database import Database

    schema = c.new_schema_name()
    await c.create_schema(args.pg_url, schema)
    data_dir = workdir / "data"
    try:
        submits_per_s = await submit_phase(args, schema, workdir, provider.base_url)
        envs = [
            worker_env(
                url=args.pg_url,
                schema=schema,
                data_dir=data_dir,
                base_url=provider.base_url,
                name=f"bench-w{i}",
                concurrency=args.concurrency,
                per_user=args.per_user,
            )
            for i in range(count)
        ]
        db = Database(args.pg_url, schema=schema, pool_size=2)
        workers = WorkerProcesses(envs, workdir)
        try:
            with workers:
                await asyncio.to_thread(workers.wait_ready)
                cpu_before = {p: c.process_cpu_s(p) or 0.0 for p in workers.pids}
                db_before = await backend_cpu(db, workers.pids)
                provider_before = c.process_cpu_s(provider.pid) or 0.0
                machine_before = machine_cpu()
                released = time.perf_counter()
                async with db.engine.begin() as conn:
                    await conn.execute(text("UPDATE jobs SET not_before = NULL"))
                async with asyncio.timeout(args.timeout):
                    while True:
                        states = await c.job_states(db)
                        if states.get("succeeded", 0) + states.get("failed", 0) >= args.jobs:
                            break
                        if any(p.poll() is not None for p in workers.procs):
                            raise RuntimeError("a worker process exited during the run")
                        await asyncio.sleep(0.1)
                waited = time.perf_counter() - released
                cpu_after = {p: c.process_cpu_s(p) or 0.0 for p in workers.pids}
                db_after = await backend_cpu(db, workers.pids)
                provider_after = c.process_cpu_s(provider.pid) or 0.0
                machine_after = machine_cpu()
            async with db.engine.connect() as conn:
                window = (
                    await conn.execute(
                        text(
                            "SELECT EXTRACT(EPOCH FROM MAX(finished_at) - MIN(started_at)), "
                            "COUNT(DISTINCT lease_owner), SUM(CASE WHEN attempts > 1 THEN 1 "
                            "ELSE 0 END), "
                            "AVG(EXTRACT(EPOCH FROM finished_at - started_at)) FROM jobs"
                        )
                    )
                ).one()
                per_owner = (
                    await conn.execute(
                        text("SELECT lease_owner, COUNT(*) FROM jobs GROUP BY lease_owner")
                    )
                ).all()
                captures = (
                    await conn.execute(
                        text(
                            "SELECT COUNT(*), COUNT(DISTINCT job_id) FROM ledger_entries "
                            "WHERE kind = 'capture'"
                        )
                    )
                ).one()
                outputs = (
                    await conn.execute(
                        text("SELECT COUNT(*) FROM job_images WHERE role = 'output'")
                    )
                ).scalar_one()
                finished = sorted(
                    float(t)
                    for (t,) in (
                        await conn.execute(
                            text(
                                "SELECT EXTRACT(EPOCH FROM finished_at) FROM jobs "
                                "WHERE finished_at IS NOT NULL"
                            )
                        )
                    ).all()
                )
            states = await c.job_states(db)
        finally:
            await db.dispose()
    finally:
        await c.drop_schema(args.pg_url, schema)
    jobs = args.jobs
    run_s = float(window[0])
    worker_cpu = cpu_delta(cpu_before, cpu_after)
    db_cpu = cpu_delta(db_before, db_after)
    provider_cpu = provider_after - provider_before
    total_ms = (worker_cpu + db_cpu + provider_cpu) * 1000 / jobs
    cores = len(os.sched_getaffinity(0))
    machine_busy, machine_total = (
        b - a for a, b in zip(machine_before, machine_after, strict=True)
    )
    problems = workers.problems()
    ok = (
        states == {"succeeded": jobs}
        and captures[0] == jobs
        and captures[1] == jobs
        and outputs == jobs
        and not problems
    )
    # Steady state: the middle 80 % of completions (no start-up of loops, no tail).
    lo, hi = finished[len(finished) // 10], finished[(len(finished) * 9) // 10 - 1]
    steady = ((len(finished) * 9) // 10 - 1 - len(finished) // 10) / (hi - lo) if hi > lo else 0.0
    figures = {
        "jobs_per_s": round(jobs / run_s, 1),
        "steady_jobs_per_s": round(steady, 1),
        "run_s": round(run_s, 2),
        "wall_s": round(waited, 2),
        "submits_per_s": round(submits_per_s, 1),
        "cpu_ms_per_job": c.ms_per(worker_cpu, jobs),
        "db_cpu_ms_per_job": c.ms_per(db_cpu, jobs),
        "provider_cpu_ms_per_job": c.ms_per(provider_cpu, jobs),
        # A process's event loop uses at most one core; all processes share the cores.
        "cpu_ceiling_jobs_per_s": (
            round(min(count * 1000 / (worker_cpu * 1000 / jobs), cores * 1000 / total_ms), 1)
            if worker_cpu and total_ms
            else None
        ),
        "job_ms_mean": round(float(window[3]) * 1000, 1),
        "bench_cpu_share": (
            round((worker_cpu + db_cpu + provider_cpu) / machine_total, 2)
            if machine_total
            else None
        ),
        "machine_busy": round(machine_busy / machine_total, 2) if machine_total else None,
        "jobs_by_worker": sorted(int(n) for _, n in per_owner),
        "retried": int(window[2] or 0),
        "ok": ok,
    }
    if not ok:
        figures["problems"] = [
            *problems,
            f"states={states} captures={list(captures)} outputs={outputs}",
        ]
    c.log.info("workers=%s %s", count, figures)
    return figures


# --- the report --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags (``--serve-provider`` is the helper mode)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts, comma-separated")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="IMAGEBOT_WORKER_CONCURRENCY of each"
    )
    parser.add_argument(
        "--per-user",
        type=int,
        default=None,
        help="IMAGEBOT_PER_USER_CONCURRENCY (default: the shipped default)",
    )
    parser.add_argument("--submitters", type=int, default=4, help="concurrent submit calls")
    parser.add_argument(
        "--realistic", action="store_true", help="≈2.2 MB PNGs (fake_provider_process.py)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds over the counts; each count reports its best round (others' load on a "
        "shared machine only ever slows a run down)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="per worker count")
    parser.add_argument("--pg-url", default=c.PG_URL)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--serve-provider", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--provider-latency", type=float, default=0.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def load_average() -> float | None:
    """The 1-minute load average (other work on the machine skews wall-clock figures)."""
    with contextlib.suppress(OSError):
        return float(os.getloadavg()[0])
    return None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every worker count, one fake provider for all."""
    counts = [int(x) for x in re.split(r"[,\s]+", args.workers.strip()) if x]
    report: dict[str, Any] = {
        "benchmark": "workers",
        "db": "postgres",
        "jobs": args.jobs,
        "users": args.users,
        "concurrency": args.concurrency,
        "per_user_concurrency": args.per_user
        or c.Settings.model_fields["per_user_concurrency"].default,
        "images": "realistic 2.2 MB PNG" if args.realistic else "small 38 KB PNG",
        "repeat": args.repeat,
        "load_avg_start": load_average(),
    }
    with (
        tempfile.TemporaryDirectory(prefix="imagebot-bench-workers-") as tmp,
        FakeProviderProcess(realistic=args.realistic) as provider,
    ):
        runs: dict[int, list[dict[str, Any]]] = {count: [] for count in counts}
        for round_ in range(args.repeat):  # rounds alternate the counts: drifts in the
            for count in counts:  # machine's load hit every count alike
                workdir = Path(tmp) / f"r{round_}-w{count}"
                workdir.mkdir()
                runs[count].append(await run_count(args, count, workdir, provider))
        for count in counts:
            best = max(runs[count], key=lambda f: f["jobs_per_s"])
            report.update({f"workers_{count}_{k}": v for k, v in best.items()})
            if args.repeat > 1:
                report[f"workers_{count}_jobs_per_s_runs"] = [f["jobs_per_s"] for f in runs[count]]
                report[f"workers_{count}_ok"] = all(f["ok"] for f in runs[count])
    base = report.get(f"workers_{counts[0]}_jobs_per_s")
    for count in counts[1:]:
        if base:
            report[f"speedup_{count}"] = round(report[f"workers_{count}_jobs_per_s"] / base, 2)
    steady_base = report.get(f"workers_{counts[0]}_steady_jobs_per_s")
    for count in counts[1:]:
        if steady_base:
            report[f"steady_speedup_{count}"] = round(
                report[f"workers_{count}_steady_jobs_per_s"] / steady_base, 2
            )
    ceiling_base = report.get(f"workers_{counts[0]}_cpu_ceiling_jobs_per_s")
    for count in counts[1:]:
        if ceiling_base:
            report[f"ceiling_speedup_{count}"] = round(
                report[f"workers_{count}_cpu_ceiling_jobs_per_s"] / ceiling_base, 2
            )
    if provider.final.get("errors"):
        report["provider_errors"] = provider.final["errors"]
    report["load_avg_end"] = load_average()
    report["python"] = c.python_version()
    report["machine"] = c.machine()
    return report


def main() -> None:
    """Parse flags; serve the fake (helper mode) or run the benchmark."""
    args = parse_args()
    c.setup_logging(args.log_level)
    if args.serve_provider:
        asyncio.run(serve_provider(args.provider_latency, args.realistic))
        return
    c.emit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
