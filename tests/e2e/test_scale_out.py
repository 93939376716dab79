"""Many processes on one PostgreSQL: every job done exactly once, a killed worker's job
taken over after its lease, one scheduler at a time (the production issue)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.wiring import build_core
from storage.database import Database
from tests.conftest import ledger_problems, make_settings
from tests.e2e.test_cli_console import clean_env
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import actor, request

IMAGEBOT = str(Path(sys.executable).parent / "imagebot")
KEY = "sk-test-scale-0123456789"
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def worker_env(
    url: str, schema: str, tmp_path: Path, fake: FakeOpenAI, **extra: str
) -> dict[str, str]:
    return clean_env(
        IMAGEBOT_DATABASE_URL=url,
        IMAGEBOT_DATABASE_SCHEMA=schema,
        IMAGEBOT_DATA_DIR=str(tmp_path / "data"),
        OPENAI_API_KEY=KEY,
        OPENAI_BASE_URL=fake.base_url,
        IMAGEBOT_LEASE_SECONDS="2",
        IMAGEBOT_PARTIAL_IMAGES="0",
        IMAGEBOT_PROVIDER_MAX_RETRIES="0",
        IMAGEBOT_MODERATION="false",
        IMAGEBOT_WORKER_CONCURRENCY="4",
        IMAGEBOT_PER_USER_CONCURRENCY="4",
        IMAGEBOT_SHUTDOWN_GRACE_SECONDS="5",
        **extra,
    )


async def spawn(env: dict[str, str], cwd: Path, *roles: str) -> asyncio.subprocess.Process:
    args = [IMAGEBOT, "run"]
    for role in roles:
        args += ["--role", role]
    return await asyncio.create_subprocess_exec(
        *args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


async def states(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT state, COUNT(*) FROM jobs GROUP BY state"))).all()
    return {s: int(n) for s, n in rows}


async def test_three_workers_300_jobs_one_killed_every_job_exactly_once(
    postgres_schema: tuple[str, str], tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    url, schema = postgres_schema
    db = Database(url, schema=schema)
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                "TRUNCATE users, jobs, job_images, ledger_entries, "
                "credit_accounts RESTART IDENTITY CASCADE"
            )
        )
    core = await build_core(
        make_settings(
            tmp_path,
            db,
            image_provider="openai",
            openai_api_key=KEY,
            openai_base_url=openai_fake.base_url,
            free_credits=100,
            max_queued_per_user=100,
        ),
        database=db,
        migrate=False,
    )
    openai_fake.latency = 0.05
    env = worker_env(url, schema, tmp_path, openai_fake)
    workers: list[asyncio.subprocess.Process] = []
    try:
        for i in range(300):
            await core.generation.submit(request(actor(f"u{i % 10}"), f"job {i}", quality="low"))
        workers = [
            await spawn({**env, "IMAGEBOT_WORKER_NAME": f"w{n}"}, tmp_path, "worker")
            for n in range(3)
        ]

        async def victim_running() -> int:
            async with db.engine.connect() as conn:
                return int(
                    (
                        await conn.execute(
                            text(
                                "SELECT COUNT(*) FROM jobs "
                                "WHERE state = 'running' AND lease_owner = 'w0'"
                            )
                        )
                    ).scalar_one()
                )

        async with asyncio.timeout(60):  # kill w0 while it holds jobs, after some progress
            while (await states(db)).get("succeeded", 0) < 60 or not await victim_running():
                await asyncio.sleep(0.02)
        workers[0].send_signal(signal.SIGKILL)
        await workers[0].wait()
        orphaned = await victim_running()
        assert orphaned >= 1

        async with asyncio.timeout(90):
            while (await states(db)).get("succeeded", 0) < 300:
                await asyncio.sleep(0.1)
        final = await states(db)
        assert final == {"succeeded": 300}, final
        async with db.engine.connect() as conn:
            captures = (
                await conn.execute(
                    text(
                        "SELECT job_id, COUNT(*) FROM ledger_entries WHERE kind = 'capture' "
                        "GROUP BY job_id"
                    )
                )
            ).all()
            releases = (
                await conn.execute(
                    text("SELECT COUNT(*) FROM ledger_entries WHERE kind = 'release'")
                )
            ).scalar_one()
            retried = (
                await conn.execute(text("SELECT COUNT(*) FROM jobs WHERE attempts > 1"))
            ).scalar_one()
            outputs = (
                await conn.execute(text("SELECT COUNT(*) FROM job_images WHERE role = 'output'"))
            ).scalar_one()
        assert len(captures) == 300 and all(n == 1 for _, n in captures)
        assert releases == 0
        assert outputs == 300
        assert retried >= orphaned  # the killed worker's jobs ran again, each once
        assert await ledger_problems(db) == []
        for who in range(10):
            balance = await core.credits.balance((await core.users.register(actor(f"u{who}"))).id)
            assert balance.available == 100 - 30 and balance.held == 0
    finally:
        for w in workers[1:]:
            if w.returncode is None:
                w.send_signal(signal.SIGTERM)
        for w in workers[1:]:
            _, err = await asyncio.wait_for(w.communicate(), 30)
            assert w.returncode == 0, err.decode()[-3000:]
            assert b"Traceback" not in err, err.decode()[-3000:]
        await core.aclose()
        await db.dispose()


async def test_two_scheduler_processes_sweep_once(
    postgres_schema: tuple[str, str], tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    url, schema = postgres_schema
    env = worker_env(
        url,
        schema,
        tmp_path,
        openai_fake,
        IMAGEBOT_RETENTION_INTERVAL_MINUTES="0.01",
        IMAGEBOT_LOG_LEVEL="DEBUG",
        IMAGEBOT_HTTP_PORT="0",
    )
    procs = [await spawn(env, tmp_path, "scheduler") for _ in range(2)]
    logs: list[list[str]] = [[], []]

    async def read(index: int) -> None:
        stream = procs[index].stderr
        assert stream is not None
        while line := await stream.readline():
            logs[index].append(line.decode())

    readers = [asyncio.create_task(read(i)) for i in range(2)]

    def seen(text_: str) -> int:
        return sum(1 for lines in logs for line in lines if text_ in line)

    try:
        async with asyncio.timeout(60):  # both running, the leader has swept a few times
            while seen("retention sweep done") < 3 or seen("another process leads") < 3:
                await asyncio.sleep(0.1)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            await asyncio.wait_for(proc.wait(), 30)
        await asyncio.gather(*readers)
    outputs = ["".join(lines) for lines in logs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    sweeps = [out.count("retention sweep done") for out in outputs]
    assert sorted(n > 0 for n in sweeps) == [False, True], sweeps
