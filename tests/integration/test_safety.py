"""Safety, abuse prevention and operator tools (P16, P17, P19) on real databases, with
the OpenAI fake answering moderation requests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.wiring import build_core
from core.admin.service import NotAnOperator
from core.clock import ManualClock
from core.errors import (
    Banned,
    ChatDisabled,
    ContentRefused,
    ProviderUnavailable,
    RateLimited,
    SpendingBlocked,
)
from core.types import Actor, Conversation, Delivered, Failed, GenerateRequest, JobState
from storage.database import Database
from tests.conftest import make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import actor, image_input, make_core, request

KEY = "sk-test-safety-0123456789"
OPERATOR = Actor("test", "op-1", "Operator")
STRANGER = Actor("test", "1001", "Ada Lovelace")


async def moderated_core(db: Database, tmp_path: Path, fake: FakeOpenAI, **settings: object):  # type: ignore[no-untyped-def]
    return await make_core(
        db,
        tmp_path,
        image_provider="openai",
        openai_api_key=KEY,
        openai_base_url=fake.base_url,
        moderation=True,
        provider_max_retries=0,
        **settings,
    )


async def audit_actions(db: Database) -> list[tuple[str, str]]:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT actor, action FROM audit_log ORDER BY id"))).all()
    return [(a, b) for a, b in rows]


async def test_P16_flagged_prompt_costs_nothing_and_is_recorded(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, _ = await moderated_core(database, tmp_path, openai_fake)
    openai_fake.flag_words = {"forbidden-word"}
    openai_fake.flag_category = "violence"
    try:
        with pytest.raises(ContentRefused) as info:
            await core.generation.submit(request(prompt="a forbidden-word scene"))
        assert (
            "violence" in info.value.user_message
            and "Nothing was charged" in info.value.user_message
        )
        assert openai_fake.image_requests == []
        assert openai_fake.moderation_requests[0].json["model"] == "omni-moderation-latest"
        assert (await core.credits.balance(1)).available == 20
        page = await core.history.page(actor())
        assert page.items[0].state is JobState.REJECTED and page.items[0].cost == 0
        assert ("system:safety", "strike") in await audit_actions(database)
    finally:
        await core.aclose()


async def test_P16_flagged_reference_image_costs_nothing(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, _ = await moderated_core(database, tmp_path, openai_fake)
    openai_fake.flag_image_category = "sexual"
    try:
        with pytest.raises(ContentRefused) as info:
            await core.generation.submit(request(prompt="make it pretty", inputs=(image_input(),)))
        assert "sexual content" in info.value.user_message
        parts = openai_fake.moderation_requests[0].json["input"]
        assert [p["type"] for p in parts] == ["text", "image_url"]
        assert parts[1]["image_url"]["url"].startswith("data:image/")
        assert (await core.credits.balance(1)).available == 20
    finally:
        await core.aclose()


async def test_P16_withheld_output_returns_credits_and_goes_to_review(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, notes = await moderated_core(database, tmp_path, openai_fake, admins="test:op-1")
    try:
        sub = await core.generation.submit(request(prompt="a harmless landscape"))
        openai_fake.flag_image_category = "violence"  # the output screening flags it
        await core.worker.run_until_idle()
        final = await notes.wait_final(sub.job.id)
        assert isinstance(final, Failed) and final.refunded == sub.job.cost
        assert "withheld" in final.message and "review" in final.message
        assert (await core.credits.balance(1)).available == 20
        reviews = await core.admin.reviews(OPERATOR)
        assert [r.job_id for r in reviews] == [sub.job.id]
        assert reviews[0].path and Path(core.files.absolute(reviews[0].path)).exists()
        # Approving releases it to the user, free of charge.
        notes.events.clear()
        await core.admin.decide_review(OPERATOR, reviews[0].id, approve=True)
        released = notes.final(sub.job.id)
        assert isinstance(released, Delivered) and released.cost == 0
        assert await core.admin.reviews(OPERATOR) == []
        assert ("test:op-1", "review_approve") in await audit_actions(database)
    finally:
        await core.aclose()


async def test_moderation_outage_fails_closed_by_default(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    core, _ = await moderated_core(database, tmp_path, openai_fake)
    openai_fake.fail_moderation_next(500, times=5)
    try:
        with pytest.raises(ProviderUnavailable) as info:
            await core.generation.submit(request())
        assert "safety check" in info.value.user_message
        assert (await core.credits.balance(1)).available == 20
        assert (await core.history.page(actor())).total == 0
    finally:
        await core.aclose()


async def test_moderation_outage_fails_open_when_the_operator_chooses_it(
    database: Database, tmp_path: Path, openai_fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    core, notes = await moderated_core(
        database, tmp_path, openai_fake, moderation_fail_mode="open", moderate_outputs=False
    )
    openai_fake.fail_moderation_next(500, times=5)
    try:
        sub = await core.generation.submit(request())
        await core.worker.run_until_idle()
        assert isinstance(await notes.wait_final(sub.job.id), Delivered)
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert f"job={sub.job.id}" in logged and "screening=degraded" in logged
    finally:
        await core.aclose()


async def test_P17_strikes_escalate_to_temporary_then_permanent_bans(
    database: Database, tmp_path: Path
) -> None:
    clock = ManualClock()
    core, _ = await make_core(
        database,
        tmp_path,
        clock=clock,
        blocklist='["forbidden"]',
        strikes_temp_ban=2,
        strikes_permanent_ban=4,
        temp_ban_hours=1,
    )
    try:
        for _ in range(2):
            with pytest.raises(ContentRefused):
                await core.generation.submit(request(prompt="forbidden"))
        with pytest.raises(Banned) as info:
            await core.generation.submit(request(prompt="a kitten"))
        assert "until" in info.value.user_message
        clock.advance(hours=1, minutes=1)
        for _ in range(2):
            with pytest.raises(ContentRefused):
                await core.generation.submit(request(prompt="forbidden again"))
        clock.advance(days=30)
        with pytest.raises(Banned) as info:
            await core.generation.submit(request(prompt="a kitten"))
        assert "permanently" in info.value.user_message
        # Privacy commands keep working for a banned user (P25).
        receipt = await core.privacy.erase(actor(), Conversation("test", "dm"))
        assert receipt.request_id
        actions = [a for _, a in await audit_actions(database)]
        assert actions.count("strike") == 2 and "ban_temporary" in actions
        assert "ban_permanent" in actions
    finally:
        await core.aclose()


async def test_P17_rate_limits_hold_across_processes_sharing_the_database(
    database: Database, tmp_path: Path
) -> None:
    """Two cores with separate engines (as two processes would have) share one bucket."""
    clock = ManualClock()
    settings = {"rate_user_burst": 3, "rate_user_per_minute": 6}
    first, _ = await make_core(database, tmp_path, clock=clock, **settings)
    other_db = Database(database.url, schema=database.schema)
    second = await build_core(
        make_settings(tmp_path, database, **settings),
        database=other_db,
        migrate=False,
        clock=clock,
    )
    try:
        await first.generation.submit(request())
        await second.generation.submit(request())
        await first.generation.submit(request())
        with pytest.raises(RateLimited) as info:
            await second.generation.submit(request())
        assert 9 <= info.value.retry_after <= 10.5
        clock.advance(seconds=10)
        await second.generation.submit(request())
        with pytest.raises(RateLimited):
            await first.generation.submit(request())
    finally:
        await first.aclose()
        await second.aclose()
        await other_db.dispose()


async def test_P17_a_loose_limit_is_taken_in_batches_and_still_holds_across_processes(
    database: Database, tmp_path: Path
) -> None:
    """A loose bucket (300, refilled 10 a second) is not asked on every request: each
    process takes a few tokens at once and spends them locally. Two processes together
    still never get more than the bucket holds (the clock stands still: no refill)."""
    clock = ManualClock()
    first, _ = await make_core(database, tmp_path, clock=clock)
    other_db = Database(database.url, schema=database.schema)
    second = await build_core(
        make_settings(tmp_path, database), database=other_db, migrate=False, clock=clock
    )
    user = await first.users.register(actor())
    key = f"user:{user.id}"
    services = (first.safety, second.safety)
    for safety in services:
        safety.reserve_seconds = 60.0  # a slow test host must not expire the batches

    async def tokens() -> float | None:
        async with database.engine.connect() as conn:
            found = await conn.execute(
                text("SELECT tokens FROM rate_buckets WHERE key = :k"), {"k": key}
            )
            return found.scalar_one_or_none()

    try:
        taken = 0
        database_takes = 0
        last = await tokens()
        for turn in range(400):
            safety = services[turn % 2]
            async with first.generation._uow() as uow:
                wait = await safety.take(uow, key, 300, 10.0, clock.now())
                await uow.commit()
            now_left = await tokens()
            database_takes += now_left != last
            last = now_left
            if wait:
                break
            taken += 1
        assert 296 <= taken <= 300  # a batch left in the other process may go unused
        assert database_takes <= taken // 3 + 2  # batches of 3: one database take for three
    finally:
        await first.aclose()
        await second.aclose()
        await other_db.dispose()


async def test_P17_chat_admins_limit_the_bot_in_their_server(
    database: Database, tmp_path: Path
) -> None:
    core, _ = await make_core(database, tmp_path)
    guild = Conversation("test", "channel-1", is_private=False, group_id="guild-9")
    other_channel = Conversation("test", "channel-2", is_private=False, group_id="guild-9")

    def in_chat(conv: Conversation, n: int) -> GenerateRequest:
        return replace(request(), conversation=conv, idempotency_key=f"chat-{conv.chat_id}-{n}")

    try:
        await core.safety.set_chat_control(
            "test",
            "guild-9",
            by="test:mod",
            daily_cap_per_member=2,
            allowed_channels=("channel-1",),
        )
        await core.generation.submit(in_chat(guild, 1))
        await core.generation.submit(in_chat(guild, 2))
        with pytest.raises(ChatDisabled) as cap:
            await core.generation.submit(in_chat(guild, 3))
        assert "2 images per member a day" in cap.value.user_message
        with pytest.raises(ChatDisabled):
            await core.generation.submit(in_chat(other_channel, 4))
        await core.safety.set_chat_control("test", "guild-9", by="test:mod", enabled=False)
        with pytest.raises(ChatDisabled):
            await core.generation.submit(in_chat(guild, 5))
        # Private chats are not limited by a server's switches.
        await core.generation.submit(request())
    finally:
        await core.aclose()


async def test_P17_spending_is_frozen_during_a_dispute(database: Database, tmp_path: Path) -> None:
    core, _ = await make_core(database, tmp_path)
    try:
        await core.users.register(actor())
        async with database.engine.begin() as conn:
            await conn.execute(text("UPDATE credit_accounts SET frozen = TRUE"))
        with pytest.raises(SpendingBlocked) as info:
            await core.generation.submit(request())
        assert "dispute" in info.value.user_message
    finally:
        await core.aclose()


async def test_P19_admin_actions_by_operators_are_audited_and_refused_to_others(
    database: Database, tmp_path: Path
) -> None:
    core, notes = await make_core(database, tmp_path, admins="test:op-1")
    try:
        sub = await core.generation.submit(request(STRANGER, "a pear"))
        await core.worker.run_until_idle()
        await notes.wait_final(sub.job.id)
        before = await core.credits.balance(1)
        # Not an operator: every verb answers like an unknown command and changes nothing.
        for call in (
            core.admin.lookup(STRANGER, "test", "1001"),
            core.admin.grant(STRANGER, "test", "1001", 100, reason="me", action_id="x"),
            core.admin.ban(STRANGER, "test", "1001", reason="x"),
            core.admin.refund_job(STRANGER, sub.job.id, reason="x"),
            core.admin.stats(STRANGER),
            core.admin.run_retention(STRANGER),
            core.admin.reviews(STRANGER),
            core.admin.appeals(STRANGER),
        ):
            with pytest.raises(NotAnOperator) as info:
                await call
            assert info.value.user_message.startswith("Unknown command")
        assert (await core.credits.balance(1)).available == before.available
        assert await audit_actions(database) == []

        summary = await core.admin.lookup(OPERATOR, "test", "1001")
        assert summary.jobs == 1 and summary.balance.available == before.available
        assert (
            await core.admin.grant(OPERATOR, "test", "1001", 30, reason="goodwill", action_id="a-1")
            == before.available + 30
        )
        assert await core.admin.refund_job(OPERATOR, sub.job.id, reason="bad result") == 1
        assert await core.admin.refund_job(OPERATOR, sub.job.id, reason="again") == 0
        await core.admin.ban(OPERATOR, "test", "1001", reason="spam", hours=2)
        with pytest.raises(Banned):
            await core.generation.submit(request(STRANGER, "a plum"))
        await core.admin.unban(OPERATOR, "test", "1001", reason="appeal accepted")
        await core.generation.submit(request(STRANGER, "a plum"))
        stats = await core.admin.stats(OPERATOR)
        assert stats["jobs_succeeded"] == 1
        await core.admin.run_retention(OPERATOR, dry_run=True)
        actions = await audit_actions(database)
        assert [a for _, a in actions] == [
            "lookup",
            "grant",
            "refund_job",
            "ban_temporary",
            "unban",
            "retention_run",
        ]
        assert all(who == "test:op-1" for who, _ in actions)
    finally:
        await core.aclose()


async def test_P19_a_delivered_result_can_be_refunded_before_the_job_is_marked_done(
    database: Database, tmp_path: Path
) -> None:
    """The result is on screen (its hold captured) while the job is still `delivering`:
    an operator's refund then is accepted, once."""
    import asyncio

    core, notes = await make_core(database, tmp_path, admins="test:op-1")
    on_screen = asyncio.Event()
    release = asyncio.Event()

    class HoldingNotifier:
        async def notify(self, target: object, event: object) -> None:
            await notes.notify(target, event)  # type: ignore[arg-type]
            if isinstance(event, Delivered):
                on_screen.set()
                await release.wait()

    core.notifier.register("test", HoldingNotifier())
    try:
        sub = await core.generation.submit(request(STRANGER, "a pear"))
        work = asyncio.create_task(core.worker.run_until_idle())
        await asyncio.wait_for(on_screen.wait(), 10)
        assert (await core.generation.job(STRANGER, sub.job.id)).state == JobState.DELIVERING
        assert await core.admin.refund_job(OPERATOR, sub.job.id, reason="bad result") == 1
        release.set()
        await work
        assert await core.admin.refund_job(OPERATOR, sub.job.id, reason="again") == 0
    finally:
        release.set()
        await core.aclose()
