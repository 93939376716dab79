"""The welcome credits are given once per platform account, also across erasures (issue 12):
only a keyed hash of the account is kept for it, for the ledger's retention period, and it
is listed in the retention table that /privacy shows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from core.clock import ManualClock
from core.types import Conversation
from storage.billing.models import WelcomeMark
from storage.database import Database
from tests.helpers import actor, make_core

DM = Conversation("test", "dm-1001", is_private=True)


async def _marks(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(select(WelcomeMark.mark))).scalars())


async def test_P08_erasure_then_return_gives_no_second_welcome_grant(
    database: Database, tmp_path: Path
) -> None:
    core, _ = await make_core(database, tmp_path, free_credits=20)
    try:
        ada = actor()
        user = await core.users.register(ada)
        assert (await core.credits.balance(user.id)).available == 20
        await core.privacy.erase(ada, DM)
        again = await core.users.register(ada)
        assert (await core.credits.balance(again.id)).available == 0
        # The mark is a keyed hash: neither the platform id nor the name appears in it.
        marks = await _marks(database)
        assert len(marks) == 1 and len(marks[0]) == 64
        assert "1001" not in marks[0]
        # Another account still gets its own welcome.
        bob = await core.users.register(actor("2002", "Bob"))
        assert (await core.credits.balance(bob.id)).available == 20
    finally:
        await core.aclose()


async def test_P17_a_burst_of_first_contacts_gives_one_welcome(
    database: Database, tmp_path: Path
) -> None:
    core, _ = await make_core(database, tmp_path, free_credits=20)
    try:
        ada = actor()
        users = await asyncio.gather(
            *(core.users.register(ada) for _ in range(5)), return_exceptions=True
        )
        user_id = next(u.id for u in users if not isinstance(u, BaseException))
        assert (await core.credits.balance(user_id)).available == 20
        assert len(await _marks(database)) == 1
    finally:
        await core.aclose()


async def test_P13_welcome_marks_are_listed_and_pruned_with_the_ledger_period(
    database: Database, tmp_path: Path
) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    core, _ = await make_core(database, tmp_path, clock=clock, free_credits=20)
    try:
        await core.users.register(actor())
        rows = dict(core.retention.policy.describe())
        assert any("free credits" in label for label in rows)
        clock.advance(days=3651)
        swept = await core.retention.sweep()
        assert swept["welcome_marks"] == 1
        assert await _marks(database) == []
    finally:
        await core.aclose()
