"""A worker process killed with SIGKILL mid-job: after a restart the job completes once
and is charged once (DESIGN.md, the life of a job, step 5)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from core.types import JobState
from storage.database import Database
from tests.e2e.test_cli_console import clean_env
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import actor, make_core, request

IMAGEBOT = str(Path(sys.executable).parent / "imagebot")
pytestmark = pytest.mark.slow


def _worker_env(db: Database, tmp_path: Path, fake: FakeOpenAI) -> dict[str, str]:
    env = clean_env(
        IMAGEBOT_DATABASE_URL=db.url,
        IMAGEBOT_DATA_DIR=str(tmp_path / "data"),
        OPENAI_API_KEY="sk-test-crash-key-123",
        OPENAI_BASE_URL=fake.base_url,
        IMAGEBOT_LEASE_SECONDS="1.5",
        IMAGEBOT_PARTIAL_IMAGES="0",
        IMAGEBOT_PROVIDER_MAX_RETRIES="0",
    )
    if db.schema:
        env["IMAGEBOT_DATABASE_SCHEMA"] = db.schema
    return env


async def _start_worker(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        IMAGEBOT,
        "run",
        "--role",
        "worker",
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def _wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.05)


async def test_worker_killed_mid_job_completes_once_after_restart(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, _ = await make_core(
        database,
        tmp_path,
        image_provider="openai",
        openai_api_key="sk-test-crash-key-123",
        openai_base_url=openai_fake.base_url,
    )
    env = _worker_env(database, tmp_path, openai_fake)
    try:
        sub = await core.generation.submit(request(prompt="a lighthouse", quality="low"))
        openai_fake.latency = 60.0  # the first worker will be killed while it waits

        first = await _start_worker(env, tmp_path)

        async def model_called() -> bool:
            return len(openai_fake.image_requests) >= 1

        await _wait_for(model_called)
        assert (await core.generation.job(actor(), sub.job.id)).state is JobState.RUNNING
        first.send_signal(signal.SIGKILL)
        await first.wait()

        openai_fake.latency = 0.0
        second = await _start_worker(env, tmp_path)

        async def finished() -> bool:
            return (await core.generation.job(actor(), sub.job.id)).state.is_final

        try:
            await _wait_for(finished)
        finally:
            second.send_signal(signal.SIGTERM)
            _, err = await second.communicate()
        assert second.returncode == 0, err.decode()[-2000:]
        assert b"Traceback" not in err, err.decode()[-4000:]

        view = await core.generation.job(actor(), sub.job.id)
        assert view.state is JobState.SUCCEEDED
        assert len(view.outputs) == 1
        assert Path(core.files.absolute(view.outputs[0].path)).is_file()
        async with database.engine.connect() as conn:
            kinds = (
                (
                    await conn.execute(
                        text("SELECT kind FROM ledger_entries WHERE job_id = :j ORDER BY id"),
                        {"j": sub.job.id},
                    )
                )
                .scalars()
                .all()
            )
            attempts = (
                await conn.execute(
                    text("SELECT attempts FROM jobs WHERE id = :j"), {"j": sub.job.id}
                )
            ).scalar_one()
        assert kinds == ["hold", "capture"]
        assert attempts == 2
        balance = await core.credits.balance(1)
        assert balance.available == 20 - sub.job.cost and balance.held == 0
    finally:
        await core.aclose()


async def test_sigterm_hands_a_running_job_back_to_the_queue(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, _ = await make_core(
        database,
        tmp_path,
        image_provider="openai",
        openai_api_key="sk-test-crash-key-123",
        openai_base_url=openai_fake.base_url,
    )
    env = _worker_env(database, tmp_path, openai_fake)
    env["IMAGEBOT_SHUTDOWN_GRACE_SECONDS"] = "0.5"
    try:
        sub = await core.generation.submit(request(prompt="a slow one", quality="low"))
        openai_fake.latency = 60.0
        worker = await _start_worker(env, tmp_path)

        async def model_called() -> bool:
            return len(openai_fake.image_requests) >= 1

        await _wait_for(model_called)
        worker.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(worker.communicate(), 30)
        assert worker.returncode == 0, err.decode()[-2000:]
        view = await core.generation.job(actor(), sub.job.id)
        assert view.state is JobState.QUEUED
        assert (await core.credits.balance(1)).held == sub.job.cost
    finally:
        await core.aclose()
