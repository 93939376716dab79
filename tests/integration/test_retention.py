"""Retention: each category disappears at its period and not before; sweeps are batched,
idempotent and safe to interrupt (P13, P14)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.logs import LogFilePruner
from core.clock import ManualClock
from core.errors import ContentRefused
from core.privacy.retention import RetentionPolicy, RetentionService
from core.types import Conversation
from storage.database import Database
from storage.uow import SqlUnitOfWorkFactory
from tests.helpers import actor, image_input, make_core, request

DM = Conversation("test", "dm", is_private=True)


async def count(db: Database, sql: str) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_P13_each_category_goes_at_its_period_and_not_before(
    database: Database, tmp_path: Path
) -> None:
    clock = ManualClock()
    policy = json.dumps(
        {
            "images_and_prompts": 30,
            "reference_uploads": 7,
            "moderation_records": 14,
            "exports": 2,
            "privacy_requests": 60,
            "ledger": 90,
        }
    )
    core, notes = await make_core(
        database, tmp_path, clock=clock, retention=policy, blocklist='["forbidden"]'
    )
    try:
        edit = await core.generation.submit(
            request(prompt="keep me a while", inputs=(image_input(),))
        )
        await core.worker.run_until_idle()
        await notes.wait_final(edit.job.id)
        with pytest.raises(ContentRefused):
            await core.generation.submit(request(prompt="a forbidden thing"))
        await core.privacy.export(actor(), DM)
        await core.users.register(actor("gone", "Gone Person"))
        await core.privacy.erase(actor("gone"), DM)

        def files() -> list[str]:
            return core.files.user_files(1)

        assert any("input-0" in f for f in files())
        assert any("exports/" in f for f in files())

        async def state() -> dict[str, int]:
            return {
                "inputs": await count(
                    database, "SELECT COUNT(*) FROM job_images WHERE role='input'"
                ),
                "jobs_ok": await count(
                    database, "SELECT COUNT(*) FROM jobs WHERE state='succeeded'"
                ),
                "rejected": await count(
                    database, "SELECT COUNT(*) FROM jobs WHERE state='rejected'"
                ),
                "requests": await count(database, "SELECT COUNT(*) FROM privacy_requests"),
                "ledger_unlinked": await count(
                    database, "SELECT COUNT(*) FROM ledger_entries WHERE user_id IS NULL"
                ),
            }

        start = await state()
        assert start["inputs"] == 1 and start["jobs_ok"] == 1 and start["rejected"] == 1
        assert start["ledger_unlinked"] >= 1

        clock.advance(days=1, hours=23)
        assert sum((await core.retention.sweep()).values()) == 0
        assert await state() == start

        clock.advance(days=1)  # day 2: exports go
        assert (await core.retention.sweep())["exports"] == 1
        assert not any("exports/" in f for f in files())

        clock.advance(days=5)  # day 7: reference uploads go (files and rows), the job stays
        swept = await core.retention.sweep()
        assert swept["reference_uploads"] == 1
        assert not any("input-0" in f for f in files()) and any("output-0" in f for f in files())
        assert (await state())["jobs_ok"] == 1

        clock.advance(days=7)  # day 14: refused requests (moderation records) go
        assert (await core.retention.sweep())["moderation_records"] == 1

        clock.advance(days=16)  # day 30: images and prompts go
        dry = await core.retention.sweep(dry_run=True)
        assert dry["images_and_prompts"] == 1
        assert (await state())["jobs_ok"] == 1  # a dry run deletes nothing
        assert (await core.retention.sweep())["images_and_prompts"] == 1
        assert files() == [] and (await state())["jobs_ok"] == 0

        clock.advance(days=30)  # day 60: the requests log
        assert (await core.retention.sweep())["privacy_requests"] == start["requests"]
        clock.advance(days=30)  # day 90: ledger rows of erased people
        assert (await core.retention.sweep())["ledger"] == start["ledger_unlinked"]
        # Live accounts keep every ledger row: the ledger still sums to the balance.
        assert (await core.credits.balance(1)).available == 20 - 1
    finally:
        await core.aclose()


async def test_interrupted_sweep_resumes_cleanly(database: Database, tmp_path: Path) -> None:
    clock = ManualClock()
    core, notes = await make_core(database, tmp_path, clock=clock, free_credits=100)
    try:
        subs = [await core.generation.submit(request(prompt=f"job {i}")) for i in range(7)]
        await core.worker.run_until_idle()
        for sub in subs:
            await notes.wait_final(sub.job.id)
        clock.advance(days=400)
        deleted = 0
        real_delete = core.files.delete_many

        async def delete_and_count(paths: list[str]) -> None:
            nonlocal deleted
            await real_delete(paths)
            deleted += len(paths)

        core.files.delete_many = delete_and_count  # type: ignore[method-assign]
        # Stopped after two batches of two: four jobs gone, three left, nothing broken.
        service = RetentionService(
            SqlUnitOfWorkFactory(database),
            core.files,
            clock,
            RetentionPolicy(),
            batch=2,
            should_stop=lambda: deleted >= 4,
        )
        first = await service.sweep()
        assert first["images_and_prompts"] == 4
        assert await count(database, "SELECT COUNT(*) FROM jobs") == 3
        # Files of a batch are deleted before its rows: rows left by an interruption are
        # swept again, and a file already gone is no error.
        again = await core.retention.sweep()
        assert again["images_and_prompts"] == 3
        assert await count(database, "SELECT COUNT(*) FROM jobs") == 0
        assert core.files.user_files(1) == []
        jobs_dir = tmp_path / "data" / "users" / "1" / "jobs"
        assert not jobs_dir.exists() or not any(jobs_dir.iterdir())  # no empty job folders
    finally:
        await core.aclose()


async def test_P14_operational_logs_are_pruned_by_the_sweep(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for day in ("2025-11-01", "2025-12-20", "2025-12-30"):
        (logs / f"imagebot.log.{day}").write_text("ts INFO imagebot.worker job running job=abc\n")
    (logs / "imagebot.log").write_text("current\n")
    clock = ManualClock()  # 2026-01-01
    prune = LogFilePruner(logs)
    before = clock.now() - timedelta(days=30)
    assert prune(before, dry_run=True) == 1
    assert prune(before, dry_run=False) == 1
    assert sorted(p.name for p in logs.iterdir()) == [
        "imagebot.log",
        "imagebot.log.2025-12-20",
        "imagebot.log.2025-12-30",
    ]


def test_retention_policy_is_described_from_the_active_policy() -> None:
    policy = RetentionPolicy.from_json('{"images_and_prompts": 180, "exports": 1}')
    described = dict(policy.describe())
    assert described["Generated images and their prompts"] == "6 months"
    assert described["Data exports you asked for"] == "1 day"
    assert described["The log of privacy requests"] == "3 years"
