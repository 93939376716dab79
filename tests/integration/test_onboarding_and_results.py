"""First use (terms, age, policy versions) and what a user can do with a result."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from core.errors import AgeRefused, InvalidRequest, NotFound, TermsRequired
from core.types import Conversation, Delivered, JobState, ReplyTarget
from storage.database import Database
from tests.helpers import actor, make_core, request


async def test_P15_under_13_is_refused_and_only_a_marker_is_kept(
    database: Database, tmp_path: Path
) -> None:
    core, _ = await make_core(database, tmp_path, require_terms=True)
    kid = actor("31337", "Kiddo")
    try:
        with pytest.raises(TermsRequired):
            await core.generation.submit(request(kid))
        assert (await core.onboarding.status(kid)).state == "new"
        await core.onboarding.refuse(kid)
        assert (await core.onboarding.status(kid)).state == "refused"
        with pytest.raises(AgeRefused):
            await core.onboarding.accept(kid)
        with pytest.raises(AgeRefused):
            await core.generation.submit(request(kid))
        async with database.engine.connect() as conn:
            users = (await conn.execute(text("SELECT COUNT(*) FROM users"))).scalar()
            jobs = (await conn.execute(text("SELECT COUNT(*) FROM jobs"))).scalar()
            markers = (await conn.execute(text("SELECT marker FROM age_refusals"))).scalars().all()
        assert users == 0 and jobs == 0
        assert len(markers) == 1 and "31337" not in markers[0]
    finally:
        await core.aclose()


async def test_P22_new_policy_version_is_shown_before_the_next_generation(
    database: Database, tmp_path: Path
) -> None:
    core, _ = await make_core(database, tmp_path, require_terms=True, policy_version="2026-01")
    try:
        await core.onboarding.accept(actor())
        await core.generation.submit(request())
    finally:
        await core.aclose()
    core, _ = await make_core(database, tmp_path, require_terms=True, policy_version="2026-07")
    try:
        status = await core.onboarding.status(actor())
        assert status.state == "policy_changed" and status.accepted_version == "2026-01"
        with pytest.raises(TermsRequired) as info:
            await core.generation.submit(request())
        assert info.value.policy_changed
        await core.onboarding.accept(actor())
        sub = await core.generation.submit(request())
        assert sub.created
    finally:
        await core.aclose()


async def test_variation_edit_cancel_and_delete_of_results(
    database: Database, tmp_path: Path
) -> None:
    core, notes = await make_core(database, tmp_path)
    who = actor()
    conv = Conversation("test", "chat-1001")
    target = ReplyTarget("test", "chat-1001")
    try:
        first = await core.generation.submit(request(who, "a red fox"))
        await core.worker.run_until_idle()
        assert isinstance(await notes.wait_final(first.job.id), Delivered)

        variation = await core.generation.derive(
            who,
            first.job.id,
            prompt=None,
            idempotency_key="var-1",
            conversation=conv,
            reply_target=target,
        )
        edit = await core.generation.derive(
            who,
            first.job.id,
            prompt="make it blue",
            idempotency_key="edit-1",
            conversation=conv,
            reply_target=target,
        )
        assert variation.job.kind == "edit" and "variation" in variation.job.prompt.lower()
        assert edit.job.prompt == "make it blue" and len(edit.job.inputs) == 1
        with pytest.raises(NotFound):
            await core.generation.derive(
                actor("intruder"),
                first.job.id,
                prompt="x",
                idempotency_key="e2",
                conversation=conv,
                reply_target=target,
            )

        assert await core.generation.cancel(who, edit.job.id)
        assert not await core.generation.cancel(who, edit.job.id)
        assert (await core.generation.job(who, edit.job.id)).state is JobState.CANCELLED

        with pytest.raises(InvalidRequest):
            await core.history.delete(who, variation.job.id)  # still queued
        with pytest.raises(NotFound):
            await core.history.delete(actor("intruder"), first.job.id)
        before = core.files.user_files(1)
        removed = await core.history.delete(who, first.job.id)
        assert removed == 1
        assert len(core.files.user_files(1)) == len(before) - 1
        with pytest.raises(NotFound):
            await core.generation.job(who, first.job.id)
        await core.worker.run_until_idle()
        balance = await core.credits.balance(1)
        assert balance.held == 0
    finally:
        await core.aclose()
