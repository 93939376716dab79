"""Safety through Discord (P16, P17, P19): screening with the OpenAI fake's moderation, the
review queue in an operator's DM, bans and rate limits, and forged custom ids."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.discord import views
from core.types import JobState
from storage.database import Database
from tests.e2e.discord.conftest import GUILD, DiscordHarness
from tests.e2e.discord.support import (
    actor,
    answered,
    audit_log,
    buttons,
    ephemeral_followups,
    finished,
    job_of,
    result,
)
from tests.fakes.discord_server import LOADING, FakeDiscord, FakeInteraction
from tests.fakes.openai_server import FakeOpenAI

OPERATOR = FakeDiscord.user(1111, "Olga")
ADA = FakeDiscord.user(4242, "Ada")
EVE = FakeDiscord.user(6666, "Eve")
MALLORY = FakeDiscord.user(7777, "Mallory")


@pytest_asyncio.fixture
async def moderated_bot(
    fake: FakeDiscord, database: Database, tmp_path: Path, openai_fake: FakeOpenAI
) -> AsyncIterator[DiscordHarness]:
    """The adapter on the OpenAI provider with moderation on (inputs and outputs), one
    operator, on SQLite and PostgreSQL."""
    harness = DiscordHarness(
        fake,
        database,
        tmp_path,
        {
            "image_provider": "openai",
            "openai_api_key": "sk-test-discord-safety-0123456789",
            "openai_base_url": openai_fake.base_url,
            "provider_max_retries": 0,
            "moderation": True,
            "admins": f"discord:{OPERATOR['id']}",
        },
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


async def balance(bot: DiscordHarness, user: dict[str, Any]) -> int:
    assert bot.core is not None
    user_id = await bot.core.credits.user_for(actor(user))
    assert user_id is not None
    return (await bot.core.credits.balance(user_id)).available


def shown(ix: FakeInteraction) -> str:
    return "\n".join(m["content"] for m in [*([ix.original] if ix.original else []), *ix.followups])


async def test_P16_a_flagged_prompt_costs_nothing_and_the_refusal_names_the_category(
    moderated_bot: DiscordHarness, fake: FakeDiscord, openai_fake: FakeOpenAI, database: Database
) -> None:
    openai_fake.flag_words = {"forbidden-word"}
    openai_fake.flag_category = "violence"
    ix = await fake.slash("imagine", {"prompt": "a forbidden-word scene"}, user=ADA, guild_id=GUILD)
    message = await result(ix)
    assert message["content"].startswith("⚠️ The safety system refused this request")
    assert "violence" in message["content"] and "Nothing was charged" in message["content"]
    assert openai_fake.image_requests == []  # the model was never asked
    assert openai_fake.moderation_requests[0].json["model"] == "omni-moderation-latest"
    assert await balance(moderated_bot, ADA) == 20
    assert moderated_bot.core is not None
    [job] = (await moderated_bot.core.history.page(actor(ADA))).items
    assert job.state is JobState.REJECTED and job.cost == 0
    assert [r["action"] for r in await audit_log(database)] == ["strike"]


async def test_P16_withheld_results_wait_for_an_operator_who_releases_or_dismisses_them(
    moderated_bot: DiscordHarness, fake: FakeDiscord, openai_fake: FakeOpenAI, database: Database
) -> None:
    core = moderated_bot.core
    assert core is not None
    openai_fake.flag_image_category = "violence"  # prompts pass, every output is flagged
    first = await fake.slash("imagine", {"prompt": "a quiet lake"}, user=ADA, guild_id=GUILD)
    withheld = await result(first)
    assert "withheld the result (it looks like violence)" in withheld["content"]
    assert "credits were returned" in withheld["content"] and not withheld["attachments"]
    second = await fake.slash("imagine", {"prompt": "a calm sea"}, user=ADA, guild_id=GUILD)
    await result(second)
    assert await balance(moderated_bot, ADA) == 20

    ix = await fake.slash("admin reviews", user=OPERATOR)
    queue = await answered(ix)
    assert ix.ephemeral and "**Review queue**: 2 open" in queue["content"]
    [one, two] = await core.admin.reviews(core_actor := actor(OPERATOR))
    assert {f"✅ #{one.id}", f"🗑 #{one.id}", f"👁 #{one.id}", f"✅ #{two.id}"} <= set(buttons(queue))

    look = await fake.press(queue, buttons(queue)[f"👁 #{one.id}"], user=OPERATOR)
    await look.wait(lambda i: i.original and i.original["attachments"])
    assert look.ephemeral
    assert fake.file_bytes(look.original["attachments"][0]) == await core.files.read(one.path)

    approve = await fake.press(queue, buttons(queue)[f"✅ #{one.id}"], user=OPERATOR)
    await approve.wait(lambda i: "approved" in (i.original or {}).get("content", ""))
    after = approve.original
    assert "**Review queue**: 1 open" in after["content"]
    assert f"✅ #{one.id}" not in buttons(after) and f"✅ #{two.id}" in buttons(after)
    # The released result replaces the withheld notice in Ada's channel, free.
    await first.wait(lambda i: bool(i.original and i.original["attachments"]))
    assert "An operator reviewed this result and released it" in first.original["content"]
    assert await balance(moderated_bot, ADA) == 20

    dismiss = await fake.press(after, buttons(after)[f"🗑 #{two.id}"], user=OPERATOR)
    await dismiss.wait(lambda i: "dismissed" in (i.original or {}).get("content", ""))
    assert "The review queue is empty." in dismiss.original["content"]
    assert not Path(core.files.absolute(two.path or "")).exists()
    assert await core.admin.reviews(core_actor) == []
    actions = [(r["actor"], r["action"]) for r in await audit_log(database)]
    assert ("discord:1111", "review_approve") in actions
    assert ("discord:1111", "review_dismiss") in actions


async def test_P17_a_ban_through_admin_stops_imagine_and_unban_lifts_it(
    fake: FakeDiscord, database: Database, tmp_path: Path
) -> None:
    harness = DiscordHarness(fake, database, tmp_path, {"admins": f"discord:{OPERATOR['id']}"})
    await harness.start()
    try:
        await result(await fake.slash("imagine", {"prompt": "a pear"}, user=ADA, guild_id=GUILD))
        ban = await fake.slash(
            "admin ban", {"user": ADA["id"], "reason": "spam", "hours": 24}, user=OPERATOR
        )
        assert "banned until" in (await answered(ban))["content"]

        ix = await fake.slash("imagine", {"prompt": "a plum"}, user=ADA, guild_id=GUILD)
        await ix.wait(lambda i: bool(ephemeral_followups(i)))
        # The channel sees only that nothing started; the reason goes to Ada alone.
        assert ix.original is not None and "did not start" in ix.original["content"]
        [private] = ephemeral_followups(ix)
        assert "may not generate images until" in private["content"]
        assert "privacy commands keep working" in private["content"]
        assert harness.core is not None
        assert (await harness.core.history.page(actor(ADA))).total == 1
        assert await balance(harness, ADA) == 19

        unban = await fake.slash(
            "admin unban", {"user": ADA["id"], "reason": "appeal accepted"}, user=OPERATOR
        )
        await answered(unban)
        again = await result(
            await fake.slash("imagine", {"prompt": "a plum"}, user=ADA, guild_id=GUILD)
        )
        assert again["attachments"]
        actions = [r["action"] for r in await audit_log(database)]
        assert actions == ["ban_temporary", "unban"]
    finally:
        await harness.stop()


async def test_P17_too_many_requests_are_answered_kindly_and_cost_nothing(
    fake: FakeDiscord, sqlite_db: Database, tmp_path: Path
) -> None:
    harness = DiscordHarness(
        fake, sqlite_db, tmp_path, {"rate_user_burst": 2, "rate_user_per_minute": 1}
    )
    await harness.start()
    try:
        for prompt in ("one", "two"):
            await result(await fake.slash("imagine", {"prompt": prompt}, user=ADA))
        ix = await fake.slash("imagine", {"prompt": "three"}, user=ADA)
        message = await result(ix)
        assert message["content"].startswith("⚠️ Slow down a little")
        assert "Please try again in" in message["content"] and "second" in message["content"]
        assert await balance(harness, ADA) == 18
        assert harness.core is not None
        assert (await harness.core.history.page(actor(ADA))).total == 2
    finally:
        await harness.stop()


# --- forged custom ids (P19) ------------------------------------------------------------------

_TEMPLATES = [item.__discord_ui_compiled_template__ for item in views.DYNAMIC_ITEMS]  # type: ignore[attr-defined]


def _dispatched(custom_id: str) -> bool:
    """True when discord.py routes this custom id to one of the bot's buttons."""
    return any(t.fullmatch(custom_id) for t in _TEMPLATES)


def _settled(fake: FakeDiscord, ix: FakeInteraction) -> bool:
    """The press was answered (for a deferred one: the answer arrived)."""
    if not ix.acked:
        return False
    if ix.ack_type in (4, 7, 9):
        return True
    if ix.ack_type == 5:
        return bool(ix.original and not int(ix.original["flags"]) & LOADING)
    return any(ix.token in r.path and "/callback" not in r.path for r in fake.requests)


def custom_ids(victim_job: str) -> st.SearchStrategy[str]:
    """Custom ids as a tampered client could send them: the bot's own shapes pointing at
    another user's job, odd values in every field, and noise."""
    hexes = st.text("0123456789abcdef", min_size=0, max_size=20)
    owners = st.sampled_from(
        [EVE["id"], MALLORY["id"], ADA["id"], "0", "9" * 20, "1" * 21]
    ) | st.text("0123456789", min_size=0, max_size=22)
    routed = st.builds(
        lambda action, index, owner: f"ib:{action}:{victim_job}:{index}:{owner}",
        st.sampled_from(["reroll", "edit", "var", "full", "del"]),
        st.sampled_from(["0", "1", "3", "9", "a"]),
        # Mostly the forger's own id: the owner check passes and core must refuse.
        st.sampled_from([MALLORY["id"], MALLORY["id"], MALLORY["id"], EVE["id"], "9" * 20]),
    )
    job_shaped = st.builds(
        lambda action, job, index, owner: f"ib:{action}:{job}:{index}:{owner}",
        st.sampled_from(["reroll", "edit", "var", "full", "del", "delete", "admin"]),
        st.sampled_from([victim_job, victim_job.upper(), victim_job[:-1]]) | hexes,
        st.sampled_from(["0", "1", "3", "9", "a", "-1", "", "00"]),
        owners,
    )
    known = st.sampled_from(
        [
            "ib:hist:0",
            "ib:hist:1",
            "ib:hist:999999",
            "ib:buy:pack_s",
            "ib:buy:../../etc",
            "ib:consent:training_opt_in:1",
            "ib:consent:drop_table:1",
            "ib:review:1:approve",
            "ib:review:999999999999:dismiss",
            "ib:review:1:view",
            "ib:privreq",
            "ib:profile:refresh",
            "ib:erase:no",
            f"ib:full:{victim_job}:a:{MALLORY['id']}",
            f"ib:del:{victim_job}:0:{MALLORY['id']}",
        ]
    )
    prefixed = st.builds(
        lambda head, tail: head + tail,
        st.sampled_from(["ib:", "ib:full:", f"ib:reroll:{victim_job}:", "ib:review:", "ib:hist:"]),
        st.text(max_size=40),
    )
    return st.one_of(routed, job_shaped, known, prefixed, st.text(max_size=100)).filter(
        lambda c: 0 < len(c) <= 100
    )


@pytest_asyncio.fixture
async def victim(bot: DiscordHarness, fake: FakeDiscord) -> dict[str, Any]:
    """Eve's finished job: what forgers aim at."""
    message = await result(
        await fake.slash("imagine", {"prompt": "eve's secret garden"}, user=EVE, guild_id=GUILD)
    )
    job_id = job_of(message)
    await finished(bot.core, EVE, job_id)
    return {"job": job_id, "balance": await balance(bot, EVE)}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_P19_forged_custom_ids_never_act_on_another_users_job(
    bot: DiscordHarness,
    fake: FakeDiscord,
    victim: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    data: st.DataObject,
) -> None:
    core = bot.core
    assert core is not None
    custom_id = data.draw(custom_ids(victim["job"]), label="custom_id")
    in_server = data.draw(st.booleans(), label="in_server")
    ephemeral = data.draw(st.booleans(), label="ephemeral")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        ix = await fake.press_forged(
            custom_id, user=MALLORY, guild_id=GUILD if in_server else None, ephemeral=ephemeral
        )
        if _dispatched(custom_id):
            await fake.wait_until(lambda: _settled(fake, ix), 10)
            event(f"answered ({ix.ack_type}): {shown(ix).replace('forged', '').strip()[:50]}")
        else:
            event("not routed")
    # Never an unhandled exception (discord.py logs those as "Ignoring exception…").
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not problems, [r.getMessage() for r in problems]
    # Eve's job is untouched, and Mallory got nothing of it.
    job = await core.generation.job(actor(EVE), victim["job"])
    assert job.state is JobState.SUCCEEDED and job.outputs
    assert await balance(bot, EVE) == victim["balance"]
    assert (await core.history.page(actor(MALLORY))).total == 0
    answers = [*([ix.original] if ix.original else []), *ix.followups]
    if ix.original_id and ix.ack_type in (6, 7):
        answers = ix.followups  # the forged message itself is not an answer
    assert not any(m["attachments"] for m in answers)
    assert "secret garden" not in shown(ix)


async def test_P19_a_forged_edit_of_another_users_result_opens_nothing_it_could_use(
    bot: DiscordHarness, fake: FakeDiscord, victim: dict[str, Any]
) -> None:
    """The Edit button carries the presser's own id: the modal opens, and submitting it
    finds no job."""
    opened = await fake.press_forged(
        f"ib:edit:{victim['job']}:0:{MALLORY['id']}", user=MALLORY, guild_id=GUILD
    )
    await opened.wait(lambda i: i.acked)
    assert opened.ack_type == 9
    submitted = await fake.submit_modal(opened, {"instruction": "make it mine"})
    message = await result(submitted)
    assert message["content"].startswith("⚠️") and "no longer available" in message["content"]
    assert bot.core is not None
    assert (await bot.core.history.page(actor(MALLORY))).total == 0
    # A press carrying Eve's id as the owner is refused before anything is looked up.
    refused = await fake.press_forged(
        f"ib:full:{victim['job']}:0:{EVE['id']}", user=MALLORY, guild_id=GUILD
    )
    await refused.wait(lambda i: i.acked)
    assert refused.ephemeral and "belong to the person" in refused.original["content"]
