"""The loopback OpenAI fake in a process of its own, for benchmarks.

Starts ``FakeOpenAI(image_bytes_factory=realistic_factory)`` (≈2.2 MB noisy PNGs at
1024x1024), makes the image once, then prints one line on stdout::

    {"base_url": "http://127.0.0.1:PORT/v1", "pid": 1234}

and serves until its stdin closes (the parent exited or closed the pipe) or it gets
SIGTERM/SIGINT. On the way out it prints a second line with its own figures::

    {"provider_cpu_s": 1.23, "requests": 200, "errors": 0}

Running the fake here keeps its CPU (base64 encoding, JSON, serving) out of the figures
of the imagebot process under test. Not a benchmark itself; see ``_common.ProviderProcess``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.openai_server import FakeOpenAI, realistic_factory, realistic_png


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def serve() -> None:
    """Serve until stdin reaches EOF or a termination signal arrives."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)

    def watch_stdin() -> None:
        # A daemon thread: returns when the parent closes the pipe (or dies).
        with contextlib.suppress(Exception):
            while sys.stdin.buffer.read(4096):
                pass
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()

    realistic_png(1024, 1024)  # cached: pay the ~0.2 s of making it before serving
    fake = FakeOpenAI(image_bytes_factory=realistic_factory)
    # A real bucket far above any benchmark's rate: the fake's fixed default headers
    # (250 a minute, 249 left) would otherwise pace imagebot at 4.2 calls a second.
    fake.rate_limit(1_000_000)
    await fake.start()
    served = 0
    try:
        print(json.dumps({"base_url": fake.base_url, "pid": os.getpid()}), flush=True)
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.5)
            # The fake keeps every request (with its body); a benchmark sends thousands.
            served += len(fake.requests)
            fake.requests.clear()
    finally:
        await fake.stop()
    for error in fake.errors:
        print(f"fake provider error: {error!r}", file=sys.stderr)
    print(
        json.dumps(
            {
                "provider_cpu_s": round(_cpu_s(), 3),
                "requests": served,
                "errors": len(fake.errors),
            }
        ),
        flush=True,
    )


def main() -> None:
    """Entry point."""
    asyncio.run(serve())


if __name__ == "__main__":
    main()
