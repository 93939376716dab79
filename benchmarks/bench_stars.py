"""Benchmark: how fast the bot answers Telegram's pre-checkout queries under a burst.

Telegram cancels a Stars payment whose ``pre_checkout_query`` is not answered within 10
seconds. Two processes, so the bot's event loop is its own:

- the Telegram fake (``tests/fakes/telegram_server.py``, this file with ``--child-fake``):
  it pushes ``--burst`` pre-checkout queries at once (one per buyer, each for an invoice
  the bot made) and times, for each, the bot's ``answerPreCheckoutQuery``;
- imagebot (this file): the real core on SQLite (or PostgreSQL with ``--postgres URL``),
  the real python-telegram-bot adapter long polling the fake.

The buyers and their orders (what ``/buy`` and an invoice press make) are created before
anything is measured. Every answer must be ``ok``. Prints one JSON line:
``answer_p50_ms``, ``answer_p99_ms``, ``answer_max_ms`` (Telegram's limit: 10 000 ms).

Run: ``.venv/bin/python benchmarks/bench_stars.py [--burst 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _common as c

FIRST_USER = 500_000


async def _fake_child() -> None:
    """The Telegram fake in its own process; commands arrive as JSON lines on stdin."""
    from tests.fakes.telegram_server import FakeTelegram, FakeUser

    fake = FakeTelegram(keep_files=False)
    await fake.start()
    print(json.dumps({"base_url": fake.base_url}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        order = json.loads(line)
        queries = [
            fake.send_pre_checkout(FakeUser(FIRST_USER + i, f"b{i}"), payload, amount)
            for i, (payload, amount) in enumerate(order["payloads"])
        ]
        await asyncio.gather(*(fake.wait_pre_checkout(q, timeout=30) for q in queries))
        times = [q.answer_seconds or 0.0 for q in queries]
        print(
            json.dumps({"times": times, "ok": sum(1 for q in queries if q.ok)}),
            flush=True,
        )
    await fake.stop()


async def _bench(burst: int, postgres: str | None) -> dict[str, Any]:
    from bot.telegram.app import TelegramAdapter
    from bot.telegram.payments import payload_of
    from bot.wiring import build_core
    from core.settings import Settings
    from core.types import Actor
    from tests.fakes.telegram_server import TOKEN

    child = subprocess.Popen(
        [sys.executable, __file__, "--child-fake"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    base_url = json.loads(child.stdout.readline())["base_url"]
    workdir = Path(tempfile.mkdtemp(prefix="bench-stars-"))
    schema = c.new_schema_name() if postgres else None
    if postgres and schema:
        await c.create_schema(postgres, schema)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=postgres or c.sqlite_url(workdir),
        database_schema=schema,
        data_dir=workdir / "data",
        image_provider="demo",
        telegram_token=TOKEN,
        telegram_api_url=base_url,
        telegram_rate_limit=False,
    )
    core = await build_core(settings)
    adapter = TelegramAdapter(core)
    started_adapter = False
    try:
        purchases = core.billing.purchases
        assert purchases is not None
        offer = core.billing.offer("pack_s")
        assert offer.stars is not None
        payloads = []
        for i in range(burst):
            user = await core.users.register(Actor("telegram", str(FIRST_USER + i), f"b{i}"))
            ref = await purchases.open_order(user.id, offer, rail="telegram", request_key="k")
            payloads.append((payload_of(ref, offer.id), offer.stars))
        await adapter.start()
        started_adapter = True
        await asyncio.sleep(0.5)
        cpu = c.CpuMark()
        started = time.perf_counter()
        child.stdin.write(json.dumps({"payloads": payloads}) + "\n")
        child.stdin.flush()
        line = await asyncio.get_running_loop().run_in_executor(None, child.stdout.readline)
        wall = time.perf_counter() - started
        result = json.loads(line)
        cpu_s = c.cpu_s() - cpu.cpu
    finally:
        if started_adapter:
            await adapter.stop()
        await core.aclose()
        child.stdin.close()
        child.wait(timeout=10)
        if postgres and schema:
            await c.drop_schema(postgres, schema)
    times = sorted(result["times"])
    p99_index = max(0, int(len(times) * 0.99) - 1)
    figures: dict[str, Any] = {
        "benchmark": "stars_pre_checkout",
        "database": "postgresql" if postgres else "sqlite",
        "burst": burst,
        "answered_ok": result["ok"],
        "answer_p50_ms": round(statistics.median(times) * 1000, 1),
        "answer_p99_ms": round(times[p99_index] * 1000, 1),
        "answer_max_ms": round(times[-1] * 1000, 1),
        "burst_wall_s": round(wall, 3),
        "telegram_limit_ms": 10_000,
        "machine": c.machine(),
        "python": c.python_version(),
    }
    figures["bot_cpu_ms_per_answer"] = c.ms_per(cpu_s, burst)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--postgres", default=None, help="a postgresql+asyncpg:// URL")
    parser.add_argument("--child-fake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_fake:
        asyncio.run(_fake_child())
        return
    c.setup_logging()
    c.emit(asyncio.run(_bench(args.burst, args.postgres)))


if __name__ == "__main__":
    main()
