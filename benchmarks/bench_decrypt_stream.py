"""Benchmark: streaming decryption of a 50 MB object (``IBE2``), as the ``/files/<token>``
route serves it, against reading an ``IBE1`` object whole (the form before).

Each measurement runs in a fresh process, so ``ru_maxrss`` (the process's peak RSS) is
that of one download: the object is written to a local store folder piece by piece
(never held whole), then read back through ``LocalFileStore.open`` (``IBE2``: 256 KiB
reads, 64 KiB AES-GCM segments) or ``LocalFileStore.read`` (``IBE1``: one AES-GCM
message, which must be read and verified whole). Reported: MB/s of plaintext and the peak
RSS of the process (with its RSS before the read), for each form, plus the plain (no key)
stream for reference.

Run: ``.venv/bin/python benchmarks/bench_decrypt_stream.py [--mb 50]``. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.crypto import DataCipher
from storage.files import LocalFileStore

PATH = "users/1/exports/export-20260101-000000-1.zip"


def rss_mb() -> float:
    """The current RSS (Linux), in MB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_mb() -> float:
    """The process's peak RSS, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def blocks() -> list[bytes]:
    """Four distinct 1 MiB blocks, cycled by the writer (the content does not change
    AES-GCM's speed)."""
    return [hashlib.sha256(str(i).encode()).digest() * (1024 * 1024 // 32) for i in range(4)]


def write(root: Path, mode: str, mb: int, key: bytes) -> None:
    """Write the object in ``mode`` (ibe2, ibe1 or plain) without holding it whole
    (IBE1 is one message: that writer holds it, in its own process)."""
    target = root / PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    pieces = blocks()
    source = (pieces[i % len(pieces)] for i in range(mb))
    with target.open("wb") as fh:
        if mode == "ibe2":
            for part in DataCipher(key).seal_chunks(source):
                fh.write(part)
        elif mode == "ibe1":
            fh.write(DataCipher(key).encrypt(b"".join(source)))
        else:
            for part in source:
                fh.write(part)


async def read(root: Path, mode: str, key: bytes) -> dict[str, float]:
    """Read the object back as a download would; figures for this process."""
    store = LocalFileStore(root, DataCipher(key) if mode != "plain" else None)
    before = rss_mb()
    start = time.perf_counter()
    total = 0
    hasher = hashlib.sha256()
    if mode == "ibe1":
        data = await store.read(PATH)
        total = len(data)
        hasher.update(data)
        del data
    else:
        opened = await store.open(PATH)
        async for chunk in opened.chunks:
            total += len(chunk)
            hasher.update(chunk)
    seconds = time.perf_counter() - start
    return {
        "mb_per_s": round(total / 1e6 / seconds, 1),
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak_mb(), 1),
        "bytes": total,
    }


def child(mode: str, mb: int) -> None:
    """One measurement in this (fresh) process: write in a grandchild, then read."""
    key = bytes(range(32))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(
            [sys.executable, __file__, "--write", mode, "--mb", str(mb), "--root", tmp],
            check=True,
        )
        print(json.dumps(asyncio.run(read(root, mode, key))))


def measure(mode: str, mb: int) -> dict[str, float]:
    """Run :func:`child` in a fresh interpreter; its figures."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--mb", str(mb)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Parse the arguments; print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--child")
    parser.add_argument("--write")
    parser.add_argument("--root")
    args = parser.parse_args()
    if args.write:
        write(Path(args.root), args.write, args.mb, bytes(range(32)))
        return
    if args.child:
        child(args.child, args.mb)
        return
    figures = {mode: measure(mode, args.mb) for mode in ("ibe2", "ibe1", "plain")}
    print(
        json.dumps(
            {
                "benchmark": "decrypt_stream",
                "object_mb": args.mb,
                **{
                    f"{name}_{figure}": figures[mode][figure]
                    for mode, name in (
                        ("ibe2", "ibe2_stream"),
                        ("ibe1", "ibe1_whole"),
                        ("plain", "plain_stream"),
                    )
                    for figure in ("mb_per_s", "rss_before_mb", "peak_rss_mb")
                },
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
