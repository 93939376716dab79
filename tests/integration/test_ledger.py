"""The ledger's invariants under concurrency and random sequences (DESIGN.md contract)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.billing.ledger import CreditLedger
from core.clock import SystemClock
from core.errors import InsufficientCredits, SpendingBlocked
from core.types import JobState
from storage.database import Database
from storage.uow import SqlUnitOfWorkFactory
from tests.conftest import ledger_problems
from tests.helpers import actor, make_core, request


async def test_fifty_concurrent_requests_spend_exactly_the_balance(
    database: Database, tmp_path: Path
) -> None:
    """50 simultaneous /imagine from one user whose balance covers 10: exactly 10 jobs."""
    core, _ = await make_core(database, tmp_path, free_credits=10, max_queued_per_user=100)
    try:
        await core.users.register(actor())
        results = await asyncio.gather(
            *(core.generation.submit(request(key=f"burst:{i}")) for i in range(50)),
            return_exceptions=True,
        )
        accepted = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(accepted) == 10
        assert all(isinstance(r, InsufficientCredits) for r in refused), refused[:3]
        balance = await core.credits.balance(1)
        assert balance.available == 0 and balance.held == 10
        page = await core.history.page(actor())
        assert page.total == 10
        assert await ledger_problems(database) == []
    finally:
        await core.aclose()


async def test_spending_blocked_when_negative_or_frozen(database: Database) -> None:
    clock = SystemClock()
    ledger = CreditLedger(clock)
    uow_factory = SqlUnitOfWorkFactory(database)
    async with uow_factory() as uow:
        user, _ = await uow.users.get_or_create("test", "9", "", "", clock.now())
        await ledger.grant(uow, user.id, 5, key="g1")
        await ledger.grant(uow, user.id, -8, key="refund1", kind="refund")
        await uow.commit()
    async with uow_factory() as uow:
        with pytest.raises(SpendingBlocked):
            await ledger.hold(uow, user.id, 1, "job-x")


ops = st.lists(
    st.tuples(
        st.sampled_from(["grant", "hold", "capture", "release", "replay_grant", "refund"]),
        st.integers(min_value=0, max_value=2),
        st.integers(min_value=1, max_value=15),
    ),
    min_size=1,
    max_size=40,
)


@pytest.mark.parametrize("backend", ["sqlite"])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=ops)
def test_ledger_sums_to_balance_after_every_step(
    backend: str,
    sequence: list[tuple[str, int, int]],
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
) -> None:
    """Random grants, holds, captures, releases, replays and refunds: after every step the
    ledger sums to the balance, nothing is both captured and released, and no spend takes
    a balance below zero."""
    import shutil

    path = tmp_path_factory.mktemp("prop") / "db.sqlite"
    shutil.copy(sqlite_template, path)
    asyncio.run(_run_sequence(Database(f"sqlite+aiosqlite:///{path}"), sequence))


async def _run_sequence(db: Database, sequence: list[tuple[str, int, int]]) -> None:
    clock = SystemClock()
    ledger = CreditLedger(clock)
    uow_factory = SqlUnitOfWorkFactory(db)
    counter = itertools.count()
    jobs: dict[int, list[tuple[str, int]]] = {0: [], 1: [], 2: []}
    ids: dict[int, int] = {}
    try:
        async with uow_factory() as uow:
            for who in range(3):
                user, _ = await uow.users.get_or_create("prop", str(who), "", "", clock.now())
                await uow.ledger.ensure_account(user.id, clock.now())
                ids[who] = user.id
            await uow.commit()
        for op, who, amount in sequence:
            uid = ids[who]
            async with uow_factory() as uow:
                before = await uow.ledger.account(uid)
                assert before is not None
                try:
                    if op == "grant":
                        await ledger.grant(uow, uid, amount, key=f"g{next(counter)}")
                    elif op == "replay_grant":
                        await ledger.grant(uow, uid, amount, key=f"fixed-{who}")
                    elif op == "refund":
                        await ledger.grant(
                            uow, uid, -amount, key=f"r{next(counter)}", kind="refund"
                        )
                    elif op == "hold":
                        job = f"j{next(counter)}"
                        await ledger.hold(uow, uid, amount, job)
                        assert before.balance >= amount, "a spend took the balance below zero"
                        jobs[who].append((job, amount))
                    elif jobs[who]:
                        job, held = jobs[who][amount % len(jobs[who])]
                        if op == "capture":
                            await ledger.capture(uow, uid, held, job)
                        else:
                            await ledger.release(uow, uid, held, job)
                    await uow.commit()
                except (InsufficientCredits, SpendingBlocked):
                    assert before.balance < amount or before.frozen or before.balance < 0
            assert await ledger_problems(db) == []
    finally:
        await db.dispose()


async def test_job_states_never_both_captured_and_released(
    database: Database, tmp_path: Path
) -> None:
    core, _ = await make_core(database, tmp_path)
    try:
        sub = await core.generation.submit(request())
        await core.worker.run_until_idle()
        view = await core.generation.job(actor(), sub.job.id)
        assert view.state is JobState.SUCCEEDED
        async with SqlUnitOfWorkFactory(database)() as uow:
            ledger = CreditLedger(SystemClock())
            assert not await ledger.release(uow, 1, sub.job.cost, sub.job.id)
            assert not await ledger.capture(uow, 1, sub.job.cost, sub.job.id)
    finally:
        await core.aclose()
