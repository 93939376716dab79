"""Running in production: metrics, readiness, JSON logs, process locks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from bot.logs import JsonFormatter
from bot.web.server import build_http_app
from bot.wiring import build_core
from core.errors import ConfigurationError
from storage.database import Database
from storage.locks import DatabaseLocks, PostgresLeaderLock
from tests.conftest import make_settings
from tests.helpers import make_core, request


async def serve(app):  # type: ignore[no-untyped-def]
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_metrics_move_as_jobs_run(database: Database, tmp_path: Path) -> None:
    core, notes = await make_core(database, tmp_path)
    runner, base = await serve(build_http_app(core))
    try:
        async with aiohttp.ClientSession() as http:
            sub = await core.generation.submit(request())
            await core.worker.run_until_idle()
            await notes.wait_final(sub.job.id)
            async with http.get(f"{base}/metrics") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain")
                text = await resp.text()
        jobs = samples(text, "imagebot_jobs_total")
        assert jobs[(("platform", "test"), ("state", "queued"))] == 1
        assert jobs[(("platform", "test"), ("state", "succeeded"))] == 1
        assert samples(text, "imagebot_credits_total")[(("kind", "spent"),)] == sub.job.cost
        assert sum(samples(text, "imagebot_queue_seconds_count").values()) == 1
        assert sum(samples(text, "imagebot_delivery_seconds_count").values()) == 1
    finally:
        await runner.cleanup()
        await core.aclose()


class TcpProxy:
    """A loopback TCP proxy in front of the database that a test can cut and restore."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.open = True
        self.server: asyncio.Server | None = None
        self.port = 0
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._links |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.open = False
        for link in self._links:
            link.close()
        self._links.clear()

    async def stop(self) -> None:
        self.cut()
        if self.server:
            self.server.close()


@pytest.mark.postgres
async def test_readyz_fails_while_the_database_is_down_and_recovers(
    postgres_schema: tuple[str, str], tmp_path: Path
) -> None:
    url, schema = postgres_schema
    parsed = make_url(url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    await proxy.start()
    proxied = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    db = Database(proxied, schema=schema)
    core = await build_core(make_settings(tmp_path, db), database=db, migrate=False)
    runner, base = await serve(build_http_app(core))
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 200, await resp.text()
            proxy.cut()
            async with http.get(f"{base}/readyz") as resp:
                body = await resp.json()
                assert resp.status == 503
                assert "unreachable" in body["checks"]["database"]
            async with http.get(f"{base}/healthz") as resp:
                assert resp.status == 200  # the process itself lives
            proxy.open = True
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 200, await resp.text()
    finally:
        await runner.cleanup()
        await core.aclose()
        await db.dispose()
        await proxy.stop()


def test_json_logs_carry_ids_as_fields() -> None:
    record = logging.LogRecord(
        "imagebot.worker",
        logging.INFO,
        __file__,
        1,
        "job running job=%s attempt=%s",
        ("abc123", 2),
        None,
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["job"] == "abc123" and entry["attempt"] == "2"
    assert entry["level"] == "info" and entry["logger"] == "imagebot.worker"


async def test_sqlite_refuses_a_second_worker(sqlite_only: Database) -> None:
    first, second = DatabaseLocks(sqlite_only), DatabaseLocks(sqlite_only)
    await first.hold_worker_slot()
    try:
        with pytest.raises(ConfigurationError) as info:
            await second.hold_worker_slot()
        assert "PostgreSQL" in str(info.value)
    finally:
        await first.release()
    await second.hold_worker_slot()  # free again once the first let go
    await second.release()


@pytest.mark.postgres
async def test_one_scheduler_leads_and_a_standby_takes_over(
    postgres_schema: tuple[str, str],
) -> None:
    url, schema = postgres_schema
    a_db, b_db = Database(url, schema=schema), Database(url, schema=schema)
    a, b = PostgresLeaderLock(a_db, key=424242), PostgresLeaderLock(b_db, key=424242)
    try:
        assert await a.try_acquire()
        assert not await b.try_acquire()
        await a.release()
        assert await b.try_acquire()
    finally:
        await a.release()
        await b.release()
        await a_db.dispose()
        await b_db.dispose()


async def test_an_update_is_taken_once_across_replicas_and_forgotten_later(
    database: Database, tmp_path: Path
) -> None:
    from core.clock import ManualClock

    clock = ManualClock()
    first, _ = await make_core(database, tmp_path, clock=clock)
    other_db = Database(database.url, schema=database.schema)
    second = await build_core(
        make_settings(tmp_path, database), database=other_db, migrate=False, clock=clock
    )
    try:
        results = await asyncio.gather(
            *(core.safety.first_delivery("telegram", 777) for core in (first, second, first))
        )
        assert sorted(results) == [False, False, True]
        assert await second.safety.first_delivery("telegram", 778)
        assert await first.safety.first_delivery("discord", 777)  # another platform's id
        clock.advance(days=3)
        assert (await first.retention.sweep())["seen_updates"] == 3
    finally:
        await first.aclose()
        await second.aclose()
        await other_db.dispose()
