"""Benchmark: throughput with 1, 2 and 4 worker processes on PostgreSQL, images in an S3
store, no shared folder.

The same run as ``bench_workers.py`` (submit from this process, gate the queue, start
``imagebot run --role worker`` processes, open the gate, time until every job succeeded;
figures read from the jobs table), with these differences:

- the file store is S3 (``IMAGEBOT_FILE_STORE=s3``): a real S3 wire server on loopback
  (``moto_server``, moto's threaded server, in a process of its own), one bucket for every
  process, each worker with its own empty data folder: nothing is shared but PostgreSQL
  and the bucket; objects are encrypted with an operator key, as in production;
- the loopback provider answers after ``--latency`` seconds (default 0.5 s: a model is
  slow, which is why several workers help), with the fake's small images.

``speedup_N`` is the throughput of N processes over one. The store and the provider run
on the same cores as the workers; ``machine_busy`` says how loaded the machine was.

Run: ``.venv/bin/python benchmarks/bench_s3_workers.py [--jobs 160] [--users 20]
[--workers 1,2,4] [--latency 0.5] [--concurrency 4] [--repeat 1]``. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import bench_workers as bw
from pydantic import SecretStr

MOTO = str(Path(sys.executable).with_name("moto_server"))
BUCKET = "imagebot-bench"
KEY = base64.urlsafe_b64encode(b"imagebot-bench-s3-key-32-bytes!!").decode()
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class MotoProcess:
    """``moto_server`` on a free loopback port, with the benchmark's bucket."""

    def __enter__(self) -> MotoProcess:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [MOTO, "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket=BUCKET)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def install_s3(moto_url: str) -> None:
    """Point the submit phase and every worker of ``bench_workers`` at the S3 store, and
    give each worker a data folder of its own."""
    for name, value in S3_ENV.items():
        os.environ[name] = value
    s3 = {
        "file_store": "s3",
        "s3_bucket": BUCKET,
        "s3_endpoint_url": moto_url,
        "s3_region": "us-east-1",
        "s3_prefix": "bench/",
        "encryption_key": KEY,
    }
    original_settings = c.bench_settings

    def bench_settings(workdir: Path, **kw: Any) -> Any:
        settings = original_settings(workdir, **kw)
        return settings.model_copy(update={**s3, "encryption_key": SecretStr(KEY)})

    original_env = bw.worker_env

    def worker_env(*, data_dir: Path, name: str, **kw: Any) -> dict[str, str]:
        env = original_env(data_dir=data_dir.parent / f"data-{name}", name=name, **kw)
        env.update(
            IMAGEBOT_FILE_STORE="s3",
            IMAGEBOT_S3_BUCKET=BUCKET,
            IMAGEBOT_S3_ENDPOINT_URL=moto_url,
            IMAGEBOT_S3_REGION="us-east-1",
            IMAGEBOT_S3_PREFIX="bench/",
            IMAGEBOT_ENCRYPTION_KEY=KEY,
            **S3_ENV,
        )
        return env

    c.bench_settings = bench_settings  # type: ignore[assignment]
    bw.c.bench_settings = bench_settings  # type: ignore[assignment]
    bw.worker_env = worker_env  # type: ignore[assignment]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=160)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--latency", type=float, default=0.5, help="provider latency, s")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--per-user", type=int, default=None)
    parser.add_argument("--submitters", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--pg-url", default=c.PG_URL)
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every worker count against one S3 store and one slow provider."""
    counts = [int(x) for x in re.split(r"[,\s]+", args.workers.strip()) if x]
    report: dict[str, Any] = {
        "benchmark": "s3_workers",
        "db": "postgres",
        "file_store": "s3 (moto_server on loopback, client-side encryption)",
        "jobs": args.jobs,
        "users": args.users,
        "concurrency": args.concurrency,
        "provider_latency_s": args.latency,
        "repeat": args.repeat,
        "load_avg_start": bw.load_average(),
    }
    with (
        tempfile.TemporaryDirectory(prefix="imagebot-bench-s3-") as tmp,
        MotoProcess() as moto,
        bw.FakeProviderProcess(latency=args.latency) as provider,
    ):
        install_s3(moto.url)
        args.realistic = False
        runs: dict[int, list[dict[str, Any]]] = {count: [] for count in counts}
        for round_ in range(args.repeat):
            for count in counts:
                workdir = Path(tmp) / f"r{round_}-w{count}"
                workdir.mkdir()
                runs[count].append(await bw.run_count(args, count, workdir, provider))
                shared = [p for p in workdir.rglob("*") if p.suffix in (".png", ".jpg")]
                runs[count][-1]["local_image_files"] = len(shared)
        for count in counts:
            best = max(runs[count], key=lambda f: f["jobs_per_s"])
            keep = ("jobs_per_s", "steady_jobs_per_s", "run_s", "cpu_ms_per_job")
            keep += ("db_cpu_ms_per_job", "machine_busy", "jobs_by_worker", "ok")
            keep += ("local_image_files", "problems")
            report.update({f"workers_{count}_{k}": best[k] for k in keep if k in best})
            if args.repeat > 1:
                report[f"workers_{count}_jobs_per_s_runs"] = [f["jobs_per_s"] for f in runs[count]]
    base = report.get(f"workers_{counts[0]}_jobs_per_s")
    for count in counts[1:]:
        if base:
            report[f"speedup_{count}"] = round(report[f"workers_{count}_jobs_per_s"] / base, 2)
    report["load_avg_end"] = bw.load_average()
    report["python"] = c.python_version()
    report["machine"] = c.machine()
    return report


def main() -> None:
    """Parse flags, run, print one JSON line."""
    args = parse_args()
    c.setup_logging(args.log_level)
    c.emit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
