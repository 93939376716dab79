"""Every migration goes down as well as up: head -> base one revision at a time -> head,
on SQLite and PostgreSQL, ending in exactly the schema the models describe. And the
repository's alembic.ini finds the same migrations as ``imagebot migrate``."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from storage.database import MIGRATIONS, Database
from storage.schema import Base
from tests.conftest import postgres_url

ROOT = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture(params=["sqlite", "postgres"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database of its own, with no tables yet (a new schema on PostgreSQL)."""
    if request.param == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'roundtrip.db'}")
        yield db
        await db.dispose()
        return
    url = postgres_url()
    if url is None:
        pytest.skip("IMAGEBOT_TEST_POSTGRES_URL is not set")
    schema = f"rt_{secrets.token_hex(5)}"
    admin = Database(url)
    async with admin.engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(url, schema=schema)
    try:
        yield db
    finally:
        await db.dispose()
        async with admin.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


def config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def roundtrip(connection: Connection) -> list[str | None]:
    """Upgrade to head, downgrade one step at a time to base, upgrade again; the
    revisions passed on the way down."""
    cfg = config(connection)
    command.upgrade(cfg, "head")
    assert tables(connection) == set(Base.metadata.tables)
    seen = [current(connection)]
    while current(connection) is not None:
        command.downgrade(cfg, "-1")
        seen.append(current(connection))
    assert tables(connection) == set(), tables(connection)
    command.upgrade(cfg, "head")
    assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    return seen


async def test_every_revision_downgrades_and_upgrades_again(empty_database: Database) -> None:
    async with empty_database.engine.begin() as conn:
        seen = await conn.run_sync(roundtrip)
    script = ScriptDirectory(str(MIGRATIONS))
    expected = [r.revision for r in script.walk_revisions()] + [None]
    assert seen == expected  # every revision, newest first, then base
    assert not await empty_database.pending_migrations()


def test_alembic_ini_at_the_root_points_at_the_migrations() -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    assert Path(cfg.get_main_option("script_location") or "").resolve() == MIGRATIONS
    root = ScriptDirectory.from_config(cfg)
    assert root.get_current_head() == ScriptDirectory(str(MIGRATIONS)).get_current_head()


@pytest.mark.slow
def test_the_alembic_command_migrates_and_finds_the_models_in_step(tmp_path: Path) -> None:
    """`alembic upgrade head` and `alembic check` work from the repository root on
    IMAGEBOT_DATABASE_URL, and autogenerate finds nothing between models and migrations."""
    env = {**os.environ, "IMAGEBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"}
    alembic = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]
    for verb in ("upgrade", "check"):
        args = [*alembic, verb] + (["head"] if verb == "upgrade" else [])
        done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)  # noqa: S603
        assert done.returncode == 0, done.stderr
