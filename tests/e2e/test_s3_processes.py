"""Several real OS processes on one PostgreSQL and one S3 store (moto on loopback), sharing
no data directory: jobs submitted through one process are done and stored by another,
history and export work from any; the user and chat limits and the fair queue hold
across processes (the job leases: tests/e2e/test_scale_out.py)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from storage.database import Database
from tests.e2e.test_cli_console import clean_env
from tests.e2e.test_scale_out import IMAGEBOT, states
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.s3_server import CREDENTIALS, MotoS3

KEY = "sk-test-s3-processes-0123456789"
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def fresh(url: str, schema: str) -> Database:
    db = Database(url, schema=schema)
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                "TRUNCATE users, jobs, job_images, ledger_entries, credit_accounts, "
                "rate_buckets, chat_controls RESTART IDENTITY CASCADE"
            )
        )
    return db


def env_for(
    url: str, schema: str, data_dir: Path, fake: FakeOpenAI, bucket: str, s3: MotoS3, **extra: str
) -> dict[str, str]:
    values = dict(
        IMAGEBOT_DATABASE_URL=url,
        IMAGEBOT_DATABASE_SCHEMA=schema,
        IMAGEBOT_DATA_DIR=str(data_dir),
        IMAGEBOT_FILE_STORE="s3",
        IMAGEBOT_S3_BUCKET=bucket,
        IMAGEBOT_S3_ENDPOINT_URL=s3.base_url,
        IMAGEBOT_S3_REGION="us-east-1",
        IMAGEBOT_S3_PREFIX="site/",
        IMAGEBOT_ENCRYPTION_KEY="q2n8s0bVx3p6Y9wW1mZk4rTt7uHh2jLc5eGf8aSd0oI=",
        IMAGEBOT_REQUIRE_TERMS="false",
        IMAGEBOT_MODERATION="false",
        IMAGEBOT_FREE_CREDITS="100",
        IMAGEBOT_MAX_QUEUED_PER_USER="100",
        IMAGEBOT_RATE_USER_BURST="10000",
        OPENAI_API_KEY=KEY,
        OPENAI_BASE_URL=fake.base_url,
        IMAGEBOT_PARTIAL_IMAGES="0",
        IMAGEBOT_PROVIDER_MAX_RETRIES="0",
        IMAGEBOT_LEASE_SECONDS="5",
        IMAGEBOT_SHUTDOWN_GRACE_SECONDS="5",
        IMAGEBOT_HTTP_PORT="0",
        **CREDENTIALS,
    )
    values.update(extra)
    return clean_env(**values)


async def helper(env: dict[str, str], cwd: Path, verb: str, args: dict[str, Any]) -> Any:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.e2e.process_helper",
        verb,
        json.dumps(args),
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-3000:]
    return json.loads(out.decode().strip().splitlines()[-1])


async def worker(env: dict[str, str], cwd: Path, name: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        IMAGEBOT,
        "run",
        "--role",
        "worker",
        env={**env, "IMAGEBOT_WORKER_NAME": name},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def stop(procs: list[asyncio.subprocess.Process]) -> None:
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-3000:]
        assert b"Traceback" not in err, err.decode()[-3000:]


async def test_two_processes_no_shared_folder_one_s3_store(
    postgres_schema: tuple[str, str], tmp_path: Path, openai_fake: FakeOpenAI, moto_s3: MotoS3
) -> None:
    url, schema = postgres_schema
    db = await fresh(url, schema)
    bucket = moto_s3.new_bucket()
    dirs = {name: tmp_path / name for name in ("front", "back")}
    for folder in dirs.values():
        folder.mkdir()
    front = env_for(url, schema, dirs["front"] / "data", openai_fake, bucket, moto_s3)
    back = env_for(url, schema, dirs["back"] / "data", openai_fake, bucket, moto_s3)
    procs: list[asyncio.subprocess.Process] = []
    try:
        # The front process takes the requests (and stores the reference images) ...
        sent = await helper(
            front, dirs["front"], "submit", {"users": ["ada", "bob"], "count": 3, "inputs": True}
        )
        assert sent == {"accepted": 6, "refused": {"you": 0, "chat": 0}}
        # ... and the back process, a worker with its own empty folder, does the jobs.
        procs.append(await worker(back, dirs["back"], "back-1"))
        async with asyncio.timeout(90):
            while (await states(db)).get("succeeded", 0) < 6:
                await asyncio.sleep(0.1)
        async with db.engine.connect() as conn:
            owners = (await conn.execute(text("SELECT DISTINCT lease_owner FROM jobs"))).all()
        assert {o for (o,) in owners} <= {"back-1", None}
        # Every image is in the bucket, encrypted; nothing under either data folder.
        keys = moto_s3.keys(bucket)
        assert len([k for k in keys if "/output-" in k]) == 6
        assert len([k for k in keys if "/input-" in k]) == 6
        assert all(moto_s3.raw(bucket, k).startswith(b"IBE2") for k in keys)
        for folder in dirs.values():
            assert not list(folder.rglob("*.png")) and not list(folder.rglob("*.jpg"))
        # History and export from either process.
        for env, folder in ((front, dirs["front"]), (back, dirs["back"])):
            seen = await helper(env, folder, "read", {"user": "ada"})
            assert seen["states"] == ["succeeded"] * 3
            assert len(seen["images"]) == 3 and all(n > 0 for n in seen["images"])
            assert len(seen["export_images"]) == 6  # 3 references and 3 results
            assert seen["export_path"].startswith("users/")
        assert not list(tmp_path.rglob("export-*.zip"))  # exports went to the store too
    finally:
        await stop(procs)
        await db.dispose()


async def test_user_and_chat_limits_hold_across_three_processes(
    postgres_schema: tuple[str, str], tmp_path: Path, openai_fake: FakeOpenAI, moto_s3: MotoS3
) -> None:
    url, schema = postgres_schema
    db = await fresh(url, schema)
    bucket = moto_s3.new_bucket()
    env = env_for(
        url,
        schema,
        tmp_path / "data",
        openai_fake,
        bucket,
        moto_s3,
        IMAGEBOT_RATE_USER_BURST="5",
        IMAGEBOT_RATE_USER_PER_MINUTE="0.001",
        IMAGEBOT_RATE_CHAT_PLATFORMS="test",
        IMAGEBOT_RATE_CHAT_BURST="7",
        IMAGEBOT_RATE_CHAT_PER_MINUTE="0.001",
    )
    try:
        # One user, 3 processes x 4 requests at once: exactly the burst of 5 gets through.
        results = await asyncio.gather(
            *(
                helper(env, tmp_path, "submit", {"users": ["eve"], "count": 4, "tag": f"u{i}"})
                for i in range(3)
            )
        )
        assert sum(r["accepted"] for r in results) == 5
        assert sum(r["refused"]["you"] for r in results) == 7
        # One group with the operator's cap for the platform: 3 processes x 3 members x 1.
        results = await asyncio.gather(
            *(
                helper(
                    env,
                    tmp_path,
                    "submit",
                    {"users": [f"m{i}-{j}" for j in range(3)], "count": 1, "chat": "g1"},
                )
                for i in range(3)
            )
        )
        assert sum(r["accepted"] for r in results) == 7
        assert sum(r["refused"]["chat"] for r in results) == 2
        # Without the operator's cap a busy group is served (per-user limits only).
        open_env = {**env, "IMAGEBOT_RATE_CHAT_PLATFORMS": ""}
        results = await asyncio.gather(
            *(
                helper(
                    open_env,
                    tmp_path,
                    "submit",
                    {"users": [f"n{i}-{j}" for j in range(3)], "count": 1, "chat": "g2"},
                )
                for i in range(3)
            )
        )
        assert sum(r["accepted"] for r in results) == 9
    finally:
        await db.dispose()


async def test_fair_queue_across_processes(
    postgres_schema: tuple[str, str], tmp_path: Path, openai_fake: FakeOpenAI, moto_s3: MotoS3
) -> None:
    """A heavy user's 20 jobs (from one process) do not hold back a light user's 2 jobs
    (from another process, submitted after): two worker processes take them in turn."""
    url, schema = postgres_schema
    db = await fresh(url, schema)
    bucket = moto_s3.new_bucket()
    env = env_for(
        url,
        schema,
        tmp_path / "data",
        openai_fake,
        bucket,
        moto_s3,
        IMAGEBOT_WORKER_CONCURRENCY="1",
        IMAGEBOT_PER_USER_CONCURRENCY="2",
    )
    openai_fake.latency = 0.2
    procs: list[asyncio.subprocess.Process] = []
    try:
        await helper(env, tmp_path, "submit", {"users": ["heavy"], "count": 20, "tag": "h"})
        await helper(env, tmp_path, "submit", {"users": ["light"], "count": 2, "tag": "l"})
        procs = [await worker(env, tmp_path, f"w{i}") for i in range(2)]
        async with asyncio.timeout(120):
            while (await states(db)).get("succeeded", 0) < 22:
                await asyncio.sleep(0.1)
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT u.platform_user_id, j.started_at FROM jobs j "
                        "JOIN users u ON u.id = j.user_id ORDER BY j.started_at, j.id"
                    )
                )
            ).all()
        order = [who for who, _ in rows]
        # The light user's jobs are among the first few started, not after the 20.
        assert max(i for i, who in enumerate(order) if who == "light") <= 5, order
        owners = await states(db)
        assert owners == {"succeeded": 22}
    finally:
        await stop(procs)
        await db.dispose()
