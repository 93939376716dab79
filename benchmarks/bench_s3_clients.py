"""Benchmark: two async S3 clients, aiobotocore (what ``storage/files/s3.py`` uses) and
obstore (Rust ``object_store`` bindings), doing the store's work against one S3 server.

``moto_server`` (moto's threaded server) runs on loopback in a process of its own, with one
bucket. Each client then runs in a fresh child process of this script, so that its import,
its memory and its CPU are its own (``getrusage`` of the child: every thread, which counts
obstore's Rust runtime threads too); the rounds alternate the order of the clients. In
each child, with the client configured as the store configures it (path-style addressing,
SigV4, a pool of 32 connections):

- ``put``: 200 objects of 2.2 MB, 16 at once (content type and the store's ``sha256`` /
  ``encrypted`` metadata on each; the checksums the store computes itself are not counted);
- ``get``: every object read whole, 16 at once; ``stream``: read again in 64 KiB chunks;
- ``put_small``: 1,000 keys of 64 bytes, 32 at once (the set-up of the next three);
- ``list``: a listing of those 1,000 keys (one ``ListObjectsV2`` page), 10 times;
- ``presign``: 1,000 presigned GET URLs, one call each (900 s);
- ``delete``: the 1,000 keys in ``DeleteObjects`` batches (one batch of 1,000).

Each phase reports wall time, the client process's CPU per operation (an object, a key, a
URL; a whole listing for ``list``), its peak RSS during the phase (``VmHWM``, reset before
each phase) and the CPU the moto process spent meanwhile: on loopback the server's CPU,
not the client's, sets the wall time, so ``cpu_ms_per_op`` is the figure that matters.
``import_*``: the time and RSS cost of importing each client in a fresh interpreter, and of
opening its first client (botocore loads the S3 service model then), medians of 5.

Run: ``.venv/bin/python benchmarks/bench_s3_clients.py [--rounds 3] [--objects 200]
[--size 2200000] [--keys 1000]``. obstore is not a dependency of imagebot: install it into
your venv (``.venv/bin/pip install obstore``) to measure it; without it only aiobotocore is
measured and ``obstore`` says why. Prints one JSON line: medians over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLIENTS = ("aiobotocore", "obstore")
PHASES = ("put", "get", "stream", "put_small", "list", "presign", "delete")
CHUNK = 64 * 1024
REGION = "us-east-1"


# --- readings -----------------------------------------------------------------------------------


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _status_kb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    return 0.0


def rss_mb() -> float:
    """Current resident set size, MB."""
    return round(_status_kb("VmRSS") / 1024, 1)


def hwm_mb() -> float:
    """Peak resident set size since the last :func:`reset_hwm`, MB."""
    return round(_status_kb("VmHWM") / 1024, 1)


def reset_hwm() -> None:
    """Reset the kernel's peak-RSS mark of this process (Linux ``clear_refs`` 5)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process (Linux ``/proc``)."""
    if pid <= 0:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the two clients, behind the same five calls --------------------------------------------------


class Aiobotocore:
    """aiobotocore configured as ``storage.files.s3.S3FileStore`` configures it."""

    name = "aiobotocore"

    def __init__(self, endpoint: str, bucket: str) -> None:
        self.endpoint, self.bucket = endpoint, bucket
        self._stack: Any = None
        self.client: Any = None

    async def open(self) -> None:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        config = AioConfig(
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=32,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
        )
        self._stack = contextlib.AsyncExitStack()
        self.client = await self._stack.enter_async_context(
            get_session().create_client(
                "s3", region_name=REGION, endpoint_url=self.endpoint, config=config
            )
        )

    async def close(self) -> None:
        await self._stack.aclose()

    async def put(self, key: str, data: bytes, metadata: dict[str, str]) -> None:
        await self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType="application/octet-stream",
            Metadata=metadata,
        )

    async def get(self, key: str) -> int:
        resp = await self.client.get_object(Bucket=self.bucket, Key=key)
        async with resp["Body"] as body:
            return len(await body.read())

    async def stream(self, key: str) -> int:
        resp = await self.client.get_object(Bucket=self.bucket, Key=key)
        size = 0
        async with resp["Body"] as body:
            async for chunk in body.iter_chunks(CHUNK):
                size += len(chunk)
        return size

    async def list_keys(self, prefix: str) -> int:
        count = 0
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            count += len(page.get("Contents", ()))
        return count

    async def presign(self, key: str) -> str:
        url: str = await self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=900
        )
        return url

    async def delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            resp = await self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True},
            )
            if resp.get("Errors"):
                raise OSError(f"{len(resp['Errors'])} keys not deleted")


class Obstore:
    """obstore's S3Store with the same addressing, credentials and pool size."""

    name = "obstore"

    def __init__(self, endpoint: str, bucket: str) -> None:
        self.endpoint, self.bucket = endpoint, bucket
        self.store: Any = None

    async def open(self) -> None:
        from obstore.store import S3Store

        self.store = S3Store(
            self.bucket,
            endpoint=self.endpoint,
            region=REGION,
            access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
            secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            virtual_hosted_style_request=False,
            client_options={"allow_http": True, "pool_max_idle_per_host": "32"},
        )

    async def close(self) -> None:
        self.store = None

    async def put(self, key: str, data: bytes, metadata: dict[str, str]) -> None:
        import obstore

        # Attributes other than the standard headers are sent as x-amz-meta-* metadata.
        attributes: Any = {"Content-Type": "application/octet-stream", **metadata}
        await obstore.put_async(self.store, key, data, attributes=attributes)

    async def get(self, key: str) -> int:
        import obstore

        resp = await obstore.get_async(self.store, key)
        return len(await resp.bytes_async())

    async def stream(self, key: str) -> int:
        import obstore

        resp = await obstore.get_async(self.store, key)
        size = 0
        async for chunk in resp.stream(min_chunk_size=CHUNK):
            size += len(chunk)
        return size

    async def list_keys(self, prefix: str) -> int:
        import obstore

        count = 0
        async for batch in obstore.list(self.store, prefix, chunk_size=1000):
            count += len(batch)
        return count

    async def presign(self, key: str) -> str:
        import obstore

        url: str = await obstore.sign_async(self.store, "GET", key, timedelta(seconds=900))
        return url

    async def delete(self, keys: list[str]) -> None:
        import obstore

        await obstore.delete_async(self.store, keys)  # DeleteObjects, 1,000 a request


# --- one client's run (a child process) --------------------------------------------------


async def gather_limited(n: int, limit: int, work: Callable[[int], Awaitable[Any]]) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(i: int) -> Any:
        async with gate:
            return await work(i)

    return await asyncio.gather(*(one(i) for i in range(n)))


async def run_client(args: argparse.Namespace) -> dict[str, Any]:
    cls = Aiobotocore if args.child == "aiobotocore" else Obstore
    client = cls(args.endpoint, args.bucket)
    await client.open()
    out: dict[str, Any] = {"client": client.name, "rss_after_open_mb": rss_mb()}
    prefix = args.prefix
    data = os.urandom(args.size)
    metadata = {"sha256": "0" * 64, "encrypted": "1"}
    big = [f"{prefix}big/{i:05d}" for i in range(args.objects)]
    small = [f"{prefix}small/{i:05d}" for i in range(args.keys)]
    list_repeat = 10

    outside = [hwm_mb()]  # peaks between the phases (start-up, clean-up)

    async def phase(name: str, ops: int, work: Callable[[], Awaitable[Any]]) -> Any:
        outside.append(hwm_mb())
        reset_hwm()
        moto0, cpu0, t0 = process_cpu_s(args.moto_pid), cpu_s(), time.perf_counter()
        result = await work()
        wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
        out[name] = {
            "ops": ops,
            "wall_s": round(wall, 3),
            "cpu_ms_per_op": round(cpu * 1000 / ops, 3),
            "cpu_s": round(cpu, 3),
            "peak_rss_mb": hwm_mb(),
            "server_cpu_s": round(process_cpu_s(args.moto_pid) - moto0, 3),
        }
        return result

    conc = args.concurrency
    await phase(
        "put",
        len(big),
        lambda: gather_limited(len(big), conc, lambda i: client.put(big[i], data, metadata)),
    )
    sizes = await phase(
        "get", len(big), lambda: gather_limited(len(big), conc, lambda i: client.get(big[i]))
    )
    assert all(s == args.size for s in sizes), "a whole read came back short"
    sizes = await phase(
        "stream", len(big), lambda: gather_limited(len(big), conc, lambda i: client.stream(big[i]))
    )
    assert all(s == args.size for s in sizes), "a streamed read came back short"
    await client.delete(big)  # free the server's memory (not measured)
    tiny = b"x" * 64
    await phase(
        "put_small",
        len(small),
        lambda: gather_limited(len(small), 32, lambda i: client.put(small[i], tiny, metadata)),
    )

    async def listings() -> list[int]:
        return [await client.list_keys(f"{prefix}small/") for _ in range(list_repeat)]

    counts = await phase("list", list_repeat, listings)
    assert counts == [len(small)] * list_repeat, counts

    async def presigns() -> list[str]:
        return [await client.presign(k) for k in small]

    urls = await phase("presign", len(small), presigns)
    assert all("Signature=" in u for u in urls), urls[0]
    await phase("delete", len(small), lambda: client.delete(small))
    assert await client.list_keys(prefix) == 0, "keys left after delete"
    await client.close()
    # The child's peak over its life: the phases' peaks and those between them
    # (ru_maxrss is no good here: resetting VmHWM resets it too).
    phases = [out[p]["peak_rss_mb"] for p in PHASES]
    out["peak_rss_mb"] = max([*phases, *outside, hwm_mb()])
    return out


def import_cost(name: str, endpoint: str) -> dict[str, float]:
    """Import one client in this fresh interpreter and open its first client."""
    rss0, cpu0, t0 = rss_mb(), cpu_s(), time.perf_counter()
    if name == "aiobotocore":
        import aiobotocore.session  # noqa: F401
        from aiobotocore.config import AioConfig  # noqa: F401
    else:
        import obstore  # noqa: F401
        from obstore.store import S3Store  # noqa: F401
    t1, cpu1, rss1 = time.perf_counter(), cpu_s(), rss_mb()
    client = Aiobotocore(endpoint, "x") if name == "aiobotocore" else Obstore(endpoint, "x")

    async def open_close() -> None:
        await client.open()
        await client.close()

    asyncio.run(open_close())
    return {
        "python_rss_mb": rss0,
        "import_ms": round((t1 - t0) * 1000, 1),
        "import_cpu_ms": round((cpu1 - cpu0) * 1000, 1),
        "import_rss_mb": round(rss1 - rss0, 1),
        "first_client_ms": round((time.perf_counter() - t1) * 1000, 1),
        "first_client_rss_mb": round(rss_mb() - rss1, 1),
    }


# --- the parent: moto, children, medians ---------------------------------------------------------


def child(argv: list[str], env: dict[str, str], exits: list[int]) -> dict[str, Any]:
    """Run one child; its JSON line. A child that printed its figures and then died at
    exit (seen with obstore: SIGABRT while the interpreter shuts down, about 1 run in 6)
    still counts; its exit status goes to ``exits``."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"child {argv[:2]} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    if proc.returncode != 0:
        exits.append(proc.returncode)
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def obstore_missing() -> str | None:
    try:
        import obstore  # noqa: F401
    except ImportError as exc:
        return f"not installed ({exc}); pip install obstore into the venv to measure it"
    return None


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in ("aiobotocore", "botocore", "obstore", "moto"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "absent"
    return found


def main(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from bench_s3_workers import BUCKET, S3_ENV, MotoProcess

    env = {**os.environ, **S3_ENV}
    os.environ.update(S3_ENV)
    missing = obstore_missing()
    clients = [c for c in CLIENTS if not (c == "obstore" and missing)]
    figures: dict[str, Any] = {
        "benchmark": "s3_clients",
        "server": "moto_server on loopback, its own process",
        "objects": args.objects,
        "object_bytes": args.size,
        "concurrency": args.concurrency,
        "keys": args.keys,
        "rounds": args.rounds,
        "load_avg_start": round(os.getloadavg()[0], 2),
    }
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
    imports: dict[str, list[dict[str, float]]] = {c: [] for c in clients}
    exits: dict[str, list[int]] = {c: [] for c in clients}
    with MotoProcess() as moto:
        for _ in range(5):
            for name in clients:
                imports[name].append(
                    child(["--import-cost", name, "--endpoint", moto.url], env, exits[name])
                )
        for r in range(args.rounds):
            order = clients if r % 2 == 0 else clients[::-1]
            for name in order:
                argv = [
                    "--child", name, "--endpoint", moto.url, "--bucket", BUCKET,
                    "--moto-pid", str(moto.proc.pid), "--prefix", f"r{r}/{name}/",
                    "--objects", str(args.objects), "--size", str(args.size),
                    "--keys", str(args.keys), "--concurrency", str(args.concurrency),
                ]  # fmt: skip
                runs[name].append(child(argv, env, exits[name]))
    for name in clients:
        for key in imports[name][0]:
            figures[f"{name}_{key}"] = median([i[key] for i in imports[name]])
        for phase in PHASES:
            for key in ("wall_s", "cpu_ms_per_op", "peak_rss_mb", "server_cpu_s"):
                figures[f"{name}_{phase}_{key}"] = median([run[phase][key] for run in runs[name]])
        figures[f"{name}_peak_rss_mb"] = median([run["peak_rss_mb"] for run in runs[name]])
        figures[f"{name}_rss_after_open_mb"] = median(
            [run["rss_after_open_mb"] for run in runs[name]]
        )
        figures[f"{name}_children"] = len(imports[name]) + len(runs[name])
        figures[f"{name}_children_died_at_exit"] = exits[name]
    if missing:
        figures["obstore"] = missing
    elif "aiobotocore" in runs:
        for phase in PHASES:
            a = figures[f"aiobotocore_{phase}_cpu_ms_per_op"]
            o = figures[f"obstore_{phase}_cpu_ms_per_op"]
            figures[f"cpu_ratio_{phase}"] = round(a / o, 2) if o else None
    figures["load_avg_end"] = round(os.getloadavg()[0], 2)
    figures["versions"] = versions()
    figures["python"] = sys.version.split()[0]
    figures["machine"] = f"{len(os.sched_getaffinity(0))} cores"
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--size", type=int, default=2_200_000, help="bytes per object")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--keys", type=int, default=1000)
    # Internal: a child process measuring one client.
    parser.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--import-cost", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", default="", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", default="", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    parser.add_argument("--moto-pid", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = parse_args()
    if options.import_cost:
        print(json.dumps(import_cost(options.import_cost, options.endpoint)), flush=True)
    elif options.child:
        print(json.dumps(asyncio.run(run_client(options))), flush=True)
    else:
        print(json.dumps(main(options)), flush=True)
