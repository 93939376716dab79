"""Benchmark: the web gallery's pages on a user with many results.

Set-up (not measured): a core as shipped (``bot.wiring.build_core``, migrations) on a fresh
SQLite file, the demo model (Pillow draws each 1024x1024 image), ``--results`` finished
results of one user, imagebot's HTTP server on loopback with ``IMAGEBOT_PUBLIC_URL``
pointing at it, and one aiohttp client signed in through a /gallery link.

Measured (wall clock, client side, one request at a time):

- ``grid_ms_p50``/``_p95``: ``GET /gallery/`` (the newest 24 tiles), ``--reps`` times;
- ``filter_ms_p50``: ``GET /gallery/?q=…`` matching a third of the prompts (the filter
  reads every prompt of the user: prompts may be encrypted at rest, so it runs in Python);
- ``thumb_cold_ms_p50``/``_max``: the first ``GET /gallery/thumb/…`` of each of the 24
  tiles (reads the original, makes a 512-px WebP in a thread, stores it);
- ``thumb_warm_ms_p50``: the same thumbnails again (read from the file store);
- ``original_kb_mean`` and ``thumb_kb_mean``: what a tile saves the browser.

Run: ``.venv/bin/python benchmarks/bench_gallery.py [--results 240] [--reps 50]``.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import ClientSession, CookieJar, web

from benchmarks._common import emit, machine, python_version, setup_logging
from bot.web.server import build_http_app
from bot.wiring import build_core
from core.settings import Settings
from core.types import (
    Actor,
    Conversation,
    GenerateOptions,
    GenerateRequest,
    ReplyTarget,
)

WORDS = ("lighthouse", "fox", "ramen")


class _Quiet:
    """A notifier that drops every event (nothing is measured on the chat side)."""

    async def notify(self, target: Any, event: Any) -> None:
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def timed(client: ClientSession, url: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    async with client.get(url) as response:
        body = await response.read()
        assert response.status == 200, (url, response.status)
    return (time.perf_counter() - start) * 1000, body


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-gallery-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{workdir}/imagebot.db",
        data_dir=workdir / "data",
        free_credits=10_000_000,
        image_provider="demo",
        moderation=False,
        require_terms=False,
        max_queued_per_user=100_000,
        rate_user_burst=1_000_000,
        rate_chat_burst=1_000_000,
        public_url=base,
    )
    core = await build_core(settings, migrate=True)
    core.notifier.register("bench", _Quiet())
    who = Actor("bench", "1", "Bench")
    for i in range(args.results):
        await core.generation.submit(
            GenerateRequest(
                actor=who,
                conversation=Conversation("bench", "1", is_private=True),
                prompt=f"a {WORDS[i % 3]} number {i}, watercolour",
                options=GenerateOptions(quality="low"),
                idempotency_key=f"bench:{i}",
                reply_target=ReplyTarget("bench", "1"),
            )
        )
    await core.worker.run_until_idle(timeout=1800)
    runner = web.AppRunner(build_http_app(core), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    figures: dict[str, Any] = {"results": args.results, "reps": args.reps}
    try:
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as client:
            token = (await core.gallery_access.sign_in_link(who)).rsplit("/", 1)[1]
            async with client.post(f"{base}/gallery/signin", data={"token": token}) as r:
                assert r.status == 200
            page = await core.gallery.page((await core.credits.user_for(who)) or 0)
            tiles = [(i.job_id, i.index, i.image.size_bytes) for i in page.items]
            cold, warm, thumb_sizes = [], [], []
            for job_id, index, _ in tiles:
                ms, body = await timed(client, f"{base}/gallery/thumb/{job_id}/{index}")
                cold.append(ms)
                thumb_sizes.append(len(body))
            for job_id, index, _ in tiles:
                warm.append((await timed(client, f"{base}/gallery/thumb/{job_id}/{index}"))[0])
            grid = [(await timed(client, f"{base}/gallery/"))[0] for _ in range(args.reps)]
            filtered = [
                (await timed(client, f"{base}/gallery/?q=fox"))[0] for _ in range(args.reps)
            ]
        figures.update(
            grid_ms_p50=round(statistics.median(grid), 2),
            grid_ms_p95=round(sorted(grid)[int(len(grid) * 0.95) - 1], 2),
            filter_ms_p50=round(statistics.median(filtered), 2),
            thumb_cold_ms_p50=round(statistics.median(cold), 2),
            thumb_cold_ms_max=round(max(cold), 2),
            thumb_warm_ms_p50=round(statistics.median(warm), 2),
            original_kb_mean=round(statistics.mean(s for _, _, s in tiles) / 1024, 1),
            thumb_kb_mean=round(statistics.mean(thumb_sizes) / 1024, 1),
            machine=machine(),
            python=python_version(),
        )
    finally:
        await runner.cleanup()
        await core.aclose()
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=240)
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()
    setup_logging()
    emit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
