"""Forged and stale confirmations through Discord (issue 18, defect 1).

discord.py routes persistent buttons by custom id alone, and a tampered client can claim
any custom id on any message of the bot. A press acts only when its button is on the
message it came with (Discord sends that message with the interaction); the erasure
question expires.
"""

from __future__ import annotations

import asyncio

from core.privacy import ERASURE_QUESTION_TTL
from tests.e2e.discord.conftest import GUILD, DiscordHarness
from tests.e2e.discord.support import actor, answered, buttons, result
from tests.fakes.discord_server import FakeDiscord

ADA = FakeDiscord.user(5001, "Ada")
MALLORY = FakeDiscord.user(5002, "Mallory")


async def test_P08_a_forged_erase_on_another_message_erases_nothing(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    core = bot.core
    assert core is not None
    in_dm = await result(await fake.slash("imagine", {"prompt": "a lighthouse"}, user=MALLORY))
    in_guild = await result(
        await fake.slash("imagine", {"prompt": "a harbour"}, user=ADA, guild_id=GUILD)
    )
    for message in (in_dm, in_guild):
        before = dict(fake.messages[message["id"]])
        ix = await fake.press_tampered(message, "ib:erase:yes", user=MALLORY)
        await ix.wait(lambda i: i.acked)
        await asyncio.sleep(0.2)
        assert ix.ack_type == 4 and ix.ephemeral
        assert "no longer available" in (ix.original or {})["content"]
        after = fake.messages[message["id"]]
        assert after["content"] == before["content"]
        assert after["components"] == before["components"]
        assert (await core.history.page(actor(MALLORY))).total == 1

    # Any other button claimed on a message that does not carry it: the same answer.
    ix = await fake.press_tampered(in_guild, "ib:consent:training_opt_in:1", user=ADA)
    await ix.wait(lambda i: i.acked)
    assert "no longer available" in (ix.original or {})["content"]
    assert (await core.history.page(actor(ADA))).total == 1


async def test_P08_an_old_erasure_question_erases_nothing_and_says_so(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    core = bot.core
    assert core is not None
    await result(await fake.slash("imagine", {"prompt": "a fox"}, user=ADA))
    question = await answered(await fake.slash("delete_my_data", user=ADA))
    old = fake.age_message(question, ERASURE_QUESTION_TTL.total_seconds() + 60)
    press = await fake.press(old, buttons(old)["Erase everything"], user=ADA)
    await press.wait(lambda i: "expired" in (i.original or {}).get("content", ""))
    assert "/delete_my_data" in press.original["content"]  # type: ignore[index]
    assert not press.original.get("components")  # type: ignore[union-attr]
    assert (await core.history.page(actor(ADA))).total == 1

    # Asked again and answered at once: erased.
    question = await answered(await fake.slash("delete_my_data", user=ADA))
    press = await fake.press(question, buttons(question)["Erase everything"], user=ADA)
    await press.wait(lambda i: "Done" in (i.original or {}).get("content", ""))
    assert await core.credits.user_for(actor(ADA)) is None
