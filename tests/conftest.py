"""Shared fixtures: real databases (SQLite files and PostgreSQL), a built core, fakes.

PostgreSQL tests use the server named by ``IMAGEBOT_TEST_POSTGRES_URL`` (CI sets it to
the local server). Without it they are skipped locally, and fail under ``CI=true`` so a
CI run can never pass by skipping them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text

from core.settings import Settings
from storage.database import Database
from storage.schema import Base
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.s3_server import MotoS3

PG_ENV = "IMAGEBOT_TEST_POSTGRES_URL"


def postgres_url() -> str | None:
    """The test PostgreSQL URL, as asyncpg."""
    url = os.environ.get(PG_ENV)
    if not url:
        return None
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


def run_in_fresh_loop(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine to completion on a new loop in a thread (session fixtures may be
    first requested from inside a running test loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, make()).result()


def _require_postgres() -> str:
    url = postgres_url()
    if url is None:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} must be set in CI: PostgreSQL tests may not be skipped")
        pytest.skip(f"{PG_ENV} not set")
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once keeps the suite fast)."""
    path = tmp_path_factory.mktemp("template") / "template.db"

    async def build() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.migrate()
        await db.dispose()

    run_in_fresh_loop(build)
    return path


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[tuple[str, str]]:
    """A fresh schema on the test server, migrated once, dropped at the end."""
    url = _require_postgres()
    schema = f"t_{secrets.token_hex(5)}"

    async def create() -> None:
        admin = Database(url)
        async with admin.engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await admin.dispose()
        db = Database(url, schema=schema)
        await db.migrate()
        await db.dispose()

    async def drop() -> None:
        admin = Database(url)
        async with admin.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()

    run_in_fresh_loop(create)
    yield url, schema
    run_in_fresh_loop(drop)


async def ledger_problems(db: Database) -> list[str]:
    """Every broken ledger invariant in the database, in words."""
    problems = []
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT a.user_id, a.balance, a.held, "
                    "COALESCE((SELECT SUM(amount) FROM ledger_entries l "
                    "          WHERE l.user_id = a.user_id), 0), "
                    "COALESCE((SELECT -SUM(amount) FROM ledger_entries l "
                    "          WHERE l.user_id = a.user_id AND kind = 'hold'), 0) "
                    "FROM credit_accounts a"
                )
            )
        ).all()
        for user_id, balance, held, ledger_sum, holds in rows:
            if balance != ledger_sum:
                problems.append(f"user {user_id}: balance {balance} != ledger sum {ledger_sum}")
            if held < 0:
                problems.append(f"user {user_id}: negative held {held}")
            if held > holds:
                problems.append(f"user {user_id}: held {held} > holds {holds}")
        doubled = (
            await conn.execute(
                text(
                    "SELECT job_id FROM ledger_entries WHERE kind IN ('capture','release') "
                    "GROUP BY job_id HAVING COUNT(*) > 1"
                )
            )
        ).all()
        problems += [f"job {r[0]} both captured and released" for r in doubled]
    return problems


@pytest_asyncio.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[Database]:
    """A migrated, empty database of each kind; ledger invariants are checked afterwards."""
    if request.param == "sqlite":
        path = tmp_path / "imagebot.db"
        shutil.copy(sqlite_template, path)
        db = Database(f"sqlite+aiosqlite:///{path}")
    else:
        url, schema = request.getfixturevalue("postgres_schema")
        db = Database(url, schema=schema, pool_size=20)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        async with db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    try:
        yield db
        problems = await ledger_problems(db)
        assert not problems, problems
    finally:
        await db.dispose()


@pytest.fixture
def sqlite_only(database: Database) -> Database:
    """The database fixture limited to SQLite (tests of SQLite specifics)."""
    if not database.is_sqlite:
        pytest.skip("SQLite-specific")
    return database


def make_settings(tmp_path: Path, db: Database | None = None, **overrides: Any) -> Settings:
    """Settings for tests: no .env file, no environment secrets, data under tmp_path."""
    values: dict[str, Any] = {
        "database_url": db.url if db else f"sqlite+aiosqlite:///{tmp_path}/imagebot.db",
        "data_dir": tmp_path / "data",
        "free_credits": 20,
        "require_terms": False,
        # Generous limits: tests of rate limits set their own.
        "rate_user_burst": 10_000,
        "rate_chat_burst": 10_000,
        "moderation": False,
        "image_provider": "demo",
        "openai_api_key": None,
        "openai_base_url": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest_asyncio.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    """A loopback server speaking OpenAI's image API."""
    fake = FakeOpenAI()
    await fake.start()
    try:
        yield fake
        assert fake.errors == [], fake.errors  # the fake itself must never have crashed
    finally:
        await fake.stop()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """A real S3 wire server on loopback (moto in server mode), for the whole session."""
    server = MotoS3().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_settings(moto_s3: MotoS3) -> dict[str, Any]:
    """Settings overrides that put the file store in a fresh bucket of the moto server."""
    return {
        "file_store": "s3",
        "s3_bucket": moto_s3.new_bucket(),
        "s3_endpoint_url": moto_s3.base_url,
        "s3_region": "us-east-1",
        "s3_prefix": "inst/",
    }
